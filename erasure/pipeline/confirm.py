"""Confirm: poll ConversationApiLog for sent targets (batched, backing off as a call ages), then
read back that the records are gone (docs/salesforce.md, rule 6). COMPLETED + absent -> `deleted`;
FAILED -> `failed` with Salesforce's reason. Each final target gets one leaf holding what a
certificate needs: log id, final log status, read-back result.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from erasure.audit import leaves
from erasure.core.models import DeleteCall, Org, Target, TargetKind, TargetStatus
from erasure.pipeline.context import Pipeline
from erasure.pipeline.salesforce_port import SalesforcePort
from erasure.pipeline.states import (
    SENT_TARGET_STATUSES,
    raise_alert,
    record_pseudonym,
    settle_request,
)
from erasure.salesforce.errors import SalesforceError
from erasure.salesforce.models import ApiLog, LogState

BATCH = 200


@dataclass
class ConfirmReport:
    checked: int = 0
    deleted: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def confirm(ctx: Pipeline) -> ConfirmReport:
    """One polling pass over every org's sent targets whose next check is due."""
    report = ConfirmReport()
    with ctx.sessionmaker() as session:
        org_ids = list(session.scalars(select(Org.id).order_by(Org.name)))
    for org_id in org_ids:
        while True:
            try:
                done = _confirm_batch(ctx, org_id, report)
            except SalesforceError as exc:
                report.errors.append(f"{org_id}: {exc.code}")
                break
            if done < BATCH:
                break
    return report


def _due(session: Session, org_id: uuid.UUID, now: datetime) -> tuple[list[Target], int]:
    """Sent targets due a poll (and how many), with every other sent target on the same logs:
    the targets of a shared deletion are decided together, from one read of its log."""
    due = list(
        session.scalars(
            select(Target)
            .where(
                Target.org_id == org_id,
                Target.status.in_(SENT_TARGET_STATUSES),
                Target.next_check_at <= now,
            )
            .order_by(Target.next_check_at, Target.id)
            .limit(BATCH)
        )
    )
    seen = {t.id for t in due}
    siblings = session.scalars(
        select(Target)
        .where(
            Target.org_id == org_id,
            Target.status.in_(SENT_TARGET_STATUSES),
            Target.log_id.in_(sorted({t.log_id for t in due if t.log_id})),
            Target.id.not_in(seen),
        )
        .order_by(Target.id)
    ).all()
    return due + list(siblings), len(due)


def _read(client: SalesforcePort, targets: list[Target]) -> tuple[dict[str, ApiLog], set[str]]:
    """The logs of these targets and, for those whose log completed, which records still exist.
    Targets sharing a deletion share its log and record: each is asked about once."""
    log_ids = sorted({t.log_id for t in targets if t.log_id})
    logs = {log.id: log for log in client.api_logs(log_ids=log_ids)} if log_ids else {}
    completed = [
        t for t in targets if t.log_id in logs and logs[t.log_id].state is LogState.COMPLETED
    ]
    users = sorted(
        {t.salesforce_id or "" for t in completed if t.kind is TargetKind.MESSAGING_END_USER} - {""}
    )
    conversations = sorted(
        {t.salesforce_id or "" for t in completed if t.kind is TargetKind.CONVERSATION} - {""}
    )
    existing = client.existing_end_users(users) if users else set()
    if conversations:
        existing |= client.existing_conversations(conversations)
    return logs, existing


