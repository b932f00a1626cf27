"""The entries budget: `GET conversation-entries` is limited to 90 calls per minute per execution
user. Each call is written to `entry_calls` before it is sent, under a per-credential advisory
lock, so concurrent readers never plan past the window (counted from the table, like delete
quota: exact, survives restarts). The entries window is Salesforce's own, separate from the
delete windows: a read never spends an erasure's delete call, and a 429 on entries holds only the
entries route (the client's per-route hold), never the credential's deletes."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.access.models import EntryCall
from erasure.core.models import Credential


@dataclass(frozen=True)
class EntriesWindow:
    calls: int = 90
    window_s: float = 60.0


def _lock_key(credential_id: uuid.UUID) -> int:
    digest = hashlib.sha256(b"entries:" + credential_id.bytes).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def spend(
    session: Session, credentials: list[Credential], window: EntriesWindow, now: datetime
) -> Credential | datetime:
    """Record one entries call on the active credential with the most room, and return it; or,
    when every window is full, the moment the first one has room again. Does not commit."""
    since = now - timedelta(seconds=window.window_s)
    best: tuple[int, Credential] | None = None
    soonest: datetime | None = None
    for credential in credentials:
        if not credential.is_active:
            continue
        session.execute(select(func.pg_advisory_xact_lock(_lock_key(credential.id))))
        times = session.scalars(
            select(EntryCall.sent_at)
            .where(EntryCall.credential_id == credential.id, EntryCall.sent_at > since)
            .order_by(EntryCall.sent_at)
        ).all()
        left = window.calls - len(times)
        if left > 0 and (best is None or left > best[0]):
            best = (left, credential)
        elif left <= 0:
            frees = times[-window.calls] + timedelta(seconds=window.window_s)
            soonest = frees if soonest is None else min(soonest, frees)
    if best is None:
        return soonest or now + timedelta(seconds=window.window_s)
    session.add(EntryCall(credential_id=best[1].id, sent_at=now))
    return best[1]
