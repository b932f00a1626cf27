"""What every pipeline step is given: sessions, Salesforce clients, keys, tunables, a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from erasure.identifiers import Vault
from erasure.pipeline.salesforce_port import Clients


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Tunables:
    """How the pipeline paces itself. Defaults suit production; tests compress them."""

    #: A partial delete call waits this long for more targets (unless the pool has quota to spare).
    linger_s: float = 2.0
    #: Log polling backs off from poll_min_s to poll_max_s as a delete call ages.
    poll_min_s: float = 1.0
    poll_max_s: float = 60.0
    #: A target blocked by an open Messaging session is re-checked this often.
    open_session_recheck_s: float = 300.0
    #: A 404 from the engagement API pauses the org this long (and alerts).
    org_fault_pause_s: float = 300.0
    #: Targets of a batch our own client refused before sending (a bug: malformed or doubled ids)
    #: wait this long before they are planned again, with an alert; they never fail for it.
    malformed_batch_hold_s: float = 300.0
    #: A delete call still `sending` (its dispatcher died) is reconciled once older than this:
    #: longer than the client's read timeout, so it cannot still be in flight.
    orphan_after_s: float = 45.0
    #: A request left in a working state this long without progress is re-published.
    stall_s: float = 120.0
    #: A task message delivered more often than this is parked for a person.
    max_deliveries: int = 5
    #: Raise "deadline at risk" when the predicted completion is closer than this to the deadline.
    at_risk_margin_s: float = 3 * 86400.0
    #: A COMPLETED log whose record still reads back is re-checked for this long before failing.
    readback_grace_s: float = 600.0
    #: A sent target whose log is still not final (or unknown) this long after its call is
    #: flagged for a person (docs/salesforce.md, rule 7); polling goes on.
    log_final_timeout_s: float = 86400.0


@dataclass
class Pipeline:
    sessionmaker: Callable[[], Session]
    clients: Clients
    vault: Vault
    pseudonym_key: bytes
    tunables: Tunables = field(default_factory=Tunables)
    clock: Callable[[], datetime] = utcnow
