"""Is this leaf exactly its own RFC 8785 (JCS) canonical form?

The verifier asks this of every leaf, so it has to be fast: the `rfc8785` package is pure
Python (about 20 µs per leaf, 20 s per million). Two faster encoders produce identical bytes in
the common case, and each is trusted only where it provably agrees with RFC 8785; any line
neither can decide is decided by `rfc8785` itself, so a "not canonical" verdict always comes
from the reference implementation.

First, orjson (about 3 µs a leaf): a line is canonical when it is ASCII without a backslash,
`orjson.dumps(orjson.loads(line), OPT_SORT_KEYS | OPT_STRICT_INTEGER)` gives back exactly the
line, and the line holds no number with a fraction or exponent. Why that suffices:

- equal bytes mean the line is compact, its keys are sorted in byte order (which for ASCII is
  RFC 8785's UTF-16 code-unit order) and unique, and every string is written the way orjson
  writes it; with no backslash in the line, no string holds an escape, so every string is
  printable ASCII written as itself, exactly as RFC 8785 writes it;
- integers: OPT_STRICT_INTEGER refuses any beyond ±(2**53 - 1), and below that both write the
  plain decimal digits (orjson parses a larger integer as a float, caught next);
- floats are where the encoders differ (1.0 is "1.0" to orjson, "1" to RFC 8785), and orjson
  always writes a float with "." or "e": outside the strings (found by splitting on the quotes,
  safe without backslashes) and with `true`/`false` removed, the line must hold neither.

Then the standard library's C encoder with `sort_keys` and compact separators, for lines with
escapes (about 8 µs a leaf), used only when:

- the line is ASCII, so every key is ASCII and code-point order (Python) equals UTF-16
  code-unit order (RFC 8785 §3.2.3);
- no floats, no NaN/Infinity and no integer beyond ±(2**53 - 1) were parsed, since number
  formatting is where the two encoders differ;
- string escaping agrees by construction: both escape only `"`, `\\` and U+0000..U+001F, with
  the short forms for \\b \\f \\n \\r \\t and lowercase `\\u00xx` otherwise.

`tests/audit/test_canonical_properties.py` checks both fast paths against `rfc8785` on
generated JSON values, their non-canonical renderings and arbitrary bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import orjson
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


_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_ORJSON_ERRORS = (orjson.JSONDecodeError, orjson.JSONEncodeError)


def _orjson_says_canonical(line: bytes) -> bool:
    """True only when the orjson path proves `line` canonical (see the module's docstring);
    False means "not decided here", never "not canonical"."""
    if b"\\" in line or not line.isascii():
        return False
    try:
        if orjson.dumps(orjson.loads(line), option=_ORJSON_OPTIONS) != line:
            return False
    except _ORJSON_ERRORS:
        return False
    return not _has_float(line)


def _has_float(rendered: bytes) -> bool:
    """Whether orjson output without a backslash holds a float: "." or "e"/"E" outside its
    strings, once `true` and `false` are taken out (orjson writes every float with one of them).
    Without backslashes every quote opens or closes a string, so the strings are the odd pieces
    between quotes."""
    outside_strings = b"".join(rendered.split(b'"')[::2])
    outside_strings = outside_strings.replace(b"true", b"").replace(b"false", b"")
    return b"." in outside_strings or b"e" in outside_strings or b"E" in outside_strings


#: Lines per batch of `non_canonical_lines`: large enough that per-batch work is negligible,
#: small enough that a batch the fast path cannot clear costs little to re-check line by line.
BATCH_LINES = 1024


def non_canonical_lines(lines: Sequence[bytes], *, batch_lines: int = BATCH_LINES) -> list[int]:
    """The positions of the lines that are not canonical: `is_canonical` over many lines.

    Batches of lines are cleared together by the orjson path at the cost of one render and one
    comparison per batch (see `_orjson_clears_batch`); a batch it cannot clear is checked line by
    line with `is_canonical`, so the verdicts are exactly `is_canonical`'s.
    """
    bad: list[int] = []
    check = is_canonical
    for start in range(0, len(lines), batch_lines):
        batch = lines[start : start + batch_lines]
        if not _orjson_clears_batch(batch):
            bad.extend(start + i for i, line in enumerate(batch) if not check(line))
    return bad


def _orjson_clears_batch(batch: Sequence[bytes]) -> bool:
    """True only when every line of `batch` passes `_orjson_says_canonical`.

    Each line is parsed on its own, so each is one complete JSON value; the list of values is
    rendered once, and equals "[" + ",".join(batch) + "]" only if every line equals its own
    rendering: were a line's rendering shorter or longer than the line, one of the two would be
    a complete JSON value followed by "," inside a complete JSON value, which cannot parse.
    The ASCII, backslash and float conditions hold for every line when they hold for the
    joined lines (the added commas are outside strings and add no ".", "e" or "E").
    """
    joined = b",".join(batch)
    if b"\\" in joined or not joined.isascii():
        return False
    try:
        rendered = orjson.dumps(list(map(orjson.loads, batch)), option=_ORJSON_OPTIONS)
    except _ORJSON_ERRORS:
        return False
    return rendered[1:-1] == joined and not _has_float(joined)


def is_canonical(line: bytes) -> bool:
    """True when `line` is valid JSON and byte-identical to its RFC 8785 serialisation."""
    if _orjson_says_canonical(line):
        return True
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


_PLAIN_SCALARS = (str, int, bool, type(None))


def _plain(value: object) -> bool:
    """Only dicts with str keys, lists, tuples, str, int, bool and None, by exact type: orjson
    writes other types (UUIDs, datetimes, enums, subclasses) where RFC 8785 refuses them."""
    if type(value) in _PLAIN_SCALARS:
        return True
    if type(value) is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if type(value) is list or type(value) is tuple:
        return all(_plain(item) for item in value)
    return False


def canonical_json(value: object) -> bytes:
    """The RFC 8785 bytes of `value`. orjson's rendering is taken where it provably is RFC
    8785's (plain types, and a result `_orjson_says_canonical` would pass: ASCII, no backslash,
    no float; orjson refuses integers beyond ±(2**53 - 1)); anything else goes to `rfc8785`,
    which also raises for what RFC 8785 cannot represent. Writing an audit leaf this way costs
    a few µs instead of about 20."""
    if _plain(value):
        try:
            rendered = orjson.dumps(value, option=_ORJSON_OPTIONS)
        except _ORJSON_ERRORS:
            rendered = b"\\"  # out of orjson's range: the reference decides
        if b"\\" not in rendered and rendered.isascii() and not _has_float(rendered):
            return rendered
    return rfc8785.dumps(value)  # type: ignore[arg-type]  # JSON values, else it raises


def _reference_is_canonical(line: bytes) -> bool:
    try:
        value = json.loads(line.decode("utf-8"))
        return bool(rfc8785.dumps(value) == line)
    except (ValueError, TypeError, RecursionError):
        # UnicodeDecodeError, JSONDecodeError and rfc8785.CanonicalizationError are all
        # ValueErrors: invalid UTF-8, invalid JSON or a value JCS cannot represent.
        return False
