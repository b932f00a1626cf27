"""The sandbox org's records and its ConversationApiLog timeline.

Plain in-memory tables, mutated only under `SandboxOrg`'s lock. Deletes really remove rows once
their log reaches COMPLETED, so SOQL read-backs and entry reads see them gone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from erasure.salesforce import ids as sfids

PREFIX = {
    "Contact": "003",
    "MessagingEndUser": "0PA",
    "MessagingSession": "0Mw",
    "Conversation": "0dw",
    "ConversationApiLog": "1CL",
    "User": "005",
    "MessagingChannel": "0Mj",
}
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
#: The statuses a log walks through; the last one is decided when it is processed.
LOG_STEPS = ("REQUESTED", "ENQUEUED", "IN_PROGRESS")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


@dataclass
class LogRecord:
    id: str
    name: str
    entity_id: str
    entity_type: str
    operation: str
    requested_at: float
    requested_by: str
    status: str = "REQUESTED"
    history: list[str] = field(default_factory=list)
    context: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status not in LOG_STEPS

    def row(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Name": self.name,
            "Action": "Delete",
            "Operation": self.operation,
            "RequestedEntityType": self.entity_type,
            "RequestedEntityIdentifier": self.entity_id[:15],
            "Status": self.status,
            "StatusHistory": ";".join(self.history),
            "Context": self.context,
            "Parameter": None,
            "RequestedDate": iso(self.requested_at),
            "RequestedById": self.requested_by,
        }


class OrgData:
    def __init__(self) -> None:
        self._counter = 0
        self.tables: dict[str, dict[str, dict[str, Any]]] = {
            name: {} for name in ("Contact", "MessagingEndUser", "MessagingSession", "Conversation")
        }
        self.entries: dict[str, list[dict[str, Any]]] = {}  # conversation id -> entries
        self.blocking: dict[str, str] = {}  # record id -> restricted child object name
        self.logs: dict[str, LogRecord] = {}
        #: conversation id -> sandbox time until which an entries read keeps it active.
        self.active_until: dict[str, float] = {}

    def new_id(self, sobject: str) -> str:
        self._counter += 1
        # Spread the counter over base62 so ids mix cases, as real ones do (and the checksum
        # suffix matters).
        n = self._counter * 2_654_435_761 % 62**10
        body = "".join(_B62[(n // 62**i) % 62] for i in range(10))
        id15 = PREFIX[sobject] + "5g" + body
        return id15 + sfids.checksum(id15)

    # -- seeding ------------------------------------------------------------------------------

    def add(self, sobject: str, **values: Any) -> str:
        record_id = values.pop("Id", None) or self.new_id(sobject)
        self.tables[sobject][record_id] = {"Id": record_id, **values}
        return record_id

    def add_conversation(self, *, entries: int = 3, identifier: str | None = None) -> str:
        conv_id = self.add(
            "Conversation",
            Name=f"Conversation {self._counter}",
            ConversationIdentifier=identifier or str(uuid.uuid4()),
        )
        self.entries[conv_id] = [
            {
                "identifier": str(uuid.uuid4()),
                "entryType": "Message",
                "entryPayload": {"abstractMessage": {"staticContent": {"text": f"message {i}"}}},
                "sender": {"role": "EndUser" if i % 2 == 0 else "Agent", "appType": "chat"},
                "serverReceivedTimestamp": 1_700_000_000_000 + i * 1000,
            }
            for i in range(entries)
        ]
        return conv_id

    # -- reads --------------------------------------------------------------------------------

    def rows(self, sobject: str) -> list[dict[str, Any]]:
        if sobject == "ConversationApiLog":
            return [log.row() for log in self.logs.values()]
        return list(self.tables[sobject].values())

    def find(self, sobject: str, record_id: str) -> dict[str, Any] | None:
        """A record by 15- or 18-char id (ids are case-sensitive)."""
        table = self.tables[sobject]
        if len(record_id) == 18:
            return table.get(record_id)
        return next((r for rid, r in table.items() if rid[:15] == record_id), None)

    def sessions_of(self, end_user_id: str) -> list[dict[str, Any]]:
        return [
            s
            for s in self.tables["MessagingSession"].values()
            if s["MessagingEndUserId"][:15] == end_user_id[:15]
        ]

    def is_active(self, conv_id: str, now: float) -> bool:
        return self.active_until.get(conv_id, 0.0) > now

    def conversations_of(self, end_user_id: str) -> set[str]:
        return {
            str(s["ConversationId"])
            for s in self.sessions_of(end_user_id)
            if s.get("ConversationId")
        }

    def conversation_by_identifier(self, identifier: str) -> str | None:
        for conv in self.tables["Conversation"].values():
            if conv["ConversationIdentifier"] == identifier:
                return str(conv["Id"])
        return None

    # -- logs ---------------------------------------------------------------------------------

    def create_log(
        self, *, entity_id: str, entity_type: str, operation: str, user: str, now: float
    ) -> LogRecord:
        log_id = self.new_id("ConversationApiLog")
        log = LogRecord(
            id=log_id,
            name=f"CAL-{self._counter:08d}",
            entity_id=entity_id,
            entity_type=entity_type,
            operation=operation,
            requested_at=now,
            requested_by=user,
            history=[f"REQUESTED@{iso(now)}"],
        )
        self.logs[log_id] = log
        return log

    def advance(self, *, now: float, step_s: float) -> None:
        """Move every pending log along its timeline, executing deletes as they complete."""
        for log in sorted(self.logs.values(), key=lambda lg: lg.requested_at):
            while not log.is_final:
                index = LOG_STEPS.index(log.status)
                due = log.requested_at + (index + 1) * step_s
                if due > now:
                    break
                if index + 1 < len(LOG_STEPS):
                    log.status = LOG_STEPS[index + 1]
                else:
                    log.status, log.context = self._execute(log)
                log.history.append(f"{log.status}@{iso(due)}")

    def _execute(self, log: LogRecord) -> tuple[str, str | None]:
        if log.entity_type == "MessagingEndUser":
            end_user = self.find("MessagingEndUser", log.entity_id)
            if end_user is None:
                return "FAILED", "ENTITY_IS_DELETED: no MessagingEndUser with this id"
            sessions = self.sessions_of(end_user["Id"])
            conv_ids = {s["ConversationId"] for s in sessions if s.get("ConversationId")}
            blocker = self.blocking.get(end_user["Id"]) or next(
                (self.blocking[c] for c in conv_ids if c in self.blocking), None
            )
            if blocker:
                return "FAILED", f"DELETE_FAILED: restricted relationship from {blocker}"
            for s in sessions:
                del self.tables["MessagingSession"][s["Id"]]
            for conv_id in conv_ids:
                self._drop_conversation(conv_id)
            del self.tables["MessagingEndUser"][end_user["Id"]]
            return "COMPLETED", None
        conv = self.find("Conversation", log.entity_id)
        if conv is None:
            return "FAILED", "ENTITY_IS_DELETED: no Conversation with this id"
        if conv["Id"] in self.blocking:
            return (
                "FAILED",
                f"DELETE_FAILED: restricted relationship from {self.blocking[conv['Id']]}",
            )
        self._drop_conversation(conv["Id"])
        return "COMPLETED", None

    def _drop_conversation(self, conv_id: str) -> None:
        self.tables["Conversation"].pop(conv_id, None)
        self.entries.pop(conv_id, None)
        self.active_until.pop(conv_id, None)
        for sid, s in list(self.tables["MessagingSession"].items()):
            if s.get("ConversationId") == conv_id:
                del self.tables["MessagingSession"][sid]
