"""The access part of bench/pipeline.py: erasure throughput with and without access retrieval
running beside it on the same credential pool, in the same run.

Access requests read conversation entries in a process of their own while the dispatcher sends
delete calls; half of the access subjects also have an erasure under way, which access must
leave alone (erasure first). Reported: delete calls per quota window and deadline misses of
urgent requests in both runs, delete calls rejected (429) or spent on 412, entries calls, reads of
records an erasure was deleting.
"""

from __future__ import annotations

import itertools
import multiprocessing
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from erasure import workflow
from erasure.access import retrieve
from erasure.access.budget import EntriesWindow
from erasure.access.intake import submit_access
from erasure.access.models import AccessRead, AccessRequest, AccessStatus, EntryCall, ReadStatus
from erasure.core.models import DeleteCall, IdentifierKind, Regulation, Source, Target


def access_load(run: Any, *, subjects: int, conversations: int, minute_s: float) -> list[str]:
    """Seed `subjects` access subjects with `conversations` each; every other one also gets an
    erasure request (resolved by the run's pipeline). Returns the erasure-overlap emails."""
    overlap = []
    run.sandbox.configure(minute_s=minute_s)
    seeded = [(f"acc{n}-{uuid.uuid4().hex[:6]}@example.com", n % 2 == 0) for n in range(subjects)]
    run.sandbox.seed(
        [
            {
                "platform_key": f"acc-{uuid.uuid4().hex}",
                "email": email,
                "conversations": conversations,
                "entries": 5,
            }
            for email, _ in seeded
        ]
    )
    protection = workflow.Protection(run.vault, run.pseudonym_key)
    with run.maker() as session:
        for email, erase_too in seeded:
            submission = workflow.Submission(
                [workflow.Identifier(IdentifierKind.EMAIL, email)],
                Regulation.GDPR,
                Source.API,
                org=run.org_name,
            )
            if erase_too:
                workflow.submit_request(
                    session, submission, protection=protection, default_org=None
                )
                overlap.append(email)
            submit_access(session, submission, protection=protection, default_org=None)
        session.commit()
    return overlap


def _read_forever(
    database_url: str,
    vault_keys: dict[str, bytes],
    pseudonym_key: bytes,
    minute_s: float,
    stop: Any,
) -> None:
    """A worker slot of its own (another process, as in production): retrieval until stopped."""
    from erasure.db import make_engine, make_sessionmaker
    from erasure.identifiers import Vault
    from erasure.pipeline.context import Pipeline
    from erasure.pipeline.salesforce_port import Clients
    from erasure.salesforce import (
        InMemoryTokenStore,
        InMemoryUsageStore,
        SalesforceClient,
        Timeouts,
    )

    engine = make_engine(database_url, pool_size=2)
    vault = Vault(vault_keys)
    tokens, usage = InMemoryTokenStore(), InMemoryUsageStore()
    ctx = Pipeline(
        sessionmaker=make_sessionmaker(engine),
        clients=Clients(
            lambda o, c: SalesforceClient(
                o, c, tokens=tokens, usage=usage, timeouts=Timeouts(5, 30)
            ),
            vault,
        ),
        vault=vault,
        pseudonym_key=pseudonym_key,
    )
    try:
        while not stop.is_set():
            if not retrieve.run(ctx, tunables(minute_s)):
                stop.wait(0.1)
    finally:
        ctx.clients.close()
        engine.dispose()


class AccessWorker:
    """Access retrieval in a process of its own beside the dispatcher, as a worker slot is."""

    def __init__(self, run: Any, database_url: str, minute_s: float) -> None:
        context = multiprocessing.get_context("spawn")
        self.stop_event = context.Event()
        self.process = context.Process(
            target=_read_forever,
            args=(database_url, run.vault_keys, run.pseudonym_key, minute_s, self.stop_event),
            daemon=True,
        )

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        self.stop_event.set()
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def tunables(minute_s: float) -> retrieve.AccessTunables:
    return retrieve.AccessTunables(
        window=EntriesWindow(calls=90, window_s=minute_s), erasure_recheck_s=0.5
    )


