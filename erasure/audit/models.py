"""The audit log's tables: append-only leaves, the Merkle tree's nodes and head, signed
checkpoints.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from erasure.db import Base, now_column


class AuditLeaf(Base):
    """One event of the audit log. Append-only: the database refuses UPDATE (except the one-time
    assignment of a position), DELETE and TRUNCATE.

    Leaves are inserted "queued" (no position) in the business transaction; the sequencer assigns
    `leaf_index` in batches, so intake never waits on a global lock.
    """

    __tablename__ = "audit_leaves"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    leaf_index: Mapped[int | None] = mapped_column(
        BigInteger, unique=True, comment="position in the Merkle tree; NULL until sequenced"
    )
    kind: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    leaf: Mapped[bytes] = mapped_column(
        LargeBinary, comment="RFC 8785 canonical JSON: the hashed bytes"
    )
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), comment="SHA-256(0x00 || leaf)")
    created_at: Mapped[datetime] = now_column()
    sequenced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_audit_leaves_unsequenced", "id", postgresql_where=text("leaf_index IS NULL")),
    )


class AuditNode(Base):
    """A perfect subtree hash of the Merkle tree, stored once it is complete (insert-only), so an
    inclusion or consistency proof needs O(log n) rows, never a rehash of the tree."""

    __tablename__ = "audit_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, comment="0 = leaf hashes")
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditTreeHead(Base):
    """The tree after each sequencer batch: size, root, and the frontier to extend it from."""

    __tablename__ = "audit_tree_heads"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    frontier: Mapped[bytes] = mapped_column(
        LargeBinary, comment="erasure.audit.merkle.Frontier bytes"
    )
    created_at: Mapped[datetime] = now_column()


class AuditCheckpoint(Base):
    """A signed checkpoint (C2SP tlog-checkpoint in a signed note) of one tree head."""

    __tablename__ = "audit_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text, comment="the signed note, exactly as published")
    key_name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = now_column()
