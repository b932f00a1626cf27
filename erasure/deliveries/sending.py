"""One delivery attempt in three steps, so no transaction (and no row lock) stays open while a
receiver takes its time:

1. `claim_next` (a short transaction): take the oldest due delivery (SKIP LOCKED) whose
   destination has a free slot, ask the destination's circuit, and lease the row: `claim_id` is
   set and `next_attempt_at` moves to the end of the lease, so nobody else sends it meanwhile.
   The request (the stored bytes, signed now) is built here.
2. `attempt`: the HTTP call, with no database connection held.
3. `record` (a short transaction): the outcome, on the row if the lease is still ours, and on
   the destination's circuit.

A worker that dies between 1 and 3 leaves the row pending; once the lease has passed it is sent
again, with the same webhook-id and bytes (delivery is at least once). Locks are always taken in
the same order, delivery row then circuit row, and a subscription is only ever read here, so
deleting a subscription never deadlocks with a delivery in flight. Nothing here commits.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, case, func, select, update
from sqlalchemy.orm import Session

from erasure.config import Settings
from erasure.deliveries import circuit
from erasure.errors import ConfigurationError, NotFound
from erasure.integrations import callbacks, comments
from erasure.integrations.models import CallbackDelivery, CallbackStatus, DeliveryCircuit
from erasure.integrations.transport import Transport, TransportError

logger = logging.getLogger(__name__)

#: A lease outlives the longest call by this much (connect and read timeouts are per call).
LEASE_MARGIN = timedelta(seconds=15)
#: Answers that say the destination is in trouble, not that it refused one message.
DESTINATION_FAILURES = frozenset({408, 429})


@dataclass(frozen=True)
class Limits:
    per_destination: int = 2
    lease: timedelta = timedelta(seconds=28)
    circuit: circuit.CircuitPolicy = field(default_factory=circuit.CircuitPolicy)

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            per_destination=settings.delivery_per_destination,
            lease=timedelta(
                seconds=settings.callback_connect_timeout_s + settings.callback_read_timeout_s
            )
            + LEASE_MARGIN,
            circuit=circuit.CircuitPolicy(
                failures_to_open=settings.delivery_circuit_failures,
                open_s=settings.delivery_circuit_open_s,
            ),
        )


@dataclass(frozen=True)
class Claim:
    """A leased delivery and the request to send for it."""

    delivery_id: uuid.UUID
    claim_id: uuid.UUID
    destination: str
    #: The destination answered its last attempt (not new, not failing).
    proven: bool
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


class Skipped(StrEnum):
    #: Decided without a call (its circuit is open, its subscription deleted, its ticket system
    #: not configured); the row is updated.
    SETTLED = "settled"
    #: Another worker took the destination's last free slot first; nothing changed.
    CONTENDED = "contended"


@dataclass(frozen=True)
class Outcome:
    """`error` is None for a 2xx. `answered`: the destination answered (even a 4xx), as opposed
    to no answer, a timeout, 5xx, 408 or 429: what its circuit counts."""

    error: str | None
    answered: bool


def _leased(now: datetime) -> ColumnElement[bool]:
    """A delivery on the wire: claimed, its lease not yet run out."""
    return and_(
        CallbackDelivery.status == CallbackStatus.PENDING,
        CallbackDelivery.claim_id.is_not(None),
        CallbackDelivery.next_attempt_at > now,
    )


def _proven_circuit() -> ColumnElement[bool]:
    return and_(DeliveryCircuit.failures == 0, DeliveryCircuit.last_success_at.is_not(None))


def is_proven(breaker: DeliveryCircuit) -> bool:
    """The destination answered its last attempt. A new or failing destination is not: it gets
    one call at a time, and they all share a bounded part of a run's threads."""
    return breaker.failures == 0 and breaker.last_success_at is not None


