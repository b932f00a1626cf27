"""The SOSL subset the sandbox understands: a search of Contact phone fields.

    FIND {term [OR term ...]} IN PHONE FIELDS RETURNING Contact(Field, ...) [LIMIT n]

A term is a word or a "quoted phrase". SOSL reserves ? & | ! { } [ ] ( ) ^ ~ * : \\ " ' + - in
a word: unescaped, they are refused (MALFORMED_SEARCH); escaped with a backslash, they are text.
Anything outside this subset is refused too, as the SOQL subset does.

Matching follows what Salesforce's search does with phone fields (its own example searches
`FIND {4155551212} IN PHONE FIELDS` to find a number stored formatted): a phone field is indexed
by its digits, so a term matches when its digits equal the field's digits, whatever punctuation,
spaces or format either has. "(415) 555-0001" is found by 4155550001 and by "415 555 0001", and
"+1 415-555-0001" by 14155550001. Unlike a real org, the sandbox indexes at once: a real org's
search index can lag recent changes by minutes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from erasure.salesforce.sandbox.soql import SCHEMA, SoqlError

#: The phone-type fields of the searchable objects: what IN PHONE FIELDS looks at.
PHONE_FIELDS: dict[str, tuple[str, ...]] = {
    "Contact": ("Phone", "MobilePhone", "HomePhone", "OtherPhone", "AssistantPhone", "Fax"),
}
RESERVED = frozenset("?&|!{}[]()^~*:\\\"'+-")
MAX_RECORDS = 2000

_STATEMENT = re.compile(
    r"""\s*FIND\s*\{(?P<expr>(?:[^{}\\]|\\.)*)\}
        \s*IN\s+(?P<group>[A-Za-z]+)\s+FIELDS
        \s+RETURNING\s+(?P<object>[A-Za-z_][A-Za-z0-9_]*)\s*\((?P<fields>[^()]*)\)
        (?:\s+LIMIT\s+(?P<limit>\d+))?\s*""",
    re.IGNORECASE | re.VERBOSE,
)
_TERM = re.compile(r'\s*(?:"(?P<phrase>(?:[^"\\]|\\.)*)"|(?P<word>(?:[^\s"\\]|\\.)+))')


@dataclass(frozen=True)
class Search:
    terms: tuple[str, ...]  # the digits of each term
    sobject: str
    fields: tuple[str, ...]
    limit: int

    def run(self, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The matching rows, whole (the caller picks `fields`), at most `limit` of them."""
        return [row for row in rows if self._matches(row)][: self.limit]

    def _matches(self, row: Mapping[str, Any]) -> bool:
        for field in PHONE_FIELDS[self.sobject]:
            value = row.get(field)
            if isinstance(value, str) and _digits(value) in self.terms:
                return True
        return False


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _terms(expr: str) -> tuple[str, ...]:
    terms: list[str] = []
    expect_term = True
    position = 0
    while expr[position:].strip():
        match = _TERM.match(expr, position)
        if match is None:
            raise SoqlError("MALFORMED_SEARCH", "unexpected character in the search text")
        position = match.end()
        word = match["word"]
        if word is not None and not expect_term:
            if word.upper() != "OR":
                raise SoqlError("MALFORMED_SEARCH", f"unsupported operator '{word}'")
            expect_term = True
            continue
        if not expect_term:
            raise SoqlError("MALFORMED_SEARCH", "two terms without an operator")
        if word is not None and any(ch in RESERVED for ch in re.sub(r"\\.", "", word)):
            raise SoqlError("MALFORMED_SEARCH", "unescaped reserved character in the search text")
        text = _unescape(word if word is not None else match["phrase"])
        if len(text.strip()) < 2:
            raise SoqlError("MALFORMED_SEARCH", "search terms must be at least 2 characters")
        terms.append(_digits(text))
        expect_term = False
    if expect_term:
        raise SoqlError("MALFORMED_SEARCH", "the search text is empty or ends with OR")
    return tuple(term for term in terms if term)


def parse(text: str | None) -> Search:
    """Parse one SOSL statement of the subset; raises SoqlError with Salesforce's error code."""
    match = _STATEMENT.fullmatch(text or "")
    if match is None:
        raise SoqlError("MALFORMED_SEARCH", "not a FIND {...} IN PHONE FIELDS RETURNING search")
    if match["group"].upper() != "PHONE":
        raise SoqlError("MALFORMED_SEARCH", "the sandbox searches PHONE FIELDS only")
    sobject = next((s for s in PHONE_FIELDS if s.lower() == match["object"].lower()), None)
    if sobject is None:
        raise SoqlError("INVALID_TYPE", f"sObject type '{match['object']}' is not supported.")
    fields = []
    for raw in match["fields"].split(","):
        name = raw.strip()
        known = next((f for f in SCHEMA[sobject] if f.lower() == name.lower()), None)
        if known is None:
            raise SoqlError("INVALID_FIELD", f"No such column '{name}' on entity '{sobject}'")
        fields.append(known)
    limit = min(int(match["limit"] or MAX_RECORDS), MAX_RECORDS)
    return Search(_terms(match["expr"]), sobject, tuple(fields), limit)
