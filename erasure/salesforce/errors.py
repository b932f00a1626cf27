"""The SalesforceError tree: every response and transport failure the client can meet, classified.

A separate root from `erasure.errors` because this package imports nothing from the rest of erasure.
Callers branch on the class and on two attributes: `retryable` (may the same call be tried again
later) and `retry_after` (seconds to wait first, when Salesforce said so). Messages never hold
personal data, tokens or secrets: only statuses, Salesforce error codes and record/log ids.
"""

from __future__ import annotations


class SalesforceError(Exception):
    """Base of every error raised by `erasure.salesforce`."""

    code = "salesforce_error"
    retryable = False
    #: True when the fault is the org's (setup, toggle, credentials), not one record's:
    #: the caller should stop sending to this org and alert a person.
    org_fault = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.retry_after = retry_after


class ConfigurationError(SalesforceError):
    """The token endpoint refused the credential (`invalid_client`, `invalid_grant`, ...).

    Never retried in a loop: a person must change the External Client App or our settings.
    """

    code = "salesforce_configuration"
    org_fault = True


class TokenEndpointError(SalesforceError):
    """The token endpoint failed transiently (5xx, timeout, connection) after backing off."""

    code = "salesforce_token_unavailable"
    retryable = True


class TokenRejectedError(SalesforceError):
    """A freshly fetched token was still refused with 401 (scope or user setup is wrong)."""

    code = "salesforce_token_rejected"
    org_fault = True


class EngagementApiNotFoundError(SalesforceError):
    """404 from the engagement API: API toggle off, wrong path or bad token.

    Never "already deleted" (docs/salesforce.md, rule 1): stop sending for this org, alert, retry later.
    """

    code = "salesforce_engagement_not_found"
    retryable = True
    org_fault = True


class OpenSessionError(SalesforceError):
    """412: an end user in the call still has an open Messaging session; re-check it later."""

    code = "salesforce_open_session"
    retryable = True


class RateLimitedError(SalesforceError):
    """429 (or a hold another worker recorded): wait `retry_after` seconds before this route."""

    code = "salesforce_rate_limited"
    retryable = True


class BadRequestError(SalesforceError):
    """400: our query or ids are wrong (MALFORMED_QUERY, INVALID_TYPE, too many ids...)."""

    code = "salesforce_bad_request"


class ForbiddenError(SalesforceError):
    """403 other than an exhausted quota: the execution user lacks a permission."""

    code = "salesforce_forbidden"
    org_fault = True


class UnavailableError(SalesforceError):
    """5xx, timeout or connection failure on a call that is safe to repeat (reads)."""

    code = "salesforce_unavailable"
    retryable = True


class AmbiguousDeleteError(SalesforceError):
    """5xx or timeout on a DELETE: Salesforce may have created the logs anyway.

    Deliberately NOT a subclass of `UnavailableError`, so a generic retry cannot re-send the ids.
    Before sending any of `ids` again, query ConversationApiLog for them (docs/salesforce.md, rule 4)
    and re-send only the ids that have no log.
    """

    code = "salesforce_ambiguous_delete"
    retryable = True

    def __init__(self, message: str, *, ids: tuple[str, ...], status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.ids = ids


class UnexpectedResponseError(SalesforceError):
    """A status or body the contract does not describe."""

    code = "salesforce_unexpected_response"


class OrgEndpointNotFoundError(SalesforceError):
    """404 from the org's /services/data: the API version or path is not served by this org."""

    code = "salesforce_org_endpoint_not_found"
    org_fault = True
