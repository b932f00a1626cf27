"""Salesforce record ids: the 15/18-character forms and the checksum that links them."""

from __future__ import annotations

import re

_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$")
_SUFFIX_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def checksum(id15: str) -> str:
    """The three characters Salesforce appends to a case-sensitive 15-char id."""
    out = []
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if ch.isupper():
                bits |= 1 << i
        out.append(_SUFFIX_CHARS[bits])
    return "".join(out)


def to18(record_id: str) -> str:
    """The 18-char form of a valid id; raises ValueError otherwise."""
    if not is_valid(record_id):
        raise ValueError("not a Salesforce id")
    return record_id if len(record_id) == 18 else record_id + checksum(record_id)


def to15(record_id: str) -> str:
    """The case-sensitive 15-char form: what ConversationApiLog.RequestedEntityIdentifier holds."""
    return record_id[:15]


def is_valid(record_id: str) -> bool:
    """A 15-char id, or an 18-char id whose suffix matches its checksum."""
    if not _ID_RE.match(record_id):
        return False
    return len(record_id) == 15 or record_id[15:] == checksum(record_id[:15])
