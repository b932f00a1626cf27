"""A run of the deliveries worker: due deliveries sent several at once, with a bound.

`threads` threads each claim, send and record deliveries until nothing is due or the run's
budget is spent (the next tick carries on). Each delivery is its own short transactions; no
database connection is held during a call. The bounds that keep one bad receiver from costing
the others anything:

- per destination, at most `Limits.per_destination` calls at once, and one at a time until it
  is proven (its last attempt was answered: not new, not failing);
- destinations not proven share at most half of the threads: the other half only takes
  deliveries to proven destinations, so those go out however many receivers are down (a
  receiver that was proven costs the others at most its first failed attempt);
- a failing destination's circuit opens (erasure.deliveries.circuit), and then costs no call
  at all until its probe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from erasure.config import Settings
from erasure.deliveries import sending
from erasure.deliveries.sending import Claim, Limits, Skipped
from erasure.identifiers import Vault
from erasure.integrations.callbacks import Senders
from erasure.integrations.processor import ProcessorConfig
from erasure.integrations.transport import AddressGuard, RequestsTransport

__all__ = ["Limits", "RunOptions", "run", "senders_from"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOptions:
    threads: int = 4
    #: No new delivery is claimed after this many seconds: the task ends (calls in flight finish
    #: first, within their timeouts) and the next tick goes on.
    budget_s: float = 15.0


def senders_from(settings: Settings) -> Senders:
    """HTTP (timeouts and the SSRF guard from the settings), signing keys, the retry policy."""
    return Senders(
        transport=RequestsTransport(
            timeout_s=(settings.callback_connect_timeout_s, settings.callback_read_timeout_s),
            guard=AddressGuard.allowing(settings.callback_allowed_networks),
        ),
        vault=Vault(settings.encryption_key_bytes),
        processor=ProcessorConfig.from_settings(settings),
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Run:
    sessionmaker: Callable[[], Session]
    senders: Senders
    limits: Limits
    deadline: float
    clock: Callable[[], datetime]
    unproven_slots: threading.BoundedSemaphore

    def claim(self, *, allow_unproven: bool) -> Claim | Skipped | None:
        with self.sessionmaker() as session:
            claimed = sending.claim_next(
                session,
                self.senders,
                self.limits,
                now=self.clock(),
                allow_unproven=allow_unproven,
            )
            if claimed is Skipped.CONTENDED:
                session.rollback()
            else:
                session.commit()
            return claimed

    def record(self, claim: Claim, outcome: sending.Outcome) -> None:
        with self.sessionmaker() as session, session.begin():
            sending.record(session, claim, outcome, self.senders, self.limits, now=self.clock())

    def thread(self) -> int:
        """Claim, send, record until nothing is due (for this thread) or the budget is spent."""
        handled = 0
        while time.monotonic() < self.deadline:
            # Without a slot for unproven destinations, take only deliveries to proven ones.
            holds_slot = self.unproven_slots.acquire(blocking=False)
            try:
                claimed = self.claim(allow_unproven=holds_slot)
                if claimed is None:
                    return handled
                handled += claimed is not Skipped.CONTENDED
                if not isinstance(claimed, Claim):
                    continue
                if holds_slot and claimed.proven:
                    self.unproven_slots.release()
                    holds_slot = False
                outcome = sending.attempt(self.senders.transport, claimed)
                self.record(claimed, outcome)
            except SQLAlchemyError:
                # Our database is unavailable: stop this thread. A lease taken and not recorded
                # runs out, and the delivery is sent again (at least once).
                logger.warning("delivery thread stopped: database error", exc_info=True)
                return handled
            finally:
                if holds_slot:
                    self.unproven_slots.release()
        return handled


def run(
    sessionmaker: Callable[[], Session],
    senders: Senders,
    limits: Limits,
    options: RunOptions,
    *,
    clock: Callable[[], datetime] = _utcnow,
) -> int:
    """Send what is due; returns how many deliveries were handled (sent, or settled without a
    call)."""
    state = _Run(
        sessionmaker=sessionmaker,
        senders=senders,
        limits=limits,
        deadline=time.monotonic() + options.budget_s,
        clock=clock,
        unproven_slots=threading.BoundedSemaphore(max(1, options.threads // 2)),
    )
    with ThreadPoolExecutor(options.threads, thread_name_prefix="erasure-delivery") as pool:
        futures = [pool.submit(state.thread) for _ in range(options.threads)]
        return sum(future.result() for future in futures)
