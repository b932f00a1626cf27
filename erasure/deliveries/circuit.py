"""A circuit breaker per destination (`scheme://host:port`), kept in the database so every worker
process shares it.

Closed: attempts go out. After `failures_to_open` consecutive failures (no answer, a timeout,
5xx, 408 or 429) it opens: no attempt reaches the destination until `opened_until`; the
deliveries that come due meanwhile fail fast, without a call, and keep their own backoff (so they
are still dead-lettered on schedule). Then it is half-open: exactly one attempt, the probe, goes
out; a success closes the circuit, a failure opens it again for twice as long (up to
`max_open_s`). Any answer that is not a failure (a 2xx, or a 4xx about one message) closes it: the
destination is up.

The caller holds the circuit row's lock (`lock`) while it decides or records, so two workers
never both probe. Nothing here commits.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from erasure.integrations.models import DeliveryCircuit


@dataclass(frozen=True)
class CircuitPolicy:
    failures_to_open: int = 5
    open_s: float = 30.0
    max_open_s: float = 1800.0
    jitter: float = 0.2

    def open_for(self, failures: int) -> timedelta:
        """How long to stay open after the `failures`-th consecutive failure: `open_s`, doubled
        for every failed probe since, capped, with jitter so workers do not probe in step."""
        doublings = max(0, failures - self.failures_to_open)
        nominal = min(self.max_open_s, self.open_s * 2 ** min(doublings, 32))
        return timedelta(seconds=nominal * random.uniform(1 - self.jitter, 1 + self.jitter))


class Gate(StrEnum):
    """What the circuit lets one attempt do."""

    CLOSED = "closed"  # go
    PROBE = "probe"  # go: the one attempt of a half-open circuit
    OPEN = "open"  # no call: fail fast


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


def lock(session: Session, destination: str) -> DeliveryCircuit:
    """The destination's circuit row, created closed if new, locked until the transaction ends."""
    session.execute(
        insert(DeliveryCircuit).values(destination=destination).on_conflict_do_nothing()
    )
    circuit = session.scalar(
        select(DeliveryCircuit)
        .where(DeliveryCircuit.destination == destination)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert circuit is not None  # inserted just above  # noqa: S101
    return circuit


def state(circuit: DeliveryCircuit, *, now: datetime, policy: CircuitPolicy) -> State:
    if circuit.failures < policy.failures_to_open:
        return State.CLOSED
    if circuit.probe_claim_id is None and circuit.opened_until and circuit.opened_until > now:
        return State.OPEN
    return State.HALF_OPEN  # due for its probe, or probing


def admit(
    circuit: DeliveryCircuit,
    *,
    now: datetime,
    policy: CircuitPolicy,
    claim_id: uuid.UUID,
    probe_until: datetime,
) -> Gate:
    """May this attempt go out? A half-open circuit admits one probe and counts as open for
    everyone else until `probe_until` (the probe's lease: a probe whose worker died is
    replaced once it has passed)."""
    if circuit.failures < policy.failures_to_open:
        return Gate.CLOSED
    if circuit.opened_until is not None and circuit.opened_until > now:
        return Gate.OPEN
    circuit.opened_until = probe_until
    circuit.probe_claim_id = claim_id
    return Gate.PROBE


def record_answer(circuit: DeliveryCircuit, *, now: datetime, policy: CircuitPolicy) -> bool:
    """The destination answered: close the circuit. True when it had been open (the
    deliveries it held back may go now)."""
    was_open = circuit.failures >= policy.failures_to_open
    circuit.failures = 0
    circuit.opened_until = None
    circuit.probe_claim_id = None
    circuit.last_success_at = now
    return was_open


def record_failure(
    circuit: DeliveryCircuit, error: str, *, now: datetime, policy: CircuitPolicy
) -> None:
    """The destination did not answer (or answered 5xx, 408, 429): one more consecutive failure;
    from `failures_to_open` on, the circuit (re)opens."""
    circuit.failures += 1
    circuit.last_error = error[:255]
    circuit.last_failure_at = now
    circuit.probe_claim_id = None
    if circuit.failures >= policy.failures_to_open:
        circuit.opened_until = now + policy.open_for(circuit.failures)
