"""Building the few SOQL (and one SOSL) statements the client sends, values escaped properly.

Values that reach a query are personal data (phones, emails): they are escaped here and the query
text is never logged anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

# SOQL's escape sequences for quoted strings (Salesforce "Quoted String Escape Sequences").
_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


def literal(value: str) -> str:
    """A SOQL string literal for `value`, quotes included."""
    return "'" + "".join(_ESCAPES.get(ch, ch) for ch in value) + "'"


def in_list(values: Iterable[str]) -> str:
    """`('a', 'b')`; callers must not pass an empty iterable (SOQL has no empty IN list)."""
    items = [literal(v) for v in values]
    if not items:
        raise ValueError("an IN list needs at least one value")
    return "(" + ", ".join(items) + ")"


def chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """Consecutive slices of at most `size` values."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


END_USER_FIELDS = "Id, MessageType, ContactId"
SESSION_FIELDS = "Id, MessagingEndUserId, ConversationId, Status"
LOG_FIELDS = (
    "Id, Action, Operation, RequestedEntityType, RequestedEntityIdentifier, Status, "
    "StatusHistory, Context, RequestedDate"
)


def select(fields: str, sobject: str, where: str) -> str:
    """`SELECT fields FROM sobject WHERE where`; every value in `where` must come from `literal`."""
    # Joined rather than formatted: the pieces are our constants plus escaped literals.
    return " ".join(("SELECT", fields, "FROM", sobject, "WHERE", where))


def phone_search(terms: Sequence[str], fields: Sequence[str]) -> str:
    """`FIND {t1 OR t2} IN PHONE FIELDS RETURNING Contact(Id, fields...)` for digit-only terms.

    SOSL reserves ? & | ! { } [ ] ( ) ^ ~ * : \\ " ' + - in the search text; digits need no
    escaping, and anything else is refused here rather than escaped.
    """
    if not terms or not all(term.isdigit() for term in terms):
        raise ValueError("phone search terms are non-empty strings of digits")
    if not all(field.isidentifier() for field in fields):
        raise ValueError("field names are identifiers")
    returning = ", ".join(("Id", *fields))
    return f"FIND {{{' OR '.join(terms)}}} IN PHONE FIELDS RETURNING Contact({returning})"
