"""Reconciliation: an ambiguous or orphaned delete call is settled from ConversationApiLog.

A call whose reply was lost (5xx, timeout, a worker killed mid-call) may or may not have
deleted its records. Rather than send an id twice, we ask Salesforce which deletions it logged:
a target with a log of its own is `requested`; the rest were certainly not received and go
back to pending.
"""

import uuid
from collections import defaultdict

from sqlalchemy import select

from erasure.audit import leaves
from erasure.core.models import Credential, DeleteCall, DeleteCallStatus, Target
from erasure.pipeline.call_outcomes import (
    IN_CALL,
    back_to_pending,
    load_org,
    mark_requested,
    note_sent_after_cancel,
)
from erasure.pipeline.context import Pipeline
from erasure.pipeline.states import settle_request


def reconcile(ctx: Pipeline, call_id: uuid.UUID) -> None:
    with ctx.sessionmaker() as session:
        call = session.get(DeleteCall, call_id)
        if call is None:
            return
        org = load_org(session, call.org_id)
        credential = session.get(Credential, call.credential_id)
        if org is None or credential is None:  # foreign keys: cannot happen
            return
        # Several targets can carry one record: ask about each record once.
        ids = sorted(
            {
                i
                for i in session.scalars(
                    select(Target.salesforce_id).where(
                        Target.delete_call_id == call_id, Target.status.in_(IN_CALL)
                    )
                )
                if i
            }
        )
        client = ctx.clients.for_credential(org, credential)
    logs = client.api_logs(entity_ids=ids) if ids else []
    with ctx.sessionmaker() as session, session.begin():
        now = ctx.clock()
        call = session.scalar(select(DeleteCall).where(DeleteCall.id == call_id).with_for_update())
        if call is None or call.status not in (
            DeleteCallStatus.SENDING,
            DeleteCallStatus.AMBIGUOUS,
        ):
            return
        targets = list(
            session.scalars(
                select(Target)
                .where(Target.delete_call_id == call_id, Target.status.in_(IN_CALL))
                .order_by(Target.id)
                .with_for_update()
            )
        )
        # A log any of our targets already holds for these records is an earlier deletion's (a
        # retried target's, or another request's), not this call's. Every target of one record
        # gets the same answer.
        earlier = set(
            session.scalars(
                select(Target.log_id).where(
                    Target.org_id == call.org_id,
                    Target.salesforce_id.in_(sorted({t.salesforce_id or "" for t in targets})),
                    Target.log_id.is_not(None),
                )
            )
        )
        found: dict[uuid.UUID, list[dict[str, leaves.LeafValue]]] = defaultdict(list)
        resend: list[Target] = []
        for target in targets:
            mine = [
                log
                for log in logs
                if log.is_for(target.salesforce_id or "") and log.id not in earlier
            ]
            if mine:
                found[target.request_id].append(
                    mark_requested(ctx, target, max(mine, key=lambda log: log.id), now)
                )
            else:
                resend.append(target)
        call.status = DeleteCallStatus.RECONCILED
        call.finished_at = call.finished_at or now
        note_sent_after_cancel(session, found)
        for request_id, items in found.items():
            leaves.append(
                session,
                kind="targets.requested",
                request_id=request_id,
                at=now,
                data={
                    "delete_call": str(call.id),
                    "route": call.route.value,
                    "reconciled": True,
                    "targets": items,
                },
            )
        if resend:
            back_to_pending(ctx, session, resend, now, reason="not_received", call=call)
        session.flush()
        for request_id in sorted({t.request_id for t in targets}):
            settle_request(session, request_id, at=now)