def _confirm_batch(ctx: Pipeline, org_id: uuid.UUID, report: ConfirmReport) -> int:
    with ctx.sessionmaker() as session:
        now = ctx.clock()
        org = session.scalar(
            select(Org).where(Org.id == org_id).options(selectinload(Org.credentials))
        )
        if org is None:
            return 0
        targets, due = _due(session, org_id, now)
        client = ctx.clients.any_for_org(org)
        if not targets or client is None:
            return 0
    logs, existing = _read(client, targets)
    with ctx.sessionmaker() as session, session.begin():
        now = ctx.clock()
        locked = list(
            session.scalars(
                select(Target)
                .where(Target.id.in_([t.id for t in targets]))
                .order_by(Target.id)
                .with_for_update(skip_locked=True)
            )
        )
        sent_at: dict[uuid.UUID, datetime] = dict(
            session.execute(
                select(DeleteCall.id, DeleteCall.sent_at).where(
                    DeleteCall.id.in_({t.delete_call_id for t in locked if t.delete_call_id})
                )
            ).all()
        )
        touched: set[uuid.UUID] = set()
        progressing: dict[uuid.UUID, list[str]] = {}
        for target in locked:
            if target.status not in SENT_TARGET_STATUSES:
                continue  # moved on since we read it (retry, another poller): not ours to touch
            report.checked += 1
            log = logs.get(target.log_id or "")
            age = (
                (now - sent_at.get(target.delete_call_id, now)).total_seconds()
                if target.delete_call_id
                else 0.0
            )
            if log is not None and log.state is LogState.FAILED:
                _final(
                    ctx, session, target, log, status=TargetStatus.FAILED, now=now, read_back=None
                )
                report.failed += 1
                touched.add(target.request_id)
            elif (
                log is not None
                and log.state is LogState.COMPLETED
                and target.salesforce_id not in existing
            ):
                _final(
                    ctx,
                    session,
                    target,
                    log,
                    status=TargetStatus.DELETED,
                    now=now,
                    read_back="absent",
                )
                report.deleted += 1
                touched.add(target.request_id)
            elif (
                log is not None
                and log.state is LogState.COMPLETED
                and age > ctx.tunables.readback_grace_s
            ):
                target.failure_reason = "the log says COMPLETED but the record still reads back"
                _final(
                    ctx,
                    session,
                    target,
                    log,
                    status=TargetStatus.FAILED,
                    now=now,
                    read_back="present",
                )
                report.failed += 1
                touched.add(target.request_id)
            else:
                _still_waiting(
                    ctx,
                    session,
                    target,
                    log,
                    age=age,
                    now=now,
                    org_id=org_id,
                    progressing=progressing,
                )
        for request_id, ids in progressing.items():
            leaves.append(
                session,
                kind="targets.in_progress",
                request_id=request_id,
                at=now,
                data={"targets": ids},
            )
        session.flush()
        for request_id in sorted(touched):
            settle_request(session, request_id, at=now)
    return due  # a full batch of due targets: the caller asks for more


def _still_waiting(
    ctx: Pipeline,
    session: Session,
    target: Target,
    log: ApiLog | None,
    *,
    age: float,
    now: datetime,
    org_id: uuid.UUID,
    progressing: dict[uuid.UUID, list[str]],
) -> None:
    """Not final yet: note its progress, flag it for a person past the timeout, poll again later."""
    if log is not None:
        target.log_status = log.status
        if target.status is TargetStatus.REQUESTED and log.status.lower() == "in_progress":
            target.status = TargetStatus.IN_PROGRESS
            progressing.setdefault(target.request_id, []).append(str(target.id))
    if age > ctx.tunables.log_final_timeout_s:
        # Opened once per request (raise_alert skips an open duplicate).
        raise_alert(
            session,
            kind="target_not_final",
            message=(
                f"a deletion has no final ConversationApiLog status {int(age // 3600)} h "
                f"after its call (last status: {target.log_status or 'no log'}); "
                "it is still polled: check it in Salesforce Setup"
            ),
            org_id=org_id,
            request_id=target.request_id,
        )
    wait = min(ctx.tunables.poll_max_s, max(ctx.tunables.poll_min_s, age / 2))
    target.next_check_at = now + timedelta(seconds=wait)
    target.updated_at = now


def _final(
    ctx: Pipeline,
    session: Session,
    target: Target,
    log: ApiLog,
    *,
    status: TargetStatus,
    now: datetime,
    read_back: str | None,
) -> None:
    target.status = status
    target.log_status = log.status
    target.next_check_at = None
    target.updated_at = now
    if status is TargetStatus.FAILED and target.failure_reason is None:
        target.failure_reason = log.context or "Salesforce reported the deletion FAILED"
    leaves.append(
        session,
        kind=f"target.{status.value}",
        request_id=target.request_id,
        at=now,
        data={
            "target": str(target.id),
            "kind": target.kind.value,
            "record": record_pseudonym(ctx.pseudonym_key, target.salesforce_id or ""),
            "delete_call": str(target.delete_call_id) if target.delete_call_id else None,
            "log_id": log.id,
            "log_status": log.status,
            "read_back": read_back,
            "reason": target.failure_reason if status is TargetStatus.FAILED else None,
        },
    )
