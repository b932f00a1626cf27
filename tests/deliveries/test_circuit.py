"""The circuit breaker of a destination, on committed rows and a real receiver, with the clock
ours: it opens after consecutive failures (then due deliveries fail fast, without a call, and
keep their own backoff and dead letter), lets exactly one probe through when half-open, opens
again for longer when the probe fails, and closes on an answer, releasing what it held back.
The state lives in the database: another engine (another worker process) sees it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, create_engine

from erasure.db import make_sessionmaker
from erasure.deliveries import circuit, sending
from erasure.integrations import callbacks
from erasure.integrations.models import CallbackStatus, DeliveryCircuit
from tests.support.deliveries import HoldingReceiver, Scene

POLICY = circuit.CircuitPolicy(failures_to_open=3, open_s=60.0, jitter=0.0)
LIMITS = sending.Limits(circuit=POLICY)
START = datetime(2030, 1, 1, tzinfo=UTC)


def _send(scene: Scene, senders: callbacks.Senders, now: datetime) -> bool:
    with scene.maker() as session, session.begin():
        return sending.send_next(session, senders, LIMITS, now=now)


def _breaker(scene: Scene, url: str) -> DeliveryCircuit:
    breaker = scene.circuit(url)
    assert breaker is not None
    return breaker


def _open_it(
    scene: Scene, senders: callbacks.Senders, receiver: HoldingReceiver
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """Three failed attempts (three deliveries, one each) open the circuit at START; returns
    the subscription and three more deliveries due at START."""
    subscription_id, _ = scene.subscribe(receiver.url)
    scene.deliveries(subscription_id, 3, due=START)
    for n in range(3):
        assert _send(scene, senders, START + timedelta(seconds=n))
    assert receiver.count() == 3
    breaker = _breaker(scene, receiver.url)
    assert breaker.failures == 3 and breaker.last_error == "HTTP 503"
    assert breaker.opened_until == START + timedelta(seconds=2 + 60)
    return subscription_id, scene.deliveries(subscription_id, 3, due=START)


def test_an_open_circuit_costs_no_call_and_keeps_the_dead_letter_schedule(
    scene: Scene,
    senders: callbacks.Senders,
    make_receiver: Callable[..., HoldingReceiver],
    database_url: str,
) -> None:
    receiver = make_receiver(status=503)
    _, held_back = _open_it(scene, senders, receiver)
    opened_until = _breaker(scene, receiver.url).opened_until
    assert opened_until is not None

    # Another process (its own engine) sees the open circuit: fails fast, no call.
    other: Engine = create_engine(database_url)
    try:
        other_maker = make_sessionmaker(other)
        for _ in held_back:
            with other_maker() as session, session.begin():
                assert sending.send_next(session, senders, LIMITS, now=START + timedelta(seconds=5))
    finally:
        other.dispose()
    assert receiver.count() == 3
    for delivery_id in held_back:
        row = scene.row(delivery_id)
        assert row.status is CallbackStatus.PENDING
        assert row.attempts == 1 and row.last_error == "circuit open (HTTP 503)"
        assert row.next_attempt_at >= opened_until  # not before the circuit may probe

    # Failing fast spends attempts like failing slowly: the dead letter comes on schedule.
    short = callbacks.Senders(
        transport=senders.transport,
        vault=senders.vault,
        processor=senders.processor,
        policy=callbacks.RetryPolicy(max_attempts=2),
    )
    with scene.maker() as session, session.begin():
        breaker = session.get(DeliveryCircuit, _breaker(scene, receiver.url).destination)
        assert breaker is not None
        breaker.opened_until = opened_until + timedelta(hours=1)  # still open when they come due
    while _send(scene, short, opened_until + timedelta(seconds=1)):
        pass
    assert scene.statuses(held_back) == [CallbackStatus.DEAD] * 3
    assert receiver.count() == 3


def test_half_open_lets_one_probe_through_and_a_failed_probe_opens_it_longer(
    scene: Scene, senders: callbacks.Senders, make_receiver: Callable[..., HoldingReceiver]
) -> None:
    receiver = make_receiver(status=503)
    _, held_back = _open_it(scene, senders, receiver)
    opened_until = _breaker(scene, receiver.url).opened_until
    assert opened_until is not None
    probe_time = opened_until + timedelta(seconds=1)
    for delivery_id in held_back:  # all three come due once the circuit may probe
        with scene.maker() as session, session.begin():
            row = session.get(sending.CallbackDelivery, delivery_id)
            assert row is not None
            row.next_attempt_at = probe_time

    # The first claim is the probe; while it is on the wire nobody else may claim a delivery
    # to that destination (they stay pending, untouched).
    with scene.maker() as session, session.begin():
        probe = sending.claim_next(session, senders, LIMITS, now=probe_time)
    assert isinstance(probe, sending.Claim)
    assert not _send(scene, senders, probe_time)
    assert receiver.count() == 3  # nothing else went out
    assert [scene.row(d).attempts for d in held_back[1:]] == [0, 0]
    assert circuit.state(_breaker(scene, receiver.url), now=probe_time, policy=POLICY) is (
        circuit.State.HALF_OPEN
    )

    outcome = sending.attempt(senders.transport, probe)
    assert outcome == sending.Outcome(error="HTTP 503", answered=False)
    with scene.maker() as session, session.begin():
        sending.record(session, probe, outcome, senders, LIMITS, now=probe_time)
    assert receiver.count() == 4
    breaker = _breaker(scene, receiver.url)
    assert breaker.failures == 4
    assert breaker.opened_until == probe_time + timedelta(seconds=120)  # twice as long
    assert circuit.state(breaker, now=probe_time, policy=POLICY) is circuit.State.OPEN


def test_an_answer_closes_the_circuit_and_releases_what_it_held_back(
    scene: Scene, senders: callbacks.Senders, make_receiver: Callable[..., HoldingReceiver]
) -> None:
    receiver = make_receiver(status=503)
    _, held_back = _open_it(scene, senders, receiver)
    with scene.maker() as session, session.begin():
        for delivery_id in held_back:  # deliveries that had been failing for a while
            row = session.get(sending.CallbackDelivery, delivery_id)
            assert row is not None
            row.attempts = 8
    for _ in held_back:
        assert _send(scene, senders, START + timedelta(seconds=5))  # fail fast
    opened_until = _breaker(scene, receiver.url).opened_until
    assert opened_until is not None
    probe_time = opened_until + timedelta(seconds=1)
    # Their own backoff (attempt 9: about 43 minutes) would keep them long after the probe.
    assert all(scene.row(d).next_attempt_at > probe_time + timedelta(minutes=30) for d in held_back)

    receiver.status = 204  # the receiver is back
    assert _send(scene, senders, probe_time)  # the probe (the oldest due delivery)
    assert receiver.count() == 4
    breaker = _breaker(scene, receiver.url)
    assert breaker.failures == 0 and breaker.opened_until is None
    assert breaker.last_success_at == probe_time
    # What the circuit held back is due now, not at the end of its own backoff.
    assert {scene.row(d).next_attempt_at for d in held_back} == {probe_time}
    while _send(scene, senders, probe_time):
        pass
    assert scene.statuses(held_back) == [CallbackStatus.DELIVERED] * 3


@pytest.mark.parametrize(
    ("status", "counts"), [(400, False), (410, False), (429, True), (500, True)]
)
def test_what_counts_as_a_failure_of_the_destination(
    scene: Scene,
    senders: callbacks.Senders,
    make_receiver: Callable[..., HoldingReceiver],
    status: int,
    counts: bool,
) -> None:
    """No answer, 5xx, 408 and 429 count; any other answer means the destination is up (the
    message itself is refused, and retried on its own backoff)."""
    receiver = make_receiver(status=status)
    subscription_id, _ = scene.subscribe(receiver.url)
    (delivery_id,) = scene.deliveries(subscription_id, 1, due=START)
    assert _send(scene, senders, START)
    assert scene.row(delivery_id).last_error == f"HTTP {status}"
    assert _breaker(scene, receiver.url).failures == (1 if counts else 0)


def test_no_answer_at_all_counts(scene: Scene, senders: callbacks.Senders) -> None:
    url = "http://127.0.0.1:9/hooks"  # the discard port: nothing listens, connection refused
    subscription_id, _ = scene.subscribe(url)
    (delivery_id,) = scene.deliveries(subscription_id, 1, due=START)
    assert _send(scene, senders, START)
    assert scene.row(delivery_id).last_error == "TransportError: ConnectionError"
    assert _breaker(scene, url).failures == 1


def test_a_redelivery_lets_a_probe_through_at_once(
    scene: Scene, senders: callbacks.Senders, make_receiver: Callable[..., HoldingReceiver]
) -> None:
    """A person redelivering a dead letter has usually just fixed the receiver: the open
    circuit does not make them wait for its probe."""
    receiver = make_receiver(status=503)
    _, held_back = _open_it(scene, senders, receiver)
    receiver.status = 204
    now = START + timedelta(seconds=10)  # the circuit is open for another 52 s
    with scene.maker() as session, session.begin():
        callbacks.redeliver(session, held_back[0], now=now)
    assert _send(scene, senders, now)  # the probe goes out now (the oldest due delivery)
    assert receiver.count() == 4
    assert _breaker(scene, receiver.url).failures == 0
    while _send(scene, senders, now):
        pass
    assert scene.row(held_back[0]).status is CallbackStatus.DELIVERED
