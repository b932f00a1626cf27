"""The batch form of the canonical check (`non_canonical_lines`, the one the verifier runs)
names exactly the lines RFC 8785 rejects, whatever the batch boundaries: in particular, lines
that are pieces of one JSON value (which joined with commas would render as canonical) are
never cleared together."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erasure.audit.canonical import _orjson_clears_batch, is_canonical, non_canonical_lines
from tests.support.canonical import json_values, reference, spellings

from .support import make_leaves

PIECES_OF_ONE_VALUE = [
    [b"[1", b"2],3"],  # "[" + "[1,2],3" + "]" renders as itself, but neither line is JSON
    [b'"x', b'y",1'],
    [b'{"a":1', b'"b":2}'],
    [b'{"a":[1', b"2]}", b"3"],
    [b"1", b"2,3", b"4"],
]


@pytest.mark.parametrize("lines", PIECES_OF_ONE_VALUE)
def test_pieces_of_one_value_are_not_canonical(lines: list[bytes]) -> None:
    joined = b"[" + b",".join(lines) + b"]"
    assert orjson.dumps(orjson.loads(joined)) == joined  # joined, they look canonical
    expected = [i for i, line in enumerate(lines) if not reference(line)]
    assert expected  # the case is meaningful: some line is not JSON on its own
    assert non_canonical_lines(lines) == expected


@pytest.mark.parametrize(
    "lines",
    [
        [b" 1", b"2"],
        [b"1 ", b"2"],
        [b"", b"1"],
        [b"1", b""],
        [b'{"a":1.0}', b"1"],
        [b'{"b":1,"a":2}'],
        [b'{"a":1,"a":1}'],
        [b"[9007199254740992]"],
        [b'["\\u00e9"]', b'"\\n"'],
    ],
)
def test_batches_the_fast_path_cannot_clear_are_judged_line_by_line(lines: list[bytes]) -> None:
    assert not _orjson_clears_batch(lines)
    assert non_canonical_lines(lines) == [i for i, line in enumerate(lines) if not reference(line)]


def test_the_logs_leaves_are_cleared_by_the_batch_path() -> None:
    # The fast path is the one the benchmark measures, not a fallback.
    leaves = make_leaves(3000)
    assert _orjson_clears_batch(leaves)
    assert non_canonical_lines(leaves) == []


line_pool = st.one_of(
    json_values.map(lambda value: spellings(value)[0] if spellings(value) else b"null"),
    json_values.flatmap(lambda value: st.sampled_from(spellings(value) or [b"null"])),
    st.sampled_from([piece for lines in PIECES_OF_ONE_VALUE for piece in lines]),
    st.binary(max_size=12),
)


@given(st.lists(line_pool, max_size=12), st.integers(1, 5))
@settings(max_examples=600)
def test_batches_agree_with_the_line_by_line_check(lines: list[bytes], batch: int) -> None:
    expected = [i for i, line in enumerate(lines) if not is_canonical(line)]
    assert non_canonical_lines(lines, batch_lines=batch) == expected
    assert expected == [i for i, line in enumerate(lines) if not reference(line)]
