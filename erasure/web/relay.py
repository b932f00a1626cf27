"""Asks a worker to run the outbox relay now, so an HTTP request that committed work never
waits on the broker (the periodic relay still publishes everything a kick misses)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import ClassVar

from celery import Celery

from erasure import task_names
from erasure.celery_app import create_celery
from erasure.config import Settings
from erasure.web.resources import web_resources

logger = logging.getLogger(__name__)

#: After sending a kick, how long further kicks are gathered into the next one. A kick after a
#: quiet spell goes at once; under load the relay is asked at most this often per process. At
#: 0.05 s a busy API sent about one broker message per request, which cost it a fifth of its
#: throughput (bench/intake.py); the periodic relay runs every RELAY_INTERVAL_S anyway.
KICK_WINDOW_S = 0.5


class RelayKicker:
    """Sends the relay task from a background thread. Kicks coalesce: a burst costs one
    message. One kicker (one thread) per broker for the life of the process."""

    _by_broker: ClassVar[dict[str, RelayKicker]] = {}
    _registry_lock = threading.Lock()

    def __init__(self, app: Celery, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._app = app
        self._sleep = sleep
        self._wanted = threading.Event()
        self._thread = threading.Thread(target=self._run, name="erasure-relay-kicker", daemon=True)
        self._thread.start()

    @classmethod
    def for_settings(cls, settings: Settings) -> RelayKicker:
        with cls._registry_lock:
            kicker = cls._by_broker.get(settings.broker_url)
            if kicker is None:
                kicker = cls._by_broker[settings.broker_url] = cls(create_celery(settings))
            return kicker

    def kick(self) -> None:
        self._wanted.set()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            try:
                self._app.send_task(task_names.RELAY_OUTBOX, expires=60)
            except Exception:  # noqa: BLE001  # the broker may be down: the periodic relay covers it
                logger.warning("could not kick the outbox relay; the periodic relay will publish")
            self._sleep(KICK_WINDOW_S)  # coalesce a burst of kicks into one message


def kick_relay() -> None:
    """After a commit that queued work: publish it soon, without waiting on the broker here."""
    RelayKicker.for_settings(web_resources().settings).kick()
