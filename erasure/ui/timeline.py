"""A request's audit leaves as sentences a person reads: who did what, to which deadline
("Ana Lima (officer) extended the deadline to 2027-01-30: <reason>"), with the raw leaf kept
beside each for whoever checks it. Actors are named from the `by` field (`user:<id>`,
`api-key:<prefix>`). Leaves hold no free text: an extension's reason is matched to its leaf by
the SHA-256 the leaf holds, and the cancel reason to the cancel, and both are given only for the
roles that may read them (`Reasons`, from the page); other roles read the sentence without it."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.accounts.models import ApiKey, User
from erasure.ui.queries import TimelineEntry

#: What each kind of leaf says happened, after the actor when there is one.
PHRASES = {
    "request.received": "received the request",
    "request.awaiting_approval": "The request waits for an approver",
    "request.approved": "approved the request",
    "request.resolving": "Looking up the subject's records in Salesforce",
    "request.resolved": "Found the subject's records in Salesforce",
    "request.confirming": "All deletions sent; confirming them in Salesforce",
    "request.completed": "Completed: every record deleted and confirmed",
    "request.completed_no_data": "Completed: Salesforce held no record of the subject",
    "request.failed": "Failed: some records could not be deleted",
    "request.cancelled": "cancelled the request",
    "request.retried": "retried the request",
    "request.extended": "extended the deadline",
    "request.at_risk": "Deadline at risk: the predicted completion is too close to it",
    "request.promoted": "Went on alone after the request it was linked to was cancelled",
    "request.held": "Waiting on a legal hold that covers the subject",
    "request.resumed": "The legal hold ended; on to deletion",
    "request.hold_overridden": "overrode the legal hold; on to deletion",
    "targets.requested": "Deletion sent to Salesforce",
    "targets.in_progress": "Salesforce is deleting the records",
    "targets.held": "Deletion held back",
    "targets.returned": "Salesforce returned the deletion for another try",
    "targets.attached": "Records joined a deletion already sent",
    "targets.failed": "Salesforce refused the delete call: its records failed",
    "targets.blocked_open_session": (
        "Records wait for an open Messaging session to end (Salesforce refuses to delete them "
        "while it is active)"
    ),
    "targets.unblocked": "The Messaging session ended: the records are queued again",
    "subject.shredded": "Retention: the subject's identifiers were destroyed",
    "notice.generated": "A notice to the subject was made",
    "target.deleted": "A record was deleted and confirmed absent",
    "target.failed": "A record could not be deleted",
}
#: Why Salesforce returned a deletion (erasure.pipeline.call_outcomes), in words.
RETURNED = {
    "open_session": "412: a conversation was still active",
    "rate_limited": "429: too many requests, the execution user pauses",
    "org_paused": "404 from the engagement API: the org pauses",
}
#: Kinds that a person (or a system with a key) does: their sentence starts with the actor.
DONE_BY = frozenset(
    {
        "request.received",
        "request.approved",
        "request.cancelled",
        "request.retried",
        "request.extended",
        "request.hold_overridden",
    }
)


@dataclass(frozen=True)
class Reasons:
    """Decrypted reasons for a reader allowed to see them: each extension's, and the cancel's."""

    extensions: Sequence[str] = ()
    cancel: str | None = None
    _by_hash: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for reason in self.extensions:
            self._by_hash[hashlib.sha256(reason.encode()).hexdigest()] = reason

    def of(self, entry: TimelineEntry) -> str | None:
        if entry.kind == "request.extended":
            return self._by_hash.get(str(entry.data.get("reason_sha256")))
        if entry.kind == "request.cancelled":
            return self.cancel
        return None


@dataclass(frozen=True)
class Line:
    at: str
    sentence: str
    entry: TimelineEntry
    #: The decrypted reason that ends the sentence, kept apart so the page marks it as free text
    #: (it may name the subject) and nothing else on the page carries it.
    reason: str | None = None


def actor_names(session: Session, entries: Sequence[TimelineEntry]) -> dict[str, str]:
    """`by` values of these entries mapped to a name and role (two queries at most)."""
    users: dict[uuid.UUID, str] = {}
    prefixes: set[str] = set()
    for entry in entries:
        by = str(entry.data.get("by") or "")
        if by.startswith("user:"):
            try:
                users[uuid.UUID(by.removeprefix("user:"))] = by
            except ValueError:
                continue
        elif by.startswith("api-key:"):
            prefixes.add(by.removeprefix("api-key:"))
    names: dict[str, str] = {}
    if users:
        for user in session.scalars(select(User).where(User.id.in_(list(users)))):
            names[users[user.id]] = f"{user.name} ({user.role.value})"
    if prefixes:
        for key in session.scalars(select(ApiKey).where(ApiKey.prefix.in_(prefixes))):
            names[f"api-key:{key.prefix}"] = f"API key “{key.name}” ({key.role.value})"
    return names


def _day(value: object) -> str | None:
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d")
    except ValueError:
        return None


def _detail(entry: TimelineEntry) -> str:
    data = entry.data
    if entry.kind == "request.extended" and _day(data.get("to_due_at")):
        return f" to {_day(data.get('to_due_at'))}"
    if entry.kind == "request.received":
        source = data.get("source")
        due = _day(data.get("due_at"))
        return (f" (from {source})" if source else "") + (f"; due {due}" if due else "")
    if entry.kind == "targets.returned" and data.get("reason") in RETURNED:
        return f" ({RETURNED[str(data['reason'])]})"
    if entry.kind == "notice.generated" and data.get("notice_kind"):
        return f": {str(data['notice_kind']).replace('_', ' ')}"
    if entry.kind == "request.cancelled" and data.get("deletions_not_stoppable"):
        return f"; {data['deletions_not_stoppable']} deletion(s) already sent could not be stopped"
    return ""


def lines(
    session: Session, entries: Sequence[TimelineEntry], reasons: Reasons | None = None
) -> list[Line]:
    names = actor_names(session, entries)
    out = []
    for entry in entries:
        reason = None
        phrase = PHRASES.get(entry.kind, entry.kind.replace(".", ": ").replace("_", " "))
        by = entry.data.get("by")
        if entry.kind == "request.received" and not by:
            sentence = f"Request received{_detail(entry)}"
        elif entry.kind in DONE_BY:
            who = names.get(str(by), "Someone no longer known") if by else "The system"
            sentence = f"{who} {phrase}{_detail(entry)}"
            reason = reasons.of(entry) if reasons else None
        else:
            sentence = f"{phrase}{_detail(entry)}"
        out.append(Line(at=entry.at, sentence=sentence, entry=entry, reason=reason))
    return out
