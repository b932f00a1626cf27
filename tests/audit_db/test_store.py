"""The audit log in Postgres: sequencing, concurrent writers, checkpoints, proofs, export."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from erasure.audit import leaves, store
from erasure.audit.checkpoint import SigningKey, open_checkpoint
from erasure.audit.merkle.hashing import leaf_hash
from erasure.audit.merkle.tree import MerkleTree
from erasure.audit.merkle.verification import verify_inclusion
from erasure.audit.models import AuditLeaf, AuditTreeHead
from erasure.audit.verify import verify_bundle
from erasure.db import make_sessionmaker


def _append(session: Session, n: int, kind: str = "test.event") -> list[AuditLeaf]:
    request_id = uuid.uuid4()
    return [
        leaves.append(session, kind=kind, request_id=request_id, data={"n": n_}) for n_ in range(n)
    ]


def _all_hashes_in_order(session: Session) -> list[bytes]:
    rows = session.execute(
        select(AuditLeaf.leaf_index, AuditLeaf.leaf_hash)
        .where(AuditLeaf.leaf_index.is_not(None))
        .order_by(AuditLeaf.leaf_index)
    ).all()
    assert [index for index, _ in rows] == list(range(len(rows)))  # dense: no gaps, no duplicates
    return [hash_ for _, hash_ in rows]


def test_sequencer_assigns_dense_positions_and_the_stored_root_is_the_merkle_root(
    db_session: Session,
) -> None:
    _append(db_session, 37)
    db_session.flush()
    while store.sequence(db_session, batch=10):
        pass
    head, frontier = store.latest_head(db_session)
    hashes = _all_hashes_in_order(db_session)
    assert head.size == len(hashes) == frontier.size
    assert head.root == MerkleTree(hashes).root() == frontier.root()
    # Every leaf's inclusion proof, served from stored nodes, verifies against the head.
    for index in range(max(0, head.size - 37), head.size):
        proof = store.inclusion_proof(db_session, index, head.size)
        verify_inclusion(index, head.size, hashes[index], proof, head.root)
    # ... and against an older head too.
    older = head.size - 5
    for index in range(older - 3, older):
        verify_inclusion(
            index,
            older,
            hashes[index],
            store.inclusion_proof(db_session, index, older),
            MerkleTree(hashes).root(older),
        )


def test_leaf_bytes_are_exactly_the_hashed_bytes(db_session: Session) -> None:
    (leaf,) = _append(db_session, 1)
    db_session.flush()
    stored = db_session.get(AuditLeaf, leaf.id)
    assert stored is not None and leaf_hash(stored.leaf) == stored.leaf_hash


def test_32_concurrent_writers_and_a_running_sequencer_leave_no_gaps_or_forks(
    engine: Engine,
) -> None:
    maker = make_sessionmaker(engine)
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(10):
                with maker() as session:
                    _append(session, 3)
                    session.commit()
        except BaseException as exc:  # noqa: BLE001  # surfaced by the assertion below
            errors.append(exc)

    def sequencer() -> None:
        while not stop.is_set():
            with maker() as session:
                store.sequence(session, batch=50)
                session.commit()

    sequencers = [threading.Thread(target=sequencer) for _ in range(2)]  # two: the lock keeps one
    writers = [threading.Thread(target=writer) for _ in range(32)]
    for thread in sequencers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in sequencers:
        thread.join()
    assert not errors
    with maker() as session:
        while store.sequence(session):
            pass
        session.commit()
        hashes = _all_hashes_in_order(session)
        assert (
            session.scalar(
                select(func.count()).select_from(AuditLeaf).where(AuditLeaf.leaf_index.is_(None))
            )
            == 0
        )
        head, _ = store.latest_head(session)
        assert head.size == len(hashes) and head.root == MerkleTree(hashes).root()
        # Each stored head is a prefix of the tree we have now (no fork at any batch).
        tree = MerkleTree(hashes)
        for size, root in session.execute(select(AuditTreeHead.size, AuditTreeHead.root)).all():
            assert tree.root(size) == root


def test_checkpoints_are_signed_notes_of_the_latest_head(
    db_session: Session, signing_key: SigningKey
) -> None:
    _append(db_session, 3)
    store.sequence(db_session)
    checkpoint = store.sign_checkpoint(db_session, signing_key, origin="erasure.test/audit")
    assert checkpoint is not None
    opened = open_checkpoint(checkpoint.note, signing_key.verifier(), origin="erasure.test/audit")
    head, _ = store.latest_head(db_session)
    assert (opened.size, opened.root_hash) == (head.size, head.root)
    assert (
        store.sign_checkpoint(db_session, signing_key, origin="erasure.test/audit") is None
    )  # nothing new


def test_export_writes_a_bundle_that_verifies_offline(
    engine: Engine, signing_key: SigningKey, tmp_path: Path
) -> None:
    maker = make_sessionmaker(engine)
    with maker() as session:
        _append(session, 25)
        session.commit()
        while store.sequence(session):
            pass
        store.sign_checkpoint(session, signing_key, origin="erasure.test/audit")
        session.commit()
        summary = store.export(session, tmp_path / "bundle", verifier_key=signing_key.verifier())
    report = verify_bundle(tmp_path / "bundle", signing_key.verifier())
    assert report.ok, report.findings
    assert summary.leaf_count == report.tree_size
    # One edited byte in one leaf is caught, and named.
    lines = (tmp_path / "bundle" / "leaves.jsonl").read_bytes().split(b"\n")
    # The shared test database holds other tests' leaves too: edit one of ours.
    ours = next(i for i, line in enumerate(lines) if b'"kind":"test.event"' in line)
    lines[ours] = lines[ours].replace(b'"n":', b'"m":', 1)
    (tmp_path / "bundle" / "leaves.jsonl").write_bytes(b"\n".join(lines))
    tampered = verify_bundle(tmp_path / "bundle", signing_key.verifier())
    assert not tampered.ok
    assert tampered.first_bad_leaf == ours