def _candidate(
    session: Session, limits: Limits, *, now: datetime, allow_unproven: bool
) -> str | None:
    """The destination of the oldest due delivery among those with a free slot (a quick
    filter: the exact check, and the choice of its delivery, are made under the circuit's
    lock). The few destinations without a free slot are
    found first, from the rows on the wire, so a long backlog at one of them costs one hash
    lookup per row, not a count."""
    d = CallbackDelivery
    in_flight = (
        select(d.destination, func.count().label("calls"))
        .where(_leased(now))
        .group_by(d.destination)
        .subquery()
    )
    slots = case((_proven_circuit(), limits.per_destination), else_=1)
    full = (
        select(in_flight.c.destination)
        .outerjoin(DeliveryCircuit, DeliveryCircuit.destination == in_flight.c.destination)
        .where(in_flight.c.calls >= slots)
    )
    query = select(d.destination).where(
        d.status == CallbackStatus.PENDING,
        d.next_attempt_at <= now,
        d.destination.not_in(full),
    )
    if not allow_unproven:
        query = query.where(
            d.destination.in_(select(DeliveryCircuit.destination).where(_proven_circuit()))
        )
    # No row is locked here: a claimer holding the earliest row while it waits for the
    # destination's lock would let another claimer skip it and send a later event first.
    return session.scalar(query.order_by(d.next_attempt_at, d.leaf_id).limit(1))


