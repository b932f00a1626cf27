"""Deleting a subscription while one of its deliveries is on the wire (issue: `DELETE
/v1/callback-subscriptions/{id}` answered 500 DeadlockDetected, 2 of 2 tries: the sender held the
delivery row across its HTTP call and then needed the subscription row the delete had locked).

Real parts: the API over HTTP on committed data, the deliveries runner in its own thread with its
own connections, and a receiver that holds the POST open until the test releases it."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import requests

from erasure.deliveries import runner
from erasure.integrations import callbacks
from erasure.integrations.models import CallbackStatus, CallbackSubscription
from tests.support.deliveries import HoldingReceiver, Scene, wait_until
from tests.support.web import LiveServer

pytestmark = pytest.mark.usefixtures("no_other_due")


@pytest.mark.parametrize(
    ("answer", "ends"),
    [(204, CallbackStatus.DELIVERED), (503, CallbackStatus.DEAD)],
    ids=["receiver-accepts", "receiver-fails"],
)
def test_deleting_a_subscription_while_its_delivery_is_in_flight_succeeds_at_once(
    live_server: LiveServer,
    scene: Scene,
    senders: callbacks.Senders,
    make_receiver: Callable[..., HoldingReceiver],
    answer: int,
    ends: CallbackStatus,
) -> None:
    receiver = make_receiver(status=answer, hold=True)
    subscription_id, _ = scene.subscribe(receiver.url)
    in_flight, queued = scene.deliveries(subscription_id, 2)

    results: list[int] = []
    sender = threading.Thread(
        target=lambda: results.append(
            runner.run(scene.maker, senders, runner.Limits(), runner.RunOptions(threads=2))
        )
    )
    sender.start()
    try:
        # A new destination gets one call at a time: the first delivery is on the wire, held.
        wait_until(lambda: receiver.count() == 1, "the delivery to reach the receiver")
        assert receiver.arrived == [f"msg_{in_flight.hex}"]

        # The delete answers while the call is still held open: it waits on nobody's receiver.
        response = requests.delete(
            f"{live_server.url}/v1/callback-subscriptions/{subscription_id}",
            headers={"Authorization": f"Bearer {scene.key_secret}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.json()["is_active"] is False
        assert receiver.in_flight == 1 and not receiver.release.is_set()
    finally:
        receiver.release.set()
        sender.join(60)
    assert not sender.is_alive()

    # The call on the wire ends as the receiver answered; the queued one is never sent.
    assert scene.row(in_flight).status is ends
    assert scene.row(queued).status is CallbackStatus.DEAD
    assert scene.row(queued).last_error == "subscription deleted"
    assert receiver.arrived == [f"msg_{in_flight.hex}"]
    with scene.maker() as session:
        subscription = session.get(CallbackSubscription, subscription_id)
        assert subscription is not None
        assert subscription.secret_ciphertext is None and not subscription.is_active
