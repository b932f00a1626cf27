"""The sandbox org's switches (`SandboxConfig`) and the reply every handler returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SandboxConfig:
    """Org-level switches. Mutable at runtime through `SandboxOrg.configure`."""

    #: Setup > Conversation Service API toggle.
    api_enabled: bool = True
    latest_api_version: str = "64.0"
    max_ids_per_call: int = 200
    #: Where deletes take their ids: "body" (JSON), "query" (`?field=a,b`) or "either". The
    #: real shape is undocumented; the client's org setting `delete_ids_in` must match.
    delete_ids_in: str = "body"
    participant_ids_field: str = "participantEntityIds"
    conversation_ids_field: str = "conversationIds"
    #: An id that does not exist: "failed_log" (202, log ends FAILED) or "not_found" (404).
    unknown_id_mode: str = "failed_log"
    query_batch_size: int = 2000
    #: Seconds of sandbox time between two log statuses.
    log_step_s: float = 1.0
    #: Length of an "hour" and a "minute" for the rate limits (compress them for benchmarks).
    hour_s: float = 3600.0
    minute_s: float = 60.0
    delete_limit: int = 10
    entries_limit: int = 90
    #: Reading a conversation's entries marks it active for this long (documented: about 30
    #: minutes); a delete that reaches an active conversation gets 412 until then.
    entries_activity_s: float = 1800.0
    closed_session_statuses: tuple[str, ...] = ("Ended",)


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    latency_s: float = 0.0