def _first_due(session: Session, destination: str, now: datetime) -> CallbackDelivery | None:
    """The destination's next delivery in the events' order, locked: taken under the
    destination's lock, so no other claimer holds one of its rows. Rows of one dispatch tick
    share a due time; their audit leaves are the events' order. A row being recorded after its
    lease ran out is skipped (it is settled by that transaction, never waited for)."""
    d = CallbackDelivery
    return session.scalar(
        select(d)
        .where(
            d.destination == destination,
            d.status == CallbackStatus.PENDING,
            d.next_attempt_at <= now,
        )
        .order_by(d.next_attempt_at, d.leaf_id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )


def _in_flight(session: Session, destination: str, now: datetime) -> int:
    return (
        session.scalar(
            select(func.count()).where(CallbackDelivery.destination == destination, _leased(now))
        )
        or 0
    )


def _fail(
    delivery: CallbackDelivery,
    error: str,
    senders: callbacks.Senders,
    *,
    now: datetime,
    not_before: datetime | None = None,
) -> None:
    """A failed attempt: retry after the delivery's backoff (not before `not_before`), or
    dead-letter it once its attempts are spent."""
    delivery.last_error = error[:255]
    delivery.claim_id = None
    if delivery.attempts >= senders.policy.max_attempts:
        delivery.status = CallbackStatus.DEAD
        logger.warning(
            "callback dead-lettered",
            extra={"delivery": str(delivery.id), "request_id": str(delivery.request_id)},
        )
        return
    retry_at = now + senders.policy.delay(delivery.attempts)
    delivery.next_attempt_at = max(retry_at, not_before) if not_before else retry_at


SUBSCRIPTION_DELETED = "subscription deleted"


def _build(
    session: Session, delivery: CallbackDelivery, senders: callbacks.Senders, now: datetime
) -> tuple[str, str, dict[str, str], bytes] | str:
    """The request of this attempt, or why there is none (SUBSCRIPTION_DELETED, or an error to
    retry on the delivery's backoff)."""
    try:
        return callbacks.request_for(session, delivery, senders, now)
    except callbacks.SubscriptionGone:
        return SUBSCRIPTION_DELETED
    except (NotFound, comments.CommentNotConfigured, ConfigurationError) as exc:
        # ConfigurationError: no OpenDSR processor certificate yet; retried on the backoff.
        return f"{type(exc).__name__}: {exc}"
    except Exception as exc:  # a bug: this row backs off (and is dead-lettered), the others go on
        logger.exception("could not build a delivery", extra={"delivery": str(delivery.id)})
        return f"internal error: {type(exc).__name__}"


def claim_next(
    session: Session,
    senders: callbacks.Senders,
    limits: Limits,
    *,
    now: datetime,
    allow_unproven: bool = True,
) -> Claim | Skipped | None:
    """Lease the next due delivery (see the module). None: nothing is due (with
    `allow_unproven=False`: nothing due at a proven destination)."""
    destination = _candidate(session, limits, now=now, allow_unproven=allow_unproven)
    if destination is None:
        return None
    breaker = circuit.lock(session, destination)
    proven = is_proven(breaker)
    slots = limits.per_destination if proven else 1
    if _in_flight(session, destination, now) >= slots:
        return Skipped.CONTENDED
    delivery = _first_due(session, destination, now)
    if delivery is None:  # claimed by another meanwhile
        return Skipped.CONTENDED
    built = _build(session, delivery, senders, now)
    if isinstance(built, str):  # nothing to send: settled without a call
        if built == SUBSCRIPTION_DELETED:
            delivery.status, delivery.last_error = CallbackStatus.DEAD, built
        else:
            delivery.attempts += 1
            delivery.last_attempt_at = now
            _fail(delivery, built, senders, now=now)
        session.flush()
        return Skipped.SETTLED
    method, url, headers, body = built
    claim_id = uuid.uuid4()
    lease_until = now + limits.lease
    gate = circuit.admit(
        breaker, now=now, policy=limits.circuit, claim_id=claim_id, probe_until=lease_until
    )
    delivery.attempts += 1
    delivery.last_attempt_at = now
    if gate is circuit.Gate.OPEN:
        _fail(
            delivery,
            f"circuit open ({breaker.last_error})",
            senders,
            now=now,
            not_before=breaker.opened_until,
        )
        session.flush()
        return Skipped.SETTLED
    delivery.claim_id = claim_id
    delivery.next_attempt_at = lease_until
    session.flush()
    return Claim(
        delivery_id=delivery.id,
        claim_id=claim_id,
        destination=delivery.destination,
        proven=proven,
        method=method,
        url=url,
        headers=headers,
        body=body,
    )


def attempt(transport: Transport, claim: Claim) -> Outcome:
    """The HTTP call. Never raises for the receiver's sake: every way it can go is an Outcome."""
    try:
        status = transport.send(claim.method, claim.url, body=claim.body, headers=claim.headers)
    except TransportError as exc:
        return Outcome(error=f"{type(exc).__name__}: {exc}"[:255], answered=False)
    if 200 <= status < 300:
        return Outcome(error=None, answered=True)
    return Outcome(
        error=f"HTTP {status}", answered=status < 500 and status not in DESTINATION_FAILURES
    )


def _release_held_back(session: Session, destination: str, now: datetime) -> None:
    """A circuit closed: the deliveries it held back are due now. Rows another transaction holds
    are left alone (they are being claimed: waiting for them could deadlock)."""
    held = (
        select(CallbackDelivery.id)
        .where(
            CallbackDelivery.destination == destination,
            CallbackDelivery.status == CallbackStatus.PENDING,
            CallbackDelivery.claim_id.is_(None),
            CallbackDelivery.next_attempt_at > now,
        )
        .with_for_update(skip_locked=True)
    )
    session.execute(
        update(CallbackDelivery)
        .where(CallbackDelivery.id.in_(held))
        .values(next_attempt_at=now)
        .execution_options(synchronize_session=False)
    )


def record(
    session: Session,
    claim: Claim,
    outcome: Outcome,
    senders: callbacks.Senders,
    limits: Limits,
    *,
    now: datetime,
) -> None:
    """Write an attempt's outcome: on its row while the lease is still ours (a row leased again
    after ours ran out, or put back by a redelivery, is left to its new attempt), and on the
    destination's circuit in every case."""
    delivery = session.scalar(
        select(CallbackDelivery)
        .where(CallbackDelivery.id == claim.delivery_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if delivery is not None and delivery.claim_id == claim.claim_id:
        if outcome.error is None:
            # Delivered, even if its subscription was deleted while the call was on the wire.
            delivery.status, delivery.delivered_at = CallbackStatus.DELIVERED, now
            delivery.last_error, delivery.claim_id = None, None
        elif delivery.status is CallbackStatus.PENDING:
            _fail(delivery, outcome.error, senders, now=now)
        else:
            delivery.claim_id = None  # dead-lettered meanwhile (subscription deleted)
    breaker = circuit.lock(session, claim.destination)
    if outcome.answered:
        if circuit.record_answer(breaker, now=now, policy=limits.circuit):
            _release_held_back(session, claim.destination, now)
    else:
        circuit.record_failure(breaker, outcome.error or "", now=now, policy=limits.circuit)
    session.flush()


def send_next(
    session: Session,
    senders: callbacks.Senders,
    limits: Limits | None = None,
    *,
    now: datetime | None = None,
) -> bool:
    """Claim, attempt and record one due delivery in the caller's transaction (tests, tools: the
    worker uses separate transactions, see erasure.deliveries.runner). False when none is due."""
    now = now or datetime.now(UTC)
    limits = limits or Limits()
    claimed = claim_next(session, senders, limits, now=now)
    if claimed is None:
        return False
    if isinstance(claimed, Claim):
        record(session, claimed, attempt(senders.transport, claimed), senders, limits, now=now)
    return True
