"""Everything erasure knows about Salesforce: the client, and a sandbox org to run it against.

This package imports nothing from the rest of erasure: it takes plain values, returns plain data.

The pipeline's entry point is `SalesforceClient(org, credential, tokens=..., usage=...)`:

- `find_end_users(Subject)` -> `list[EndUserRef]` (phone, email, platform key or contact id)
- `open_sessions(end_user_ids)` / `sessions(end_user_ids)` -> `list[SessionRef]`
- `delete_participants(ids)` / `delete_conversations(ids)` -> `DeleteAccepted` (one call each)
- `api_logs(log_ids=..., entity_ids=...)` -> `list[ApiLog]` (statuses folded into `LogState`)
- `existing_end_users(ids)` / `existing_conversations(ids)` -> `set[str]` (the read-back)
- `conversation_entries(identifier)` -> `list[EntryRef]` (optional; marks the conversation active)
- `conversations_of(end_user_ids)` -> `list[ConversationRef]`; `entries_page(identifier)` ->
  `EntriesPage` (one call, with content: access exports only)
- `query(soql)` -> every record, following `nextRecordsUrl`; `usage()` -> `CallCounts`

Failures raise the `SalesforceError` tree of `errors.py` (`retryable`, `retry_after`, `org_fault`).
Share one `RedisTokenStore` and `RedisUsageStore` across worker processes so a credential has one
token and one Retry-After hold fleet-wide. See docs/salesforce.md.
"""

from erasure.salesforce.client import SalesforceClient
from erasure.salesforce.config import (
    MIN_API_VERSION,
    CredentialSettings,
    DeleteIdsIn,
    OrgSettings,
    Timeouts,
    TokenPolicy,
)
from erasure.salesforce.errors import (
    AmbiguousDeleteError,
    BadRequestError,
    ConfigurationError,
    EngagementApiNotFoundError,
    ForbiddenError,
    OpenSessionError,
    OrgEndpointNotFoundError,
    RateLimitedError,
    SalesforceError,
    TokenEndpointError,
    TokenRejectedError,
    UnavailableError,
    UnexpectedResponseError,
)
from erasure.salesforce.models import (
    ApiLog,
    CallCounts,
    DeleteAccepted,
    EndUserRef,
    EntryRef,
    LogState,
    Route,
    SessionRef,
    Subject,
    SubjectKind,
    log_state,
    logs_by_entity,
)
from erasure.salesforce.tokens import CachedToken, InMemoryTokenStore, RedisTokenStore, TokenStore
from erasure.salesforce.usage import InMemoryUsageStore, RedisUsageStore, UsageStore

__all__ = [
    "MIN_API_VERSION",
    "AmbiguousDeleteError",
    "ApiLog",
    "BadRequestError",
    "CachedToken",
    "CallCounts",
    "ConfigurationError",
    "CredentialSettings",
    "DeleteAccepted",
    "DeleteIdsIn",
    "EndUserRef",
    "EngagementApiNotFoundError",
    "EntryRef",
    "ForbiddenError",
    "InMemoryTokenStore",
    "InMemoryUsageStore",
    "LogState",
    "OpenSessionError",
    "OrgEndpointNotFoundError",
    "OrgSettings",
    "RateLimitedError",
    "RedisTokenStore",
    "RedisUsageStore",
    "Route",
    "SalesforceClient",
    "SalesforceError",
    "SessionRef",
    "Subject",
    "SubjectKind",
    "Timeouts",
    "TokenEndpointError",
    "TokenPolicy",
    "TokenRejectedError",
    "TokenStore",
    "UnavailableError",
    "UnexpectedResponseError",
    "UsageStore",
    "log_state",
    "logs_by_entity",
]
