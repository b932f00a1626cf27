"""The audit log in the database: the sequencer that gives queued leaves their place in the
Merkle tree, signed checkpoints, and proofs served from stored perfect-subtree nodes.

Writers never wait on each other: a business transaction only inserts its leaf (queued). One
sequencer at a time (a transaction-scoped advisory lock) assigns positions in batches, extends the
tree from its stored frontier and stores the perfect subtrees each leaf completes, so a proof
reads O(log n) rows and nothing is ever rehashed. Nothing here commits.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, insert, select, text, tuple_
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from erasure.audit.bundle import BundleSummary, write_bundle
from erasure.audit.checkpoint import Checkpoint, SigningKey, VerifierKey
from erasure.audit.merkle.frontier import Frontier
from erasure.audit.merkle.hashing import EMPTY_ROOT
from erasure.audit.merkle.proofs import (
    consistency_proof_ranges,
    inclusion_proof_ranges,
    perfect_nodes,
)
from erasure.audit.merkle.tree import range_root
from erasure.audit.models import AuditCheckpoint, AuditLeaf, AuditNode, AuditTreeHead
from erasure.audit.origin import LogIdentity, resolve_origin
from erasure.errors import NotReady

logger = logging.getLogger(__name__)

SEQUENCER_LOCK = 0x61756474  # "audt"
DEFAULT_BATCH = 5000


@dataclass(frozen=True)
class TreeHead:
    size: int
    root: bytes


def latest_head(session: Session) -> tuple[TreeHead, Frontier]:
    row = session.scalar(select(AuditTreeHead).order_by(AuditTreeHead.size.desc()).limit(1))
    if row is None:
        return TreeHead(0, EMPTY_ROOT), Frontier()
    return TreeHead(row.size, row.root), Frontier.from_bytes(row.frontier)


def sequence(session: Session, *, batch: int = DEFAULT_BATCH) -> int:
    """Give queued leaves their positions and extend the tree; returns how many were sequenced.

    Returns 0 at once if another sequencer holds the lock. Leaves are taken in insertion order
    among those whose transactions have committed, so positions are dense: no gaps, no forks.
    """
    if not session.scalar(select(func.pg_try_advisory_xact_lock(SEQUENCER_LOCK))):
        return 0
    queued = session.execute(
        select(AuditLeaf.id, AuditLeaf.leaf_hash)
        .where(AuditLeaf.leaf_index.is_(None))
        .order_by(AuditLeaf.id)
        .limit(batch)
    ).all()
    if not queued:
        return 0
    _, frontier = latest_head(session)
    positions: list[dict[str, int]] = []
    nodes: list[dict[str, object]] = []
    for leaf_id, leaf_hash in queued:
        positions.append({"leaf_id": leaf_id, "position": frontier.size})
        for level, index, node in frontier.append_nodes(leaf_hash):
            nodes.append({"level": level, "index": index, "hash": node})
    # One statement for the whole batch; the trigger allows exactly this one-time assignment.
    session.execute(
        text(
            "UPDATE audit_leaves SET leaf_index = v.position, sequenced_at = now() "
            "FROM (SELECT unnest(CAST(:ids AS bigint[])) AS leaf_id, "
            "unnest(CAST(:positions AS bigint[])) AS position) AS v WHERE audit_leaves.id = v.leaf_id"
        ),
        {"ids": [p["leaf_id"] for p in positions], "positions": [p["position"] for p in positions]},
    )
    # The raw UPDATE bypasses the ORM: leaves this session already holds must be re-read.
    for held in list(session.identity_map.values()):
        if isinstance(held, AuditLeaf):
            session.expire(held, ["leaf_index", "sequenced_at"])
    session.execute(insert(AuditNode), nodes)
    session.add(
        AuditTreeHead(size=frontier.size, root=frontier.root(), frontier=frontier.to_bytes())
    )
    session.flush()
    return len(queued)


def log_identity(session: Session, key: SigningKey, *, origin: str | None = None) -> LogIdentity:
    """The origin this log's next checkpoint carries (see `erasure.audit.origin`); `origin` is
    the operator's ERASURE_AUDIT_ORIGIN, checked. Raises `LogIdentityError` on a mismatch."""
    latest = latest_checkpoint(session)
    return resolve_origin(
        key, configured=origin, latest_checkpoint=latest.note if latest is not None else None
    )


