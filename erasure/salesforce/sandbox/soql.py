"""The SOQL subset the sandbox understands, parsed strictly: anything else is MALFORMED_QUERY.

SELECT f, ... FROM Object [WHERE cond] [ORDER BY f [ASC|DESC]] [LIMIT n], where cond is built from
`f = v`, `f != v`, `f IN (...)`, `f NOT IN (...)`, AND, OR and parentheses. Like Salesforce, it
refuses AND and OR mixed at one level without parentheses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from erasure.salesforce import ids as sfids

#: Queryable objects and their fields, in Salesforce's spelling.
SCHEMA: dict[str, tuple[str, ...]] = {
    "Contact": (
        "Id",
        "Name",
        "Email",
        "Phone",
        "MobilePhone",
        "HomePhone",
        "OtherPhone",
        "AssistantPhone",
        "Fax",
    ),
    "MessagingEndUser": (
        "Id",
        "Name",
        "MessagingPlatformKey",
        "MessageType",
        "ContactId",
        "MessagingChannelId",
    ),
    "MessagingSession": ("Id", "Name", "MessagingEndUserId", "ConversationId", "Status"),
    "Conversation": ("Id", "Name", "ConversationIdentifier"),
    "ConversationApiLog": (
        "Id",
        "Name",
        "Action",
        "Operation",
        "RequestedEntityType",
        "RequestedEntityIdentifier",
        "Status",
        "StatusHistory",
        "Context",
        "Parameter",
        "RequestedDate",
        "RequestedById",
    ),
}

#: Fields compared as Salesforce ids (15 or 18 chars, case-sensitive) rather than as text.
ID_FIELDS = frozenset(
    {
        "Id",
        "ContactId",
        "MessagingEndUserId",
        "ConversationId",
        "MessagingChannelId",
        "RequestedById",
    }
)


class SoqlError(Exception):
    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*')
      | (?P<number>\d+)
      | (?P<op>!=|<>|=|\(|\)|,)
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def _unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            if nxt not in _UNESCAPE:
                raise SoqlError("MALFORMED_QUERY", f"invalid escape sequence \\{nxt}")
            out.append(_UNESCAPE[nxt])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    value: Any = None


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise SoqlError("MALFORMED_QUERY", f"unexpected character at position {pos}")
        pos = m.end()
        if m.group("string") is not None:
            tokens.append(_Tok("string", m.group("string"), _unescape(m.group("string")[1:-1])))
        elif m.group("number") is not None:
            tokens.append(_Tok("number", m.group("number"), int(m.group("number"))))
        elif m.group("op") is not None:
            tokens.append(_Tok("op", m.group("op")))
        else:
            tokens.append(_Tok("word", m.group("word")))
    return tokens


Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Query:
    fields: tuple[str, ...]
    sobject: str
    where: Predicate | None
    order_by: tuple[str, bool] | None  # field, descending
    limit: int | None

    def run(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        hits = [r for r in rows if self.where is None or self.where(r)]
        if self.order_by is not None:
            field, desc = self.order_by
            hits.sort(key=lambda r: (r.get(field) is None, str(r.get(field) or "")), reverse=desc)
        if self.limit is not None:
            hits = hits[: self.limit]
        return [{f: r.get(f) for f in self.fields} for r in hits]


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokenize(text)
        self.i = 0
        self.sobject = ""

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def next(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise SoqlError("MALFORMED_QUERY", "unexpected end of query")
        self.i += 1
        return tok

    def is_kw(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "word" and tok.text.upper() in words

    def expect_kw(self, word: str) -> None:
        tok = self.next()
        if tok.kind != "word" or tok.text.upper() != word:
            raise SoqlError("MALFORMED_QUERY", f"expected {word}, found '{tok.text}'")

    def expect_op(self, op: str) -> None:
        tok = self.next()
        if tok.kind != "op" or tok.text != op:
            raise SoqlError("MALFORMED_QUERY", f"expected '{op}', found '{tok.text}'")

    def field(self) -> str:
        tok = self.next()
        if tok.kind != "word":
            raise SoqlError("MALFORMED_QUERY", f"expected a field, found '{tok.text}'")
        return tok.text

    def resolve(self, name: str) -> str:
        for known in SCHEMA[self.sobject]:
            if known.lower() == name.lower():
                return known
        raise SoqlError("INVALID_FIELD", f"No such column '{name}' on entity '{self.sobject}'")

    def parse(self) -> Query:
        self.expect_kw("SELECT")
        raw_fields = [self.field()]
        while self.peek() is not None and self.peek() == _Tok("op", ","):
            self.next()
            raw_fields.append(self.field())
        self.expect_kw("FROM")
        name = self.field()
        match = next((s for s in SCHEMA if s.lower() == name.lower()), None)
        if match is None:
            raise SoqlError("INVALID_TYPE", f"sObject type '{name}' is not supported.")
        self.sobject = match
        fields = tuple(self.resolve(f) for f in raw_fields)
        where = None
        if self.is_kw("WHERE"):
            self.next()
            where = self.condition()
        order_by = None
        if self.is_kw("ORDER"):
            self.next()
            self.expect_kw("BY")
            order_field = self.resolve(self.field())
            desc = False
            if self.is_kw("ASC", "DESC"):
                desc = self.next().text.upper() == "DESC"
            order_by = (order_field, desc)
        limit = None
        if self.is_kw("LIMIT"):
            self.next()
            tok = self.next()
            if tok.kind != "number":
                raise SoqlError("MALFORMED_QUERY", "LIMIT needs a number")
            limit = int(tok.value)
        if self.peek() is not None:
            raise SoqlError("MALFORMED_QUERY", f"unexpected token: '{self.next().text}'")
        return Query(fields, self.sobject, where, order_by, limit)

    def condition(self) -> Predicate:
        parts = [self.factor()]
        joiner: str | None = None
        while self.is_kw("AND", "OR"):
            word = self.next().text.upper()
            if joiner is not None and word != joiner:
                # Salesforce: "unexpected token: OR" when AND and OR mix without parentheses.
                raise SoqlError("MALFORMED_QUERY", f"unexpected token: {word}")
            joiner = word
            parts.append(self.factor())
        if len(parts) == 1:
            return parts[0]
        if joiner == "AND":
            return lambda r: all(p(r) for p in parts)
        return lambda r: any(p(r) for p in parts)

    def factor(self) -> Predicate:
        tok = self.peek()
        if tok == _Tok("op", "("):
            self.next()
            inner = self.condition()
            self.expect_op(")")
            return inner
        field = self.resolve(self.field())
        if self.is_kw("NOT"):
            self.next()
            self.expect_kw("IN")
            values = _checked(field, self.value_list())
            return lambda r: not _matches_any(field, r.get(field), values)
        if self.is_kw("IN"):
            self.next()
            values = _checked(field, self.value_list())
            return lambda r: _matches_any(field, r.get(field), values)
        op = self.next()
        if op.kind != "op" or op.text not in ("=", "!=", "<>"):
            raise SoqlError("MALFORMED_QUERY", f"unsupported operator '{op.text}'")
        (value,) = _checked(field, [self.value()])
        if op.text == "=":
            return lambda r: _matches_any(field, r.get(field), [value])
        return lambda r: not _matches_any(field, r.get(field), [value])

    def value(self) -> Any:
        tok = self.next()
        if tok.kind in ("string", "number"):
            return tok.value
        if tok.kind == "word" and tok.text.lower() == "null":
            return None
        if tok.kind == "word" and tok.text.lower() in ("true", "false"):
            return tok.text.lower() == "true"
        raise SoqlError("MALFORMED_QUERY", f"expected a value, found '{tok.text}'")

    def value_list(self) -> list[Any]:
        self.expect_op("(")
        values = [self.value()]
        while self.peek() == _Tok("op", ","):
            self.next()
            values.append(self.value())
        self.expect_op(")")
        return values


def _checked(field: str, values: list[Any]) -> list[Any]:
    """Salesforce rejects a malformed id literal even when no row would match it."""
    if field in ID_FIELDS:
        for value in values:
            if isinstance(value, str) and not sfids.is_valid(value):
                raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {value}")
    return values


def _matches_any(field: str, actual: Any, values: Sequence[Any]) -> bool:
    for value in values:
        if actual is None or value is None:
            if actual is value:
                return True
            continue
        if field in ID_FIELDS and isinstance(value, str):
            # Ids compare case-sensitively on their 15-char form, in either length.
            if str(actual)[:15] == value[:15]:
                return True
        elif isinstance(value, str) and isinstance(actual, str):
            # Text comparisons in SOQL are case-insensitive.
            if actual.lower() == value.lower():
                return True
        elif actual == value:
            return True
    return False


def parse(text: str) -> Query:
    """Parse one statement; raises SoqlError with Salesforce's error code."""
    if not text.strip():
        raise SoqlError("MALFORMED_QUERY", "empty query")
    return _Parser(text).parse()
