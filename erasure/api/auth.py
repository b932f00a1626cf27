"""Bearer API-key authentication and role checks for the HTTP API.

401 when no valid key is presented (missing, malformed, unknown or revoked: one answer for all,
so a caller learns nothing about which); 403 when the key's role may not use the endpoint; 429
(with Retry-After) when the key is over its request rate, or this exact key or the caller's
address has failed to authenticate too often (`erasure.web.limits`; never by the public
prefix, which anyone can copy).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import ParamSpec, TypeVar

from flask import g, request

from erasure.accounts.models import Role
from erasure.api_keys import KeyIdentity, record_use
from erasure.web import limits
from erasure.web.problems import Problem
from erasure.web.resources import get_session, web_resources

P = ParamSpec("P")
R = TypeVar("R")

ALL_ROLES = frozenset(Role)
READERS = (Role.OFFICER, Role.APPROVER, Role.AUDITOR, Role.INTEGRATION, Role.ADMIN)
SUBMITTERS = (Role.OFFICER, Role.INTEGRATION, Role.ADMIN)
CANCELLERS = (Role.OFFICER, Role.INTEGRATION, Role.ADMIN)
APPROVERS = (Role.APPROVER, Role.ADMIN)
OPERATORS = (Role.OFFICER, Role.ADMIN)


def _unauthorized() -> Problem:
    return Problem(
        401,
        "Unauthorized",
        "send a valid API key as `Authorization: Bearer <key>`",
        code="unauthorized",
        headers={"WWW-Authenticate": 'Bearer realm="erasure"'},
    )


def current_key() -> KeyIdentity:
    key: KeyIdentity = g.api_key
    return key


def actor() -> str:
    """Who is acting, as the audit log names them: the API key's public prefix."""
    return f"api-key:{current_key().prefix}"


def integration_scope() -> uuid.UUID | None:
    """Integrations see and act on only the requests they submitted."""
    key = current_key()
    return key.id if key.role == Role.INTEGRATION else None


def requires(
    *roles: Role, overlaps_limiter: bool = False
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a view: the caller must hold an active API key with one of `roles`.

    The limiter's Redis round trip is sent first and its verdict read before anything it could
    forbid: before a database read (an unknown or stale key), a failure's 401, a write of the
    key's use, a 403, and the view. A view that `overlaps_limiter` reads it itself
    (`limits.settle`) once its first database round trip is on its way, before it writes; if it
    fails before that, the verdict is read then, so a refused caller is answered 429 either way.
    """
    allowed = frozenset(roles)

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise _unauthorized()
            presented = token.strip()
            admission = limits.start(presented)
            # Cached per process: see KeyCache for how soon a revocation applies.
            cache = web_resources().key_cache
            if not cache.holds(presented):
                admission.settle()  # a refused caller never reaches the database
            api_key = cache.authenticate(get_session(), presented)
            if api_key is None:
                admission.settle()
                limits.record_failure(presented)
                raise _unauthorized()
            if not overlaps_limiter or api_key.role not in allowed:
                admission.settle()
            if cache.use_due(api_key.prefix):
                admission.settle()
                # Its own commit, before the view's work: nothing is pending in the session yet.
                session = get_session()
                record_use(session, api_key.id, datetime.now(UTC))
                session.commit()
            if api_key.role not in allowed:
                raise Problem(
                    403,
                    "Forbidden",
                    "this API key's role may not use this endpoint",
                    code="forbidden",
                )
            g.api_key = api_key
            try:
                result = view(*args, **kwargs)
            except Exception:
                admission.settle()  # a 429 comes first, as if it had been read before the view
                raise
            admission.settle()  # a no-op unless the view never read it
            return result

        wrapper.required_roles = allowed  # type: ignore[attr-defined]  # read by the OpenAPI builder
        return wrapper

    return decorate
