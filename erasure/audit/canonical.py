"""Is this leaf exactly its own RFC 8785 (JCS) canonical form?

The verifier asks this of every leaf, so it has to be fast: the `rfc8785` package is pure
Python (about 20 µs per leaf, 20 s per million), while the standard library's C encoder with
`sort_keys` and compact separators produces identical bytes in the common case, at about a
third of the cost. The fast path is used only when it provably agrees with RFC 8785:

- the line is ASCII, so every key is ASCII and code-point order (Python) equals UTF-16
  code-unit order (RFC 8785 §3.2.3);
- no floats, no NaN/Infinity and no integer beyond ±(2**53 - 1) were parsed, since number
  formatting is where the two encoders differ;
- string escaping agrees by construction: both escape only `"`, `\\` and U+0000..U+001F, with
  the short forms for \\b \\f \\n \\r \\t and lowercase `\\u00xx` otherwise.

Anything else, including every line the fast path would reject, is decided by `rfc8785`
itself, so a "not canonical" verdict always comes from the reference implementation.
"""

from __future__ import annotations

import json

import rfc8785

_SAFE_INT = 2**53 - 1


class _NeedsReferenceError(Exception):
    """The fast path cannot decide this line; ask `rfc8785`."""


def _parse_int(text: str) -> int:
    value = int(text)
    if not -_SAFE_INT <= value <= _SAFE_INT:
        raise _NeedsReferenceError
    return value


def _refuse(_: str) -> float:
    raise _NeedsReferenceError


# Built once: constructing a decoder per call (json.loads with hooks) costs more than parsing.
_DECODER = json.JSONDecoder(parse_float=_refuse, parse_int=_parse_int, parse_constant=_refuse)
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def is_canonical(line: bytes) -> bool:
    """True when `line` is valid JSON and byte-identical to its RFC 8785 serialisation."""
    if line.isascii():
        text = line.decode("ascii")
        try:
            value = _DECODER.decode(text)
        except _NeedsReferenceError:
            pass
        except (ValueError, RecursionError):
            return False
        else:
            if _ENCODER.encode(value) == text:
                return True
    return _reference_is_canonical(line)


def _reference_is_canonical(line: bytes) -> bool:
    try:
        value = json.loads(line.decode("utf-8"))
        return bool(rfc8785.dumps(value) == line)
    except (ValueError, TypeError, RecursionError):
        # UnicodeDecodeError, JSONDecodeError and rfc8785.CanonicalizationError are all
        # ValueErrors: invalid UTF-8, invalid JSON or a value JCS cannot represent.
        return False
