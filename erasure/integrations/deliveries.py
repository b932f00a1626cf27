"""Receiving one inbound webhook delivery: verify it, refuse a replay, map the ticket, and record
the delivery with the request it created, all in the caller's transaction (so an accepted delivery
is never lost: either both are committed or the sender is told to retry). Nothing here commits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from erasure import workflow
from erasure.errors import ConfigurationError, UnknownOrg
from erasure.integrations import mapping as mapping_module
from erasure.integrations import signatures, sources
from erasure.integrations.models import DeliveryOutcome, WebhookDelivery, WebhookSource

#: Security events (bad signatures, replays) go to their own logger, for alerting.
security_log = logging.getLogger("erasure.security")


class NotJson(ValueError):
    """An authentic delivery whose body is not a JSON object."""


class AccessIntake(Protocol):
    """How an access ticket becomes an access request: given by the caller, since access
    requests are a domain above this one (erasure.access.tickets)."""

    def earlier(self, session: Session, source: WebhookSource, ticket_id: str) -> uuid.UUID | None:
        """The access request this source's ticket already opened, if any."""

    def submit(
        self,
        session: Session,
        submission: workflow.Submission,
        *,
        protection: workflow.Protection,
        default_org: str | None,
    ) -> uuid.UUID:
        """Open the access request (raises UnknownOrg)."""


@dataclass(frozen=True)
class Receipt:
    delivery: WebhookDelivery
    is_replay: bool
    #: The access request an access ticket opened (the delivery's request_id is an erasure's).
    access_request_id: uuid.UUID | None = None


def _strings(document: object) -> Iterator[str]:
    """Every key and string value in a parsed JSON document (its depth is already bounded)."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            yield from node.keys()
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _check_storable(document: dict[str, Any], delivery_id: str) -> None:
    """Refuse (400, so the sender stops retrying) text Postgres cannot store: a NUL anywhere,
    or an unpaired surrogate (a valid JSON escape, but not encodable as UTF-8). Left in, either
    fails the insert of the delivery or of its request: a 500 the sender would retry for ever."""
    for text in (delivery_id, *_strings(document)):
        if "\x00" in text:
            raise NotJson("strings may not contain NUL characters")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise NotJson("strings may not contain unpaired surrogates") from None


def _lock_key(source_id: uuid.UUID) -> int:
    return int.from_bytes(
        hashlib.sha256(b"webhook:" + source_id.bytes).digest()[:8], "big", signed=True
    )


def receive(
    session: Session,
    source: WebhookSource,
    *,
    headers: signatures.Headers,
    body: bytes,
    protection: workflow.Protection,
    default_org: str | None,
    access: AccessIntake | None = None,
    now: datetime | None = None,
) -> Receipt:
    """Act on one delivery exactly once. Raises SignatureRejected (logged as a security event),
    NotJson, ConfigurationError (our side is misconfigured: the sender should retry later).
    Without `access`, an access ticket is ignored.
    """
    now = now or datetime.now(UTC)
    keys = sources.verification_keys(session, source, vault=protection.vault, now=now)
    try:
        verified = signatures.verify(source.scheme, headers=headers, body=body, keys=keys, now=now)
    except signatures.SignatureRejected as exc:
        security_log.warning(
            "webhook rejected",
            extra={"event": "webhook.rejected", "source": source.name, "reason": exc.reason},
        )
        raise
    # Deliveries of one source are serialised, so two copies of one delivery cannot both pass.
    session.execute(select(func.pg_advisory_xact_lock(_lock_key(source.id))))
    seen = session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.source_id == source.id,
            or_(
                WebhookDelivery.delivery_id == verified.delivery_id[:255],
                WebhookDelivery.digest == verified.digest,
            ),
        )
    )
    if seen is not None:
        security_log.warning(
            "webhook replayed",
            extra={"event": "webhook.replay", "source": source.name, "delivery": seen.id},
        )
        return Receipt(seen, is_replay=True)
    try:
        document: Any = json.loads(body)
    except ValueError:
        raise NotJson("the body is not JSON") from None
    if not isinstance(document, dict):
        raise NotJson("the body is not a JSON object")
    _check_storable(document, verified.delivery_id)
    delivery = WebhookDelivery(
        source_id=source.id,
        delivery_id=verified.delivery_id[:255],
        digest=verified.digest,
        received_at=now,
    )
    try:
        field_mapping = mapping_module.mapping_for(source.system, source.mapping)
    except mapping_module.InvalidMapping as exc:
        raise ConfigurationError(f"webhook source mapping: {exc}") from None
    result = mapping_module.map_ticket(field_mapping, document)
    if isinstance(result, mapping_module.Ticket):
        delivery.ticket_id = result.reference_id
        result = _unless_done(session, source, result, access)
    access_request_id = None
    if isinstance(result, mapping_module.Ignored):
        delivery.outcome, delivery.reason = DeliveryOutcome.IGNORED, result.reason
    else:
        submission = workflow.Submission(
            identifiers=result.identifiers,
            scope=result.scope,
            regulation=result.regulation,
            source=source.system,
            org=source.org,
            reference_system=source.system.value,
            reference_id=result.reference_id,
            reference_url=result.reference_url,
            api_key_id=source.api_key_id,
            submitted_by=f"webhook:{source.name}",
        )
        try:
            if result.request_type == "access" and access is not None:
                access_request_id = access.submit(
                    session, submission, protection=protection, default_org=default_org
                )
            else:
                delivery.request_id = workflow.submit_request(
                    session, submission, protection=protection, default_org=default_org
                ).id
        except UnknownOrg as exc:
            raise ConfigurationError(f"webhook source {source.name}: {exc}") from None
        delivery.outcome = DeliveryOutcome.CREATED
    session.add(delivery)
    session.flush()
    return Receipt(delivery, is_replay=False, access_request_id=access_request_id)


def _unless_done(
    session: Session,
    source: WebhookSource,
    ticket: mapping_module.Ticket,
    access: AccessIntake | None,
) -> mapping_module.Ticket | mapping_module.Ignored:
    """The ticket, or why it is ignored: its request was already opened (one erasure and one
    access request per ticket), or it asks for access where access is not accepted."""
    if ticket.request_type == "access":
        if access is None:
            return mapping_module.Ignored("access requests are not accepted from this source")
        opened = access.earlier(session, source, ticket.reference_id)
        if opened is not None:
            return mapping_module.Ignored(f"the ticket already has access request {opened}")
        return ticket
    earlier = session.scalar(
        select(WebhookDelivery.request_id).where(
            WebhookDelivery.source_id == source.id,
            WebhookDelivery.ticket_id == ticket.reference_id,
            WebhookDelivery.outcome == DeliveryOutcome.CREATED,
            WebhookDelivery.request_id.is_not(None),
        )
    )
    if earlier is not None:
        return mapping_module.Ignored(f"the ticket already has erasure request {earlier}")
    return ticket
