"""The reference answer to 'is this line canonical JSON' (rfc8785's own serialisation), and
generated JSON values in the spellings the fast paths must judge as the reference does."""

from __future__ import annotations

import contextlib
import json

import orjson
import rfc8785
from hypothesis import strategies as st


def reference(line: bytes) -> bool:
    try:
        return bool(rfc8785.dumps(json.loads(line.decode("utf-8"))) == line)
    except (ValueError, TypeError, RecursionError):
        return False


# Printable ASCII (digits, ".", "e", "E", quotes and backslashes included, where the float and
# string checks could be fooled), control characters, and some non-ASCII.
tricky_text = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F)
    | st.sampled_from(["é", "\u2028", "\U0001f600", "\ufb33", "."]),
    max_size=10,
)
numbers = (
    st.integers(-(2**64), 2**64)
    | st.integers(2**53 - 3, 2**53 + 3)
    | st.integers(-(2**53) - 3, -(2**53) + 3)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(10**6), 10**6).map(float)  # integral floats: "1.0" to orjson, "1" to JCS
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | tricky_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(tricky_text, children, max_size=4)
    ),
    max_leaves=14,
)


def spellings(value: object) -> list[bytes]:
    """The value as orjson, the standard library and RFC 8785 write it."""
    out: list[bytes] = []
    for options in (orjson.OPT_SORT_KEYS, 0, orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER):
        with contextlib.suppress(orjson.JSONEncodeError):
            out.append(orjson.dumps(value, option=options))
    out.append(json.dumps(value, sort_keys=True, separators=(",", ":")).encode())
    with contextlib.suppress(rfc8785.CanonicalizationError):
        out.append(rfc8785.dumps(value))  # type: ignore[arg-type]
    return out
