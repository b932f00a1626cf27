"""Audit leaves: one event as RFC 8785 canonical JSON, appended in the business transaction.

A leaf is queued (no position) by `append`; the sequencer gives it its place in the Merkle tree.
What goes into a leaf is decided here, so this is where personal data is kept out: subjects appear
only as pseudonyms (hex HMACs), and values are ints, strings, bools, lists and dicts (RFC 8785
forbids nothing, but floats would make the bytes depend on formatting, so they are refused).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeAlias

from sqlalchemy.orm import Session

from erasure.audit.canonical import canonical_json
from erasure.audit.merkle.hashing import leaf_hash
from erasure.audit.models import AuditLeaf
from erasure.db import Insert

LEAF_VERSION = 1

LeafValue: TypeAlias = "str | int | bool | Sequence[LeafValue] | Mapping[str, LeafValue] | None"


def _check_values(value: object, path: str) -> None:
    if isinstance(value, float):
        raise TypeError(f"audit leaf field {path} is a float; use an int or a string")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_values(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_values(item, f"{path}[{index}]")


def timestamp(moment: datetime) -> str:
    """UTC RFC 3339 with microseconds: one spelling per instant, so the bytes are stable."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def encode_leaf(
    *, kind: str, at: datetime, request_id: uuid.UUID | None, data: Mapping[str, LeafValue]
) -> bytes:
    """The canonical bytes of one event. Pure."""
    _check_values(data, "data")
    document: dict[str, Any] = {
        "v": LEAF_VERSION,
        "kind": kind,
        "at": timestamp(at),
        "request_id": str(request_id) if request_id else None,
        "data": data,
    }
    return canonical_json(document)


def append(
    session: Session,
    *,
    kind: str,
    request_id: uuid.UUID | None,
    data: Mapping[str, LeafValue],
    at: datetime | None = None,
) -> AuditLeaf:
    """Queue one leaf in the caller's transaction. Does not commit; takes no global lock."""
    leaf_bytes = encode_leaf(
        kind=kind, at=at or datetime.now(UTC), request_id=request_id, data=data
    )
    leaf = AuditLeaf(
        kind=kind, request_id=request_id, leaf=leaf_bytes, leaf_hash=leaf_hash(leaf_bytes)
    )
    session.add(leaf)
    return leaf


INSERT_SQL = "INSERT INTO audit_leaves (kind, request_id, leaf, leaf_hash) VALUES (%s, %s, %s, %s)"


def leaf_insert(
    *,
    kind: str,
    request_id: uuid.UUID | None,
    data: Mapping[str, LeafValue],
    at: datetime | None = None,
) -> Insert:
    """`append` for a hot path that writes plain statements (`erasure.db.insert_together`): the
    same leaf, as an INSERT to send with the transaction's other writes."""
    leaf_bytes = encode_leaf(
        kind=kind, at=at or datetime.now(UTC), request_id=request_id, data=data
    )
    return Insert(INSERT_SQL, (kind, request_id, leaf_bytes, leaf_hash(leaf_bytes)))
