"""Audit append throughput: leaves queued in the business transaction and sequenced in batches
(erasure's design) next to a global lock taken inside every transaction (the simple design), with
1 and 32 concurrent writers, in the same run on the same Postgres.

    python -m bench.audit_append [--seconds 8]

Each append is one transaction that inserts one leaf and commits. For the queued design the clock
stops only when the sequencer has given every leaf its position.
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from bench.databases import unique_database
from bench.machine import describe
from erasure.audit import leaves, store
from erasure.audit.models import AuditLeaf
from erasure.db import make_engine, make_sessionmaker

GLOBAL_LOCK = 0x676C6F62


def append_queued(session: Session) -> None:
    leaves.append(session, kind="bench", request_id=uuid.uuid4(), data={"n": 1})


def append_global_lock(session: Session) -> None:
    session.execute(select(func.pg_advisory_xact_lock(GLOBAL_LOCK)))
    position = session.scalar(select(func.coalesce(func.max(AuditLeaf.leaf_index), -1))) + 1  # type: ignore[operator]
    leaf = leaves.append(session, kind="bench", request_id=uuid.uuid4(), data={"n": 1})
    session.flush()
    session.execute(
        text("UPDATE audit_leaves SET leaf_index = :p WHERE id = :id"),
        {"p": position, "id": leaf.id},
    )


def run(url: str, writers: int, seconds: float, *, queued: bool) -> float:
    engine = make_engine(url, pool_size=writers + 2)
    maker = make_sessionmaker(engine)
    with maker() as session:
        before = session.scalar(select(func.count()).select_from(AuditLeaf)) or 0
    deadline = time.perf_counter() + seconds
    stop = threading.Event()
    counts = [0] * writers

    def writer(index: int) -> None:
        while time.perf_counter() < deadline:
            with maker() as session:
                (append_queued if queued else append_global_lock)(session)
                session.commit()
            counts[index] += 1

    def sequencer() -> None:
        while not stop.is_set():
            with maker() as session:
                done = store.sequence(session)
                session.commit()
            if not done:
                time.sleep(0.05)

    started = time.perf_counter()
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    seq = threading.Thread(target=sequencer)
    if queued:
        seq.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if queued:
        with maker() as session:  # wait until every appended leaf has its position
            while session.scalar(
                select(func.count()).select_from(AuditLeaf).where(AuditLeaf.leaf_index.is_(None))
            ):
                session.rollback()
                time.sleep(0.02)
        stop.set()
        seq.join()
    elapsed = time.perf_counter() - started
    with maker() as session:
        after = session.scalar(select(func.count()).select_from(AuditLeaf)) or 0
    engine.dispose()
    assert after - before == sum(counts)  # noqa: S101  # nothing lost
    return sum(counts) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8)
    args = parser.parse_args()
    print(describe())
    # The global-lock design positions leaves itself; run it on its own database so the two
    # designs never share positions. Both databases have names of this run only.
    with (
        unique_database("audit") as url,
        unique_database("audit_lock") as lock_url,
    ):
        print(
            f"{'writers':>8} {'global lock (baseline)':>24} {'queued + sequencer':>20} {'ratio':>7}"
        )
        for writers in (1, 32):
            baseline = run(lock_url, writers, args.seconds, queued=False)
            ours = run(url, writers, args.seconds, queued=True)
            print(f"{writers:>8} {baseline:>18.0f} /s {ours:>14.0f} /s {ours / baseline:>6.2f}x")


if __name__ == "__main__":
    main()