def access_figures(run: Any) -> dict[str, int]:
    with run.maker() as session:
        ready = session.scalar(
            select(func.count())
            .select_from(AccessRequest)
            .where(AccessRequest.status == AccessStatus.READY)
        )
        entries_ours = session.scalar(select(func.count()).select_from(EntryCall))
        erased_first = session.scalar(
            select(func.count())
            .select_from(AccessRead)
            .where(AccessRead.status == ReadStatus.ERASED)
        )
        delete_412 = session.scalar(
            select(func.count()).select_from(DeleteCall).where(DeleteCall.http_status == 412)
        )
        total = session.scalar(select(func.count()).select_from(AccessRequest))
    with run.maker() as session:
        waiting = session.scalar(
            select(func.count())
            .select_from(AccessRead)
            .where(AccessRead.status == ReadStatus.PENDING)
        )
    with run.maker() as session:
        read_while_erasing = session.scalar(
            select(func.count())
            .select_from(AccessRead)
            .where(
                AccessRead.status == ReadStatus.READ,
                AccessRead.end_user_id.in_(select(Target.salesforce_id)),
            )
        )
    return {
        "reads_of_erased_records": int(read_while_erasing or 0),
        "reads_waiting_on_erasure": int(waiting or 0),
        "access_requests": int(total or 0),
        "access_ready": int(ready or 0),
        "entries_calls": run.sandbox.call_count("entries"),
        "entries_calls_planned": int(entries_ours or 0),
        "reads_left_to_erasure": int(erased_first or 0),
        "delete_412": int(delete_412 or 0),
    }


def wait_resolved(run: Any, seconds: float = 30.0) -> None:
    """Resolve the overlap erasures (the relay's work in production) before timing starts."""
    from erasure import task_names
    from erasure.outbox import messages as outbox
    from erasure.pipeline import resolve

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        found: list[list[Any]] = []

        def publish(
            name: str, args: Any, correlation_id: str | None = None, into: list[Any] = found
        ) -> None:
            if name == task_names.RESOLVE:
                into.append(list(args))

        with run.maker() as session, session.begin():
            outbox.publish_due(session, publish)
        for args in found:
            resolve.resolve(run.ctx, uuid.UUID(args[0]), int(args[1]))
        if not found:
            return


def make_urgent(run: Any, count: int, due_in_s: float) -> tuple[list[uuid.UUID], datetime]:
    """Give `count` backlog requests a deadline `due_in_s` from now (the others keep theirs,
    weeks away): what an erasure close to its deadline looks like to the scheduler."""
    from sqlalchemy import update

    from erasure.core.models import ErasureRequest

    due = datetime.now(UTC) + timedelta(seconds=due_in_s)
    with run.maker() as session, session.begin():
        ids = list(
            session.scalars(
                select(Target.request_id)
                .where(Target.org_id == run.org_id, Target.delete_call_id.is_(None))
                .order_by(Target.id)
                .limit(count)
            )
        )
        session.execute(update(Target).where(Target.request_id.in_(ids)).values(due_at=due))
        session.execute(update(ErasureRequest).where(ErasureRequest.id.in_(ids)).values(due_at=due))
    return ids, due


def erasure_figures(
    run: Any, urgent: list[uuid.UUID], *, windows: int, window_s: float, quota: int
) -> dict[str, Any]:
    """What access may not touch: the delete calls each quota window carried (of `quota`
    slots), and the urgent requests whose delete was not accepted by their deadline."""
    with run.maker() as session:
        sent = session.scalars(
            select(DeleteCall.sent_at)
            .where(DeleteCall.http_status == 202)
            .order_by(DeleteCall.sent_at)
        ).all()
        met = session.scalar(
            select(func.count(func.distinct(Target.request_id)))
            .select_from(Target)
            .join(DeleteCall, DeleteCall.id == Target.delete_call_id)
            .where(
                Target.request_id.in_(urgent),
                DeleteCall.http_status == 202,
                DeleteCall.sent_at <= Target.due_at,
            )
        )
    per_window = [0] * windows
    for at in sent:
        index = int((at - sent[0]).total_seconds() // window_s)
        if index < windows:
            per_window[index] += 1
    # The dispatcher's pace: seconds between consecutive calls of the first window (a starved
    # CPU shows here, not in the quota).
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(sent[:quota])]
    return {
        "call_gap_s": statistics.median(gaps) if gaps else 0.0,
        "slots_per_window": per_window,
        "slots_unused": sum(quota - used for used in per_window),
        "urgent": len(urgent),
        "urgent_missed": len(urgent) - int(met or 0),
    }
