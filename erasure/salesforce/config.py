"""Plain settings for one org and one credential (execution user) of it.

No environment reading here: the composition root builds these from `erasure.config.Settings`.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

#: The first API version where ConversationApiLog exists.
MIN_API_VERSION = "63.0"
LIGHTNING_SUFFIX = ".lightning.force.com"


@dataclass(frozen=True)
class Timeouts:
    """Connect and read timeouts, in seconds, applied to every HTTP call."""

    connect_s: float = 5.0
    read_s: float = 30.0

    def as_tuple(self) -> tuple[float, float]:
        return (self.connect_s, self.read_s)


@dataclass(frozen=True)
class TokenPolicy:
    """How tokens are fetched and cached."""

    #: Renew this many seconds before the JWT `exp`, so no call leaves with a dying token.
    renew_margin_s: float = 60.0
    #: Lifetime assumed when the token is not a JWT (no `exp` to read); a 401 still heals it.
    assumed_lifetime_s: float = 15 * 60.0
    #: Attempts at the token endpoint on transient failures, with full-jitter backoff between.
    attempts: int = 4
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 8.0
    #: How long a worker waits for another worker that is already fetching the token.
    lock_wait_s: float = 30.0
    #: After a configuration error, answer from memory for this long instead of asking again,
    #: so a fleet of workers cannot hammer the token endpoint with a bad secret.
    configuration_error_hold_s: float = 60.0


def _check_base_url(url: str, what: str) -> str:
    # Tokens and client secrets travel on these connections, so https only; the sandbox serves
    # TLS too (with its own CA, see `OrgSettings.ca_bundle`) rather than opening an http hole.
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{what} must be an absolute https URL")
    host = parts.hostname
    if host.endswith(LIGHTNING_SUFFIX):
        # The address bar of Lightning Experience, not My Domain: tokens are refused there.
        name = host.removesuffix(LIGHTNING_SUFFIX)
        raise ValueError(
            f"{what} {host} is the Lightning Experience host; use the My Domain URL "
            f"https://{name}.my.salesforce.com (Setup > My Domain)"
        )
    if parts.path.rstrip("/") or parts.query or parts.fragment:
        # Every path the client calls is absolute (/services/..., /platform/...): a path here
        # would be prefixed to each and answered 404, which reads like a wrong credential.
        extra = parts.path.rstrip("/") + (f"?{parts.query}" if parts.query else "")
        raise ValueError(
            f"{what} must be the bare https://host, without a path (got {extra or '#...'}): "
            f"use https://{parts.netloc}"
        )
    return url.rstrip("/")


class DeleteIdsIn(enum.StrEnum):
    """Where a DELETE call puts its ids: Salesforce does not document it (an org setting)."""

    #: `{"participantEntityIds": ["0PA...", ...]}` as the JSON request body (the default).
    BODY = "body"
    #: `?participantEntityIds=0PA...,0PA...` in the query string, no body.
    QUERY = "query"


@dataclass(frozen=True)
class OrgSettings:
    """One Salesforce org: where it lives and how its (partly undocumented) API is spoken.

    Where the delete ids travel, their field names and the max ids per call are decisions, not
    documented facts (docs/salesforce.md, "Open questions"), so they are settings.
    """

    my_domain_url: str
    api_version: str = "63.0"
    delete_ids_in: DeleteIdsIn = DeleteIdsIn.BODY
    participant_ids_field: str = "participantEntityIds"
    conversation_ids_field: str = "conversationIds"
    max_ids_per_delete: int = 200
    #: Ids per SOQL `IN (...)`: keeps query URLs far below Salesforce's 16k limit.
    max_ids_per_query: int = 200
    #: MessagingSession.Status values that mean "closed"; anything else is open.
    closed_session_statuses: tuple[str, ...] = ("Ended",)
    #: A phone number is looked up as these MessagingPlatformKey forms (SMS, WhatsApp).
    phone_key_prefixes: tuple[str, ...] = ("", "whatsapp:")
    #: The Contact fields that are the person's own number (a search by phone also matches
    #: AssistantPhone and Fax, which are not).
    contact_phone_fields: tuple[str, ...] = ("Phone", "MobilePhone")
    #: A CA bundle to verify TLS with (a private CA, or the sandbox's own certificate).
    ca_bundle: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "my_domain_url", _check_base_url(self.my_domain_url, "My Domain"))
        if self.max_ids_per_delete < 1 or self.max_ids_per_query < 1:
            raise ValueError("max ids per call must be positive")

    @property
    def token_url(self) -> str:
        return f"{self.my_domain_url}/services/oauth2/token"


@dataclass(frozen=True)
class CredentialSettings:
    """One External Client App (one execution user): its own token and its own quota."""

    client_id: str
    client_secret: str = field(repr=False)
    #: A stable name for metrics and counters; never the secret.
    name: str = ""

    def key(self, org: OrgSettings) -> str:
        """A stable, non-secret key for caches and counters of this credential in this org."""
        digest = hashlib.sha256(f"{org.my_domain_url}\n{self.client_id}".encode()).hexdigest()
        return digest[:24]

    @property
    def label(self) -> str:
        return self.name or self.client_id[:8]
