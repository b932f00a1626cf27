"""The plain results the client returns: small frozen dataclasses, no personal data in them.

A subject's phone or email goes in (as a `Subject`) but never comes back out: results carry only
Salesforce ids, statuses and timestamps.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from erasure.salesforce import ids as sfids


class Route(enum.StrEnum):
    """The calls the client makes, as named in counters (client and sandbox use the same names)."""

    TOKEN = "token"  # noqa: S105 -- a route name, not a secret
    QUERY = "query"
    SEARCH = "search"  # SOSL, for phone numbers (`/services/data/vNN.N/search`)
    DELETE_PARTICIPANTS = "delete_participants"
    DELETE_CONVERSATIONS = "delete_conversations"
    ENTRIES = "entries"

    @property
    def is_delete(self) -> bool:
        return self in (Route.DELETE_PARTICIPANTS, Route.DELETE_CONVERSATIONS)

    @property
    def is_engagement(self) -> bool:
        return self in (Route.DELETE_PARTICIPANTS, Route.DELETE_CONVERSATIONS, Route.ENTRIES)


class SubjectKind(enum.StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    PLATFORM_KEY = "platform_key"
    CONTACT_ID = "contact_id"


@dataclass(frozen=True)
class Subject:
    """Who to look for. `value` is personal data: it is never logged or returned."""

    kind: SubjectKind
    value: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.value.strip():
            raise ValueError("a subject needs a value")


@dataclass(frozen=True)
class EndUserRef:
    """A MessagingEndUser found for a subject."""

    id: str
    message_type: str | None
    contact_id: str | None


@dataclass(frozen=True)
class SessionRef:
    """A MessagingSession row."""

    id: str
    end_user_id: str
    conversation_id: str | None
    status: str


class LogState(enum.StrEnum):
    """Where a ConversationApiLog stands, from its raw Status compared case-insensitively."""

    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    #: A value we have never seen: treated as not final (a timeout flags it for a person).
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        return self in (LogState.COMPLETED, LogState.FAILED)


_PENDING = {"requested", "enqueued", "in_progress", "inprogress", "processing"}
_COMPLETED = {"completed", "success", "succeeded"}
_FAILED = {"failed", "failure", "error"}


def log_state(status: str | None) -> LogState:
    value = (status or "").strip().lower()
    if value in _PENDING:
        return LogState.PENDING
    if value in _COMPLETED:
        return LogState.COMPLETED
    if value in _FAILED:
        return LogState.FAILED
    return LogState.UNKNOWN


@dataclass(frozen=True)
class ApiLog:
    """One ConversationApiLog row (or the log part of a 202 response)."""

    id: str
    requested_entity_identifier: str
    requested_entity_type: str | None
    status: str
    action: str | None = None
    operation: str | None = None
    status_history: str | None = None
    #: Salesforce's free text about the outcome (e.g. why it failed); holds no personal data.
    context: str | None = None
    requested_date: str | None = None

    @property
    def state(self) -> LogState:
        return log_state(self.status)

    @property
    def is_final(self) -> bool:
        return self.state.is_final

    def is_for(self, entity_id: str) -> bool:
        """True if this log is about `entity_id` (15 or 18 chars; ids are case-sensitive)."""
        return self.requested_entity_identifier[:15] == sfids.to15(entity_id)


def logs_by_entity(logs: Iterable[ApiLog], entity_ids: Iterable[str]) -> dict[str, list[ApiLog]]:
    """Group `logs` under the 18- or 15-char ids the caller sent; ids without a log map to []."""
    by15: dict[str, list[ApiLog]] = {}
    for log in logs:
        by15.setdefault(log.requested_entity_identifier[:15], []).append(log)
    return {eid: by15.get(sfids.to15(eid), []) for eid in entity_ids}


@dataclass(frozen=True)
class DeleteAccepted:
    """A 202 from a delete: the logs Salesforce created, one per id sent."""

    ids: tuple[str, ...]
    logs: tuple[ApiLog, ...]
    status: int = 202

    def log_for(self, entity_id: str) -> ApiLog | None:
        return next((log for log in self.logs if log.is_for(entity_id)), None)


@dataclass(frozen=True)
class EntryRef:
    """A conversation entry's metadata; its text and payload are deliberately not kept."""

    identifier: str
    entry_type: str | None
    sender_role: str | None
    server_received_at_ms: int | None


@dataclass(frozen=True)
class ConversationRef:
    """A Conversation of an end user: its record id and the identifier entries are read by."""

    id: str
    identifier: str
    end_user_id: str


@dataclass(frozen=True)
class EntriesPage:
    """One page of entries with their content: personal data, for an access export only."""

    entries: list[dict[str, Any]]
    next_page_token: str | None


@dataclass(frozen=True)
class CallCounts:
    """Calls spent by one credential: per route, per outcome (HTTP status or `timeout`/`error`)."""

    credential: str
    by_route: Mapping[str, Mapping[str, int]]

    def total(self, route: str | None = None) -> int:
        routes = [route] if route is not None else list(self.by_route)
        return sum(sum(self.by_route.get(r, {}).values()) for r in routes)
