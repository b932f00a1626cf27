"""The deliveries worker's run: several destinations at once within the bounds, receivers that
never answer costing the others nothing, and a lease that makes a lost attempt go out again
(the same webhook-id and bytes) once it has run out. Real threads, real connections, real
receivers on 127.0.0.1; the outcome of each is read from the database."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from erasure.deliveries import runner, sending
from erasure.integrations import callbacks
from erasure.integrations.models import CallbackDelivery, CallbackStatus, CallbackSubscription
from tests.support.deliveries import HoldingReceiver, Scene, Traffic, prove, wait_until

pytestmark = pytest.mark.usefixtures("no_other_due")

DELIVERED = CallbackStatus.DELIVERED


def _run_in_background(
    scene: Scene, senders: callbacks.Senders, options: runner.RunOptions
) -> tuple[threading.Thread, list[int]]:
    handled: list[int] = []
    thread = threading.Thread(
        target=lambda: handled.append(runner.run(scene.maker, senders, runner.Limits(), options))
    )
    thread.start()
    return thread, handled


def test_receivers_that_never_answer_cost_the_others_nothing(
    scene: Scene, senders: callbacks.Senders, make_receiver: Callable[..., HoldingReceiver]
) -> None:
    live = make_receiver()
    prove(scene, senders, live.url)  # a receiver that has been answering
    live_subscription = scene.subscriptions[-1]
    dead = [make_receiver(status=503, hold=True) for _ in range(6)]
    earlier = datetime.now(UTC) - timedelta(minutes=1)
    for receiver in dead:  # their deliveries are first in line
        subscription_id, _ = scene.subscribe(receiver.url)
        scene.deliveries(subscription_id, 3, due=earlier)
    live_ids = scene.deliveries(live_subscription, 8)

    thread, handled = _run_in_background(scene, senders, runner.RunOptions(threads=4, budget_s=120))
    try:
        # Half the threads take the unproven destinations, one call each, and stay stuck...
        wait_until(lambda: sum(r.in_flight for r in dead) == 2, "two calls held by dead receivers")
        # ...while the other half delivers everything to the receiver that answers.
        wait_until(
            lambda: scene.statuses(live_ids) == [DELIVERED] * 8, "the live receiver's deliveries"
        )
        assert sum(r.in_flight for r in dead) == 2
        assert all(r.count() <= 1 for r in dead)  # one call at a time to an unproven destination
    finally:
        for receiver in dead:
            receiver.release.set()
    thread.join(120)
    assert not thread.is_alive()

    assert live.most_in_flight <= 2  # Limits.per_destination
    assert handled == [8 + 6 * 3]
    for receiver in dead:  # each dead receiver was tried once per delivery, one at a time
        assert receiver.count() == 3 and receiver.most_in_flight == 1
        breaker = scene.circuit(receiver.url)
        assert breaker is not None and breaker.failures == 3


def test_several_destinations_at_once_within_the_bounds(
    scene: Scene, senders: callbacks.Senders, make_receiver: Callable[..., HoldingReceiver]
) -> None:
    traffic = Traffic()
    receivers = [make_receiver(traffic=traffic) for _ in range(3)]
    for receiver in receivers:
        prove(scene, senders, receiver.url)
    ids = []
    for receiver, subscription_id in zip(receivers, scene.subscriptions, strict=True):
        receiver.release.clear()  # from now on, hold every call until the test lets go
        ids += scene.deliveries(subscription_id, 4)

    thread, handled = _run_in_background(scene, senders, runner.RunOptions(threads=4))
    try:
        wait_until(lambda: traffic.in_flight == 4, "four calls at once")
        assert sorted(r.in_flight for r in receivers)[-1] == 2  # several destinations at once
        assert all(r.in_flight <= 2 for r in receivers)
    finally:
        for receiver in receivers:
            receiver.release.set()
    thread.join(60)
    assert not thread.is_alive()
    assert handled == [12]
    assert scene.statuses(ids) == [DELIVERED] * 12
    assert traffic.most_in_flight == 4  # never more than the run's threads
    assert all(r.most_in_flight <= 2 for r in receivers)  # nor than per_destination


def test_a_lost_attempt_goes_out_again_once_its_lease_has_run_out(
    scene: Scene, senders: callbacks.Senders, make_receiver: Callable[..., HoldingReceiver]
) -> None:
    receiver = make_receiver()
    subscription_id, _ = scene.subscribe(receiver.url)
    start = datetime.now(UTC)
    (delivery_id,) = scene.deliveries(subscription_id, 1, due=start)
    limits = runner.Limits(lease=timedelta(seconds=30))

    # A worker leases the delivery, then dies before it sends anything.
    with scene.maker() as session, session.begin():
        lost = sending.claim_next(session, senders, limits, now=start)
    assert isinstance(lost, sending.Claim)

    def run_at(moment: datetime) -> int:
        return runner.run(
            scene.maker, senders, limits, runner.RunOptions(threads=2), clock=lambda: moment
        )

    assert run_at(start + timedelta(seconds=29)) == 0  # leased: nobody else sends it
    assert receiver.count() == 0
    assert run_at(start + timedelta(seconds=31)) == 1  # the lease ran out: sent again
    assert receiver.arrived == [f"msg_{delivery_id.hex}"] and receiver.bodies == [lost.body]
    row = scene.row(delivery_id)
    assert row.status is DELIVERED and row.attempts == 2  # the lost attempt counts

    # The dead worker's outcome, arriving late, changes nothing on the row.
    with scene.maker() as session, session.begin():
        sending.record(
            session,
            lost,
            sending.Outcome(error="HTTP 500", answered=False),
            senders,
            limits,
            now=start + timedelta(seconds=40),
        )
    assert scene.row(delivery_id).status is DELIVERED


def test_a_delivery_that_cannot_be_built_backs_off_and_the_others_go_on(
    scene: Scene, senders: callbacks.Senders, make_receiver: Callable[..., HoldingReceiver]
) -> None:
    receiver = make_receiver()
    broken_subscription, _ = scene.subscribe(receiver.url + "/broken")
    working_subscription, _ = scene.subscribe(receiver.url + "/working")
    with scene.maker() as session, session.begin():
        subscription = session.get(CallbackSubscription, broken_subscription)
        assert subscription is not None and subscription.secret_ciphertext is not None
        # Damaged: every bit of the first byte flipped. (Setting it to zero left the secret intact
        # whenever its random first byte was already zero, one run in 256.)
        damaged = bytes([subscription.secret_ciphertext[0] ^ 0xFF])
        subscription.secret_ciphertext = damaged + subscription.secret_ciphertext[1:]
    earlier = datetime.now(UTC) - timedelta(minutes=1)
    (broken,) = scene.deliveries(broken_subscription, 1, due=earlier)
    working = scene.deliveries(working_subscription, 2)

    handled = runner.run(scene.maker, senders, runner.Limits(), runner.RunOptions(threads=2))

    assert handled == 3
    assert scene.statuses(working) == [DELIVERED, DELIVERED]
    row = scene.row(broken)
    assert row.status is CallbackStatus.PENDING and row.attempts == 1
    assert row.last_error is not None and row.last_error.startswith("internal error: ")
    assert row.next_attempt_at > datetime.now(UTC)  # on its own backoff


def test_deliveries_due_together_go_out_in_the_order_of_their_events(
    scene: Scene, senders: callbacks.Senders, make_receiver: Callable[..., HoldingReceiver]
) -> None:
    """A dispatch tick makes one row per event with the same due time (its transaction's now).
    Claims break the tie by audit leaf, so a subscriber hears `received` before `retrieving`
    (CI once saw the reverse: ties went in the order the rows happened to be read)."""
    receiver = make_receiver()
    subscription_id, _ = scene.subscribe(receiver.url)
    ids = scene.deliveries(subscription_id, 4, due=datetime.now(UTC) - timedelta(seconds=1))
    with scene.maker() as session, session.begin():
        # Later events in earlier rows: the order the table is read in is not the events' order.
        session.execute(
            update(CallbackDelivery)
            .where(CallbackDelivery.id.in_(ids))
            .values(leaf_id=1000 - CallbackDelivery.leaf_id)
        )
        leaves = dict(
            session.execute(
                select(CallbackDelivery.id, CallbackDelivery.leaf_id).where(
                    CallbackDelivery.id.in_(ids)
                )
            ).all()
        )
    for _ in ids:
        with scene.maker() as session, session.begin():
            assert sending.send_next(session, senders)
    assert [leaves[uuid.UUID(got.removeprefix("msg_"))] for got in receiver.arrived] == sorted(
        leaves.values()
    )


def test_a_claimer_held_before_the_destination_s_lock_lets_no_later_event_go_first(
    scene: Scene,
    senders: callbacks.Senders,
    make_receiver: Callable[..., HoldingReceiver],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two claimers at once, a new destination (one call at a time). CI saw `retrieving`
    arrive before `received`: the first claimer had picked `received` (locking its row) and was
    held up before it took the destination's lock; the second skipped the locked row, took
    `retrieving`, won the lock and sent it. Here the first claimer is held at that point until
    the second has claimed: the second must claim `received`."""
    receiver = make_receiver()
    subscription_id, _ = scene.subscribe(receiver.url)
    earlier, later = scene.deliveries(
        subscription_id, 2, due=datetime.now(UTC) - timedelta(seconds=1)
    )
    held, release = threading.Event(), threading.Event()
    real_lock = sending.circuit.lock

    def lock_after_release(session: object, destination: str) -> object:
        if threading.current_thread().name == "first claimer":
            held.set()
            assert release.wait(30)
        return real_lock(session, destination)  # type: ignore[arg-type]

    monkeypatch.setattr(sending.circuit, "lock", lock_after_release)
    outcomes: dict[str, object] = {}

    def claim(name: str) -> None:
        with scene.maker() as session, session.begin():
            outcomes[name] = sending.claim_next(
                session, senders, sending.Limits(), now=datetime.now(UTC)
            )

    first = threading.Thread(target=claim, args=("first",), name="first claimer")
    first.start()
    try:
        assert held.wait(30)
        claim("second")
    finally:
        release.set()
        first.join(30)
    second = outcomes["second"]
    assert isinstance(second, sending.Claim) and second.delivery_id == earlier
    assert outcomes["first"] is sending.Skipped.CONTENDED  # one call at a time, still
    assert scene.row(later).claim_id is None
