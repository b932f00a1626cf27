"""The dispatcher: reads the audit log's request events after a stored cursor and turns each into
delivery rows, one per subscription (and one ticket comment per final event). The pipeline needs
no hook: every state change already appends a leaf. Nothing here commits."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from erasure.audit.models import AuditLeaf
from erasure.core.models import ErasureRequest, RequestStatus
from erasure.integrations import comments
from erasure.integrations.callbacks.payloads import (
    Links,
    encode,
    event_status,
    opendsr_body,
    standard_body,
)
from erasure.integrations.models import (
    CallbackChannel,
    CallbackDelivery,
    CallbackSubscription,
    IntegrationCursor,
    WebhookDelivery,
    WebhookSource,
)
from erasure.integrations.transport import destination_of

CURSOR = "callbacks"
#: A leaf id still missing this long after later ones committed belongs to a rolled-back
#: transaction (identity values are never reused); until then the cursor waits for it.
GAP_HOLD = timedelta(minutes=10)
COMMENT_EVENTS = frozenset({"request.completed", "request.completed_no_data", "request.failed"})


class Told(Protocol):
    """An event of another kind of request (an access request), worded by its own domain: the
    Standard Webhooks document for the subscriptions of its API key. A protocol, so the domain
    that words it needs nothing from here (erasure.access stays free of HTTP clients)."""

    @property
    def access_request_id(self) -> uuid.UUID: ...
    @property
    def api_key_id(self) -> uuid.UUID | None: ...
    @property
    def document(self) -> dict[str, Any]: ...


class EventReader(Protocol):
    """Words the leaves this module does not know (erasure.access.events); None: not its own."""

    def told(self, session: Session, leaf: AuditLeaf, links: Links) -> Told | None: ...


def _told_rows(session: Session, leaf: AuditLeaf, told: Told) -> list[dict[str, Any]]:
    if told.api_key_id is None:
        return []  # the console's requests: nobody subscribed to them
    subscriptions = session.scalars(
        select(CallbackSubscription).where(
            CallbackSubscription.is_active,
            CallbackSubscription.api_key_id == told.api_key_id,
            CallbackSubscription.channel == CallbackChannel.STANDARD_WEBHOOKS,
        )
    ).all()
    return [
        {
            "channel": subscription.channel,
            "destination": destination_of(subscription.url),
            "subscription_id": subscription.id,
            "access_request_id": told.access_request_id,
            "leaf_id": leaf.id,
            "event": leaf.kind,
            "body": encode(told.document),
        }
        for subscription in subscriptions
    ]


def _rows_of(
    session: Session, leaf: AuditLeaf, links: Links, others: Sequence[EventReader]
) -> list[dict[str, Any]]:
    if leaf.request_id is None:
        return []
    if leaf.kind.startswith("request."):
        erasure_request = session.get(ErasureRequest, leaf.request_id)
        return [] if erasure_request is None else _rows_for(session, leaf, erasure_request, links)
    for reader in others:
        told = reader.told(session, leaf, links)
        if told is not None:
            return _told_rows(session, leaf, told)
    return []


def _source_of(session: Session, request_id: uuid.UUID) -> WebhookSource | None:
    return session.scalar(
        select(WebhookSource)
        .join(WebhookDelivery, WebhookDelivery.source_id == WebhookSource.id)
        .where(WebhookDelivery.request_id == request_id)
        .limit(1)
    )


def _status_told_before(session: Session, subscription_id: uuid.UUID, leaf_id: int) -> str | None:
    # OpenDSR has four statuses for our many: resolving, deleting and confirming are all
    # `in_progress`, so most leaves change nothing the controller can see. Compared with the
    # row of the latest earlier leaf, not the latest row: a leaf read again (the cursor waits at
    # a gap) must be judged as it was the first time.
    body = session.scalar(
        select(CallbackDelivery.body)
        .where(
            CallbackDelivery.subscription_id == subscription_id,
            CallbackDelivery.leaf_id < leaf_id,
        )
        .order_by(CallbackDelivery.leaf_id.desc())
        .limit(1)
    )
    if body is None:
        return None
    status = json.loads(body).get("request_status")
    return status if isinstance(status, str) else None


def _rows_for(
    session: Session, leaf: AuditLeaf, erasure_request: ErasureRequest, links: Links
) -> list[dict[str, Any]]:
    source = _source_of(session, erasure_request.id)
    owners = [CallbackSubscription.request_id == erasure_request.id]
    if erasure_request.api_key_id is not None:
        owners.append(CallbackSubscription.api_key_id == erasure_request.api_key_id)
    if source is not None:
        owners.append(CallbackSubscription.webhook_source_id == source.id)
    subscriptions = session.scalars(
        select(CallbackSubscription).where(CallbackSubscription.is_active, or_(*owners))
    ).all()
    rows: list[dict[str, Any]] = []
    status = event_status(leaf, erasure_request)
    for subscription in subscriptions:
        if subscription.channel is CallbackChannel.OPENDSR:
            document = opendsr_body(
                erasure_request, status=status, callback_url=subscription.url, links=links
            )
            told = _status_told_before(session, subscription.id, leaf.id)
            if told == document["request_status"]:
                continue  # one OpenDSR callback per change of its status, not per leaf
        else:
            document = standard_body(
                erasure_request, kind=leaf.kind, status=status, at=leaf.created_at, links=links
            )
        rows.append(
            {
                "channel": subscription.channel,
                "destination": destination_of(subscription.url),
                "subscription_id": subscription.id,
                "request_id": erasure_request.id,
                "leaf_id": leaf.id,
                "event": leaf.kind,
                "body": encode(document),
            }
        )
    if (
        leaf.kind in COMMENT_EVENTS
        and source is not None
        and source.comment_base_url
        and erasure_request.reference_id
    ):
        rows.append(
            {
                "channel": CallbackChannel.TICKET_COMMENT,
                "destination": destination_of(source.comment_base_url),
                "webhook_source_id": source.id,
                "request_id": erasure_request.id,
                "leaf_id": leaf.id,
                "event": leaf.kind,
                "body": encode(
                    {
                        "ticket": erasure_request.reference_id,
                        "text": comments.comment_text(
                            erasure_request.id,
                            status=status.value,
                            outcome=erasure_request.outcome,
                            certificate_url=links.certificate(erasure_request.id)
                            if status is RequestStatus.COMPLETED
                            else None,
                        ),
                    }
                ),
            }
        )
    return rows


def dispatch(
    session: Session,
    *,
    links: Links,
    others: Sequence[EventReader] = (),
    limit: int = 1000,
    now: datetime | None = None,
) -> int:
    """Create delivery rows for request events after the cursor (erasure requests' here, other
    requests' through `others`); returns how many. The cursor row is locked, so dispatchers
    never run concurrently, and rows are inserted idempotently (one per subscription or source
    and leaf), so a leaf seen twice is delivered once. Does not commit."""
    now = now or datetime.now(UTC)
    session.execute(
        insert(IntegrationCursor).values(name=CURSOR, leaf_id=0).on_conflict_do_nothing()
    )
    cursor = session.scalar(
        select(IntegrationCursor).where(IntegrationCursor.name == CURSOR).with_for_update()
    )
    assert cursor is not None  # inserted just above  # noqa: S101
    leaves = session.scalars(
        select(AuditLeaf).where(AuditLeaf.id > cursor.leaf_id).order_by(AuditLeaf.id).limit(limit)
    ).all()
    created = 0
    advance_to = cursor.leaf_id
    blocked = False
    for leaf in leaves:
        if not blocked and (leaf.id == advance_to + 1 or leaf.created_at < now - GAP_HOLD):
            advance_to = leaf.id
        else:
            blocked = True  # a gap: a transaction may still commit an earlier leaf
        for row in _rows_of(session, leaf, links, others):
            inserted = session.scalar(
                insert(CallbackDelivery)
                .values(**row)
                .on_conflict_do_nothing()
                .returning(CallbackDelivery.id)
            )
            created += inserted is not None
    cursor.leaf_id = advance_to
    cursor.updated_at = now
    session.flush()
    return created
