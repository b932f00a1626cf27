"""The orjson fast path of the canonical check never calls a line canonical that RFC 8785 (the
`rfc8785` package) does not, and it does decide the leaves the log writes (so the fast path is
the one measured, not a fallback). Writing is held to the same reference: `canonical_json`
gives exactly `rfc8785.dumps`'s bytes, or its error."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from erasure.audit import leaves
from erasure.audit.canonical import _orjson_says_canonical, canonical_json, is_canonical
from tests.support.canonical import json_values, reference, spellings


@given(json_values)
@settings(max_examples=1500)
def test_orjson_path_agrees_with_rfc8785(value: object) -> None:
    for line in spellings(value):
        expected = reference(line)
        if _orjson_says_canonical(line):
            assert expected, line
        assert is_canonical(line) == expected, line


@given(json_values, st.data())
@settings(max_examples=800)
def test_one_changed_byte_is_judged_as_rfc8785_judges_it(
    value: object, data: st.DataObject
) -> None:
    for line in spellings(value):
        if not line:
            continue
        at = data.draw(st.integers(0, len(line) - 1))
        byte = data.draw(st.sampled_from(b'.eE0123456789-+"\\:,[]{} \x7fatrufls'))
        changed = line[:at] + bytes([byte]) + line[at + 1 :]
        if _orjson_says_canonical(changed):
            assert reference(changed), changed
        assert is_canonical(changed) == reference(changed), changed


@given(st.binary(max_size=60))
def test_arbitrary_bytes_never_pass_the_orjson_path_wrongly(line: bytes) -> None:
    if _orjson_says_canonical(line):
        assert reference(line)


def test_the_log_s_own_leaves_take_the_orjson_path() -> None:
    leaf = leaves.encode_leaf(
        kind="request.received",
        at=datetime(2025, 6, 1, 12, 34, 56, 789012, tzinfo=UTC),
        request_id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
        data={"batch": 3, "subject": [{"kind": "phone", "pseudonym": "ab" * 32}]},
    )
    assert reference(leaf)
    assert _orjson_says_canonical(leaf)
    # A float makes it undecidable here: the reference decides (1.5 is canonical, 1.0 is not).
    assert not _orjson_says_canonical(b'{"a":1.5}') and is_canonical(b'{"a":1.5}')
    assert not _orjson_says_canonical(b'{"a":1.0}') and not is_canonical(b'{"a":1.0}')


@given(json_values | st.lists(json_values, max_size=3).map(tuple))
@settings(max_examples=1500)
def test_canonical_json_writes_what_rfc8785_writes(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)  # type: ignore[arg-type]
    except rfc8785.CanonicalizationError:
        with pytest.raises(rfc8785.CanonicalizationError):
            canonical_json(value)
    else:
        assert canonical_json(value) == expected


class _Colour(enum.StrEnum):
    RED = "red"


@pytest.mark.parametrize(
    "value",
    [
        {"id": uuid.UUID(int=1)},
        {"at": datetime(2025, 1, 1, tzinfo=UTC)},
        {"colour": _Colour.RED},
        {1: "int key"},
        {"big": 2**60},
    ],
    ids=["uuid", "datetime", "str-enum", "int-key", "big-int"],
)
def test_canonical_json_leaves_what_orjson_would_write_differently_to_rfc8785(
    value: object,
) -> None:
    """orjson writes UUIDs, datetimes and enums, and accepts int keys; RFC 8785 decides."""
    try:
        expected = rfc8785.dumps(value)  # type: ignore[arg-type]
    except (rfc8785.CanonicalizationError, TypeError, AttributeError) as exc:
        with pytest.raises(type(exc)):
            canonical_json(value)
    else:
        assert canonical_json(value) == expected
