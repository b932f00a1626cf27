"""The relay kick after each intake commit coalesces: the first kick after a quiet spell is sent
at once, and a burst costs one broker message per window (issue 14: under load a message per
request cost the API about a fifth of its throughput). The window is a held gate here, not a
clock: the test decides when it ends."""

from __future__ import annotations

import threading
from typing import Any

from erasure import task_names
from erasure.web.relay import KICK_WINDOW_S, RelayKicker


class Recorder:
    """Stands in for the Celery app's send_task: the coalescing is what is tested, not the
    broker (which the end-to-end intake tests use for real)."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.changed = threading.Condition()

    def send_task(self, name: str, **_options: Any) -> None:
        with self.changed:
            self.sent.append(name)
            self.changed.notify_all()


class Gate:
    """The kicker's pause between messages, held until the test lets it end."""

    def __init__(self) -> None:
        self.waiting = threading.Semaphore(0)
        self.open = threading.Semaphore(0)
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        self.waiting.release()
        self.open.acquire()


def test_a_burst_of_kicks_costs_one_message_per_window() -> None:
    recorder, gate = Recorder(), Gate()
    kicker = RelayKicker(recorder, sleep=gate)  # type: ignore[arg-type]  # a recorder, not Celery
    kicker.kick()
    assert gate.waiting.acquire(timeout=30)  # sent at once, now in its window
    assert recorder.sent == [task_names.RELAY_OUTBOX]
    for _ in range(100):
        kicker.kick()
    assert recorder.sent == [task_names.RELAY_OUTBOX]  # the burst waits for the window
    gate.open.release()
    assert gate.waiting.acquire(timeout=30)
    assert recorder.sent == [task_names.RELAY_OUTBOX] * 2  # the whole burst: one message
    gate.open.release()  # nothing more was kicked: the kicker goes back to waiting
    assert gate.asked == [KICK_WINDOW_S, KICK_WINDOW_S]
    assert 0 < KICK_WINDOW_S <= 1  # well within the periodic relay's own interval
