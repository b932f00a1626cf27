"""The fast canonical-JSON check agrees with the rfc8785 reference on every input."""

from __future__ import annotations

import contextlib
import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from erasure.audit.canonical import is_canonical
from tests.support.canonical import reference

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**60), 2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


def encodings(value: object) -> list[bytes]:
    """Canonical and near-canonical spellings of the same value."""
    out = [
        json.dumps(value).encode(),
        json.dumps(value, sort_keys=True, separators=(",", ":")).encode(),
        json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        ),
    ]
    with contextlib.suppress(rfc8785.CanonicalizationError):
        out.append(rfc8785.dumps(value))  # type: ignore[arg-type]
    return out


@given(json_values)
@settings(max_examples=400)
def test_fast_check_matches_reference(value: object) -> None:
    for line in encodings(value):
        assert is_canonical(line) == reference(line), line


@given(st.binary(max_size=40))
def test_arbitrary_bytes_match_reference(line: bytes) -> None:
    assert is_canonical(line) == reference(line)


@pytest.mark.parametrize(
    ("line", "canonical"),
    [
        (b'{"a":1}', True),
        (b'{"a":1.0}', False),
        (b'{"a":1.5}', True),
        (b'{"b":1,"a":2}', False),
        (b'{"a":"\\u00e9"}', False),
        ('{"a":"é"}'.encode(), True),
        (b'{"a":-0}', False),
        (b'{"a":1e400}', False),
        (b'{"a":NaN}', False),
        (b'{"a":9007199254740991}', True),
        (b'{"a":9007199254740992}', False),
        (b'{"a":1,"a":1}', False),
        (b' {"a":1}', False),
        (b'{"a":"\\n"}', True),
        (b'{"a":"\\u000a"}', False),
        (b'{"a":"\\u001f"}', True),
        (b"[" * 100_000, False),
        (b"", False),
        # Key order is by UTF-16 code units: U+1F600 (surrogates D83D DE00) sorts before
        # U+FB33 in RFC 8785, but after it by code point as Python sorts.
        ('{"\ufb33":1,"\U0001f600":2}'.encode(), False),
        ('{"\U0001f600":2,"\ufb33":1}'.encode(), True),
    ],
)
def test_known_cases(line: bytes, canonical: bool) -> None:
    assert is_canonical(line) is canonical
    assert reference(line) is canonical