def check_log_identity(
    session: Session, key: SigningKey, *, origin: str | None
) -> LogIdentity | None:
    """At process start: refuse (`LogIdentityError`) a key or origin that would split the log.

    Only reads. Returns None when the database cannot be read yet (down, or not migrated):
    starting is still allowed, and `sign_checkpoint` makes the same check before it signs.
    """
    try:
        identity = log_identity(session, key, origin=origin)
    except SQLAlchemyError:
        logger.warning("audit log identity not checked at start: the database is not readable")
        return None
    if identity.legacy:
        logger.warning(
            "audit log continues under its recorded origin, which is not its key's name "
            "(a log started before the origin followed the key); see docs/audit.md",
            extra={"origin": identity.origin, "key_name": key.name},
        )
    return identity


def sign_checkpoint(
    session: Session, key: SigningKey, *, origin: str | None = None
) -> AuditCheckpoint | None:
    """Sign the latest tree head, unless a checkpoint of that size exists; returns the new one.

    The origin is the log's own (`log_identity`): a key or `origin` that would split the log
    raises `LogIdentityError` and nothing is signed.
    """
    head, _ = latest_head(session)
    if head.size == 0 or session.get(AuditCheckpoint, head.size) is not None:
        return None
    identity = log_identity(session, key, origin=origin)
    note = Checkpoint(identity.origin, head.size, head.root).sign(key)
    checkpoint = AuditCheckpoint(size=head.size, root=head.root, note=note, key_name=key.name)
    session.add(checkpoint)
    session.flush()
    return checkpoint


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    return session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1))


def _node_lookup(
    session: Session, wanted: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    if not wanted:
        return {}
    rows = session.execute(
        select(AuditNode.level, AuditNode.index, AuditNode.hash).where(
            tuple_(AuditNode.level, AuditNode.index).in_(list(set(wanted)))
        )
    ).all()
    return {(level, index): node for level, index, node in rows}


def inclusion_proof(session: Session, index: int, size: int) -> list[bytes]:
    """The inclusion proof of leaf `index` in the tree of `size` leaves, from stored nodes."""
    ranges = inclusion_proof_ranges(index, size)
    wanted = [node for start, end in ranges for node in perfect_nodes(start, end)]
    found = _node_lookup(session, wanted)
    return [range_root(start, end, lambda level, i: found[(level, i)]) for start, end in ranges]


def consistency_proof(session: Session, first: int, second: int) -> list[bytes]:
    """The RFC 9162 consistency proof from tree size `first` to `second` (both sequenced)."""
    ranges = consistency_proof_ranges(first, second)
    wanted = [node for start, end in ranges for node in perfect_nodes(start, end)]
    found = _node_lookup(session, wanted)
    return [range_root(start, end, lambda level, i: found[(level, i)]) for start, end in ranges]


def leaves_of_request(session: Session, request_id: uuid.UUID) -> list[AuditLeaf]:
    return list(
        session.scalars(
            select(AuditLeaf).where(AuditLeaf.request_id == request_id).order_by(AuditLeaf.id)
        )
    )


def iter_leaves(session: Session, *, size: int, chunk: int = 10000) -> Iterator[bytes]:
    """Every sequenced leaf's exact bytes, in tree order, up to `size` (streams in chunks)."""
    position = 0
    while position < size:
        rows = session.scalars(
            select(AuditLeaf.leaf)
            .where(
                AuditLeaf.leaf_index >= position, AuditLeaf.leaf_index < min(size, position + chunk)
            )
            .order_by(AuditLeaf.leaf_index)
        ).all()
        if not rows:
            raise RuntimeError(f"the audit log has no leaf at position {position}")
        yield from rows
        position += len(rows)


def checkpoint_notes(session: Session) -> list[str]:
    return list(session.scalars(select(AuditCheckpoint.note).order_by(AuditCheckpoint.size)))


def export(session: Session, path: Path, *, verifier_key: VerifierKey) -> BundleSummary:
    """Write an evidence bundle of the log up to its latest checkpoint (leaves after it are left
    for the next export: a bundle proves exactly what its newest checkpoint signs)."""
    checkpoint = latest_checkpoint(session)
    if checkpoint is None:
        raise NotReady("the log has no signed checkpoint yet")
    return write_bundle(
        path,
        leaves=iter_leaves(session, size=checkpoint.size),
        checkpoints=checkpoint_notes(session),
        verifier_key=verifier_key,
    )
