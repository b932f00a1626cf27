"""Domain errors. Each has a stable `code` API clients can switch on and a `retryable` flag.

HTTP mapping lives only in erasure.web.problems.
"""

from __future__ import annotations


class ErasureError(Exception):
    code = "erasure_error"
    retryable = False


class NotFound(ErasureError):
    code = "not_found"


class InvalidTransition(ErasureError):
    code = "invalid_transition"


class UnknownOrg(ErasureError):
    code = "unknown_org"

    def __init__(self, message: str, *, field: str = "org") -> None:
        super().__init__(message)
        self.field = field


class ConfigurationError(ErasureError):
    code = "configuration_error"


class NotReady(ErasureError):
    """Asked for too soon (a certificate before its leaves are checkpointed): retry later."""

    code = "not_ready"
    retry_after_s = 2
