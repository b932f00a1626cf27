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
from typing import Any

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


@dataclass(frozen=True)
class Receipt:
    delivery: WebhookDelivery
    is_replay: bool


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
    now: datetime | None = None,
) -> Receipt:
    """Act on one delivery exactly once. Raises SignatureRejected (logged as a security event),
    NotJson, ConfigurationError (our side is misconfigured: the sender should retry later).
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
        earlier = session.scalar(
            select(WebhookDelivery.request_id).where(
                WebhookDelivery.source_id == source.id,
                WebhookDelivery.ticket_id == result.reference_id,
                WebhookDelivery.outcome == DeliveryOutcome.CREATED,
            )
        )
        if earlier is not None:
            result = mapping_module.Ignored(f"the ticket already has erasure request {earlier}")
    if isinstance(result, mapping_module.Ignored):
        delivery.outcome, delivery.reason = DeliveryOutcome.IGNORED, result.reason
    else:
        try:
            erasure_request = workflow.submit_request(
                session,
                workflow.Submission(
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
                ),
                protection=protection,
                default_org=default_org,
            )
        except UnknownOrg as exc:
            raise ConfigurationError(f"webhook source {source.name}: {exc}") from None
        delivery.outcome, delivery.request_id = DeliveryOutcome.CREATED, erasure_request.id
    session.add(delivery)
    session.flush()
    return Receipt(delivery, is_replay=False)
