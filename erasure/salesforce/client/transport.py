"""HTTP to one org for one credential: token fetch and cache, the 401 heal, classification.

With `probe.py` beside it, the only code that imports requests / requests_oauthlib. Nothing here
logs a URL (SOQL in query strings holds personal data), a body, a token or a secret.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from oauthlib.oauth2 import BackendApplicationClient, OAuth2Error
from requests_oauthlib import OAuth2Session

from erasure.salesforce import errors
from erasure.salesforce.config import CredentialSettings, OrgSettings, Timeouts, TokenPolicy
from erasure.salesforce.models import Route
from erasure.salesforce.tokens import CachedToken, TokenStore, jwt_expiry
from erasure.salesforce.usage import UsageStore

logger = logging.getLogger("erasure.salesforce")


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


def silence_leaky_loggers() -> None:
    """Keep tokens, secrets and SOQL (personal data) out of third-party DEBUG logs.

    requests-oauthlib logs the token request body and the token itself at DEBUG, oauthlib logs
    request bodies, and urllib3 logs every URL (our query strings hold phones and emails). A level
    on the parent covers records when someone turns the root logger to DEBUG; a filter on the
    emitting loggers also covers someone setting those loggers to DEBUG by name.
    """
    for name in ("requests_oauthlib", "oauthlib", "urllib3.connectionpool"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in (
        "requests_oauthlib.oauth2_session",
        "oauthlib.oauth2.rfc6749.parameters",
        "oauthlib.oauth2.rfc6749.clients.base",
        "urllib3.connectionpool",
    ):
        target = logging.getLogger(name)
        if not any(isinstance(f, _BelowWarning) for f in target.filters):
            target.addFilter(_BelowWarning())


silence_leaky_loggers()

#: Token endpoint errors that only a person can fix: never retried in a loop.
CONFIGURATION_ERRORS = frozenset(
    {
        "invalid_client",
        "invalid_client_id",
        "invalid_client_credentials",
        "invalid_grant",
        "unsupported_grant_type",
        "inactive_user",
        "inactive_org",
        "invalid_scope",
        "unauthorized_client",
    }
)


class _TransientTokenError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"token endpoint answered {status}")
        self.status = status


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _error_code(resp: requests.Response) -> str | None:
    try:
        body = resp.json()
    except ValueError:
        return None
    if isinstance(body, list) and body and isinstance(body[0], dict):
        code = body[0].get("errorCode")
        return str(code) if code else None
    if isinstance(body, dict):
        code = body.get("errorCode") or body.get("error")
        return str(code) if code else None
    return None


def _scope_text(scope: object) -> str:
    # oauthlib hands the scope back as a list; Salesforce sent a space-separated string.
    if isinstance(scope, list | tuple | set):
        return " ".join(str(s) for s in scope)
    return str(scope or "")


class Transport:
    """Sends one call with a valid shared token, heals one 401, and classifies the answer."""

    def __init__(
        self,
        org: OrgSettings,
        credential: CredentialSettings,
        *,
        tokens: TokenStore,
        usage: UsageStore,
        timeouts: Timeouts,
        token_policy: TokenPolicy,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.org = org
        self.credential = credential
        self.key = credential.key(org)
        self._tokens = tokens
        self._usage = usage
        self._timeouts = timeouts
        self._policy = token_policy
        self._sleep = sleep
        self._session = OAuth2Session(
            client=BackendApplicationClient(client_id=credential.client_id)
        )
        # Passed on every call, not only set on the session: requests lets REQUESTS_CA_BUNDLE
        # override a session-level `verify`, which would silently ignore our CA bundle.
        self._verify: str | bool = org.ca_bundle or True
        self._session.headers["Accept"] = "application/json"
        self._session.register_compliance_hook("access_token_response", self._check_token_status)
        self._config_error: errors.ConfigurationError | None = None
        self._config_error_until = 0.0
        self._fetch_guard = threading.Lock()

    def close(self) -> None:
        self._session.close()

    # -- tokens -------------------------------------------------------------------------------

    def token(self) -> CachedToken:
        """The credential's current token, fetched by one process at a time when missing."""
        cached = self._usable(self._tokens.get(self.key))
        if cached is not None:
            return cached
        with self._tokens.fetch_lock(self.key, wait_s=self._policy.lock_wait_s):
            # Another process may have fetched while we waited for the lock.
            cached = self._usable(self._tokens.get(self.key))
            if cached is not None:
                return cached
            token = self._fetch_token()
            self._tokens.put(self.key, token)
            return token

    def _usable(self, token: CachedToken | None) -> CachedToken | None:
        if token is None or not token.is_usable(
            now=time.time(), margin_s=self._policy.renew_margin_s
        ):
            return None
        return token

    def _check_token_status(self, resp: requests.Response) -> requests.Response:
        self._usage.record_call(self.key, Route.TOKEN, str(resp.status_code))
        if resp.status_code >= 500 or resp.status_code == 429:
            raise _TransientTokenError(resp.status_code)
        return resp

    def _fetch_token(self) -> CachedToken:
        with self._fetch_guard:
            if self._config_error is not None and time.time() < self._config_error_until:
                raise self._config_error
        last_problem = "no attempt"
        for attempt in range(self._policy.attempts):
            if attempt:
                # Full jitter: a fleet that failed together must not come back together.
                cap = min(self._policy.backoff_cap_s, self._policy.backoff_base_s * 2**attempt)
                self._sleep(random.uniform(0, cap))
            try:
                raw = self._session.fetch_token(
                    self.org.token_url,
                    client_id=self.credential.client_id,
                    client_secret=self.credential.client_secret,
                    include_client_id=True,
                    timeout=self._timeouts.as_tuple(),
                    verify=self._verify,
                )
            except _TransientTokenError as exc:
                last_problem = f"status {exc.status}"
            except requests.Timeout:
                self._usage.record_call(self.key, Route.TOKEN, "timeout")
                last_problem = "timeout"
            except requests.ConnectionError:
                self._usage.record_call(self.key, Route.TOKEN, "connection_error")
                last_problem = "connection error"
            except OAuth2Error as exc:
                if exc.error in CONFIGURATION_ERRORS:
                    raise self._remember(exc) from None
                last_problem = f"oauth error {exc.error}"
            else:
                logger.info("salesforce token fetched", extra={"credential": self.credential.label})
                return self._to_cached(dict(raw))
            logger.warning(
                "salesforce token endpoint failed",
                extra={"credential": self.credential.label, "attempt": attempt + 1},
            )
        raise errors.TokenEndpointError(f"token endpoint unavailable ({last_problem})")

    def _remember(self, exc: OAuth2Error) -> errors.ConfigurationError:
        error = errors.ConfigurationError(
            f"token endpoint refused the credential {self.credential.label!r}: "
            f"{exc.error} ({exc.description or 'no description'})",
            status=exc.status_code,
            error_code=exc.error,
        )
        with self._fetch_guard:
            self._config_error = error
            self._config_error_until = time.time() + self._policy.configuration_error_hold_s
        logger.error(
            "salesforce credential refused",
            extra={"credential": self.credential.label, "error_code": exc.error},
        )
        return error

    def _to_cached(self, raw: Mapping[str, Any]) -> CachedToken:
        access_token = str(raw["access_token"])
        expires_at = jwt_expiry(access_token) or time.time() + self._policy.assumed_lifetime_s
        return CachedToken(
            access_token=access_token,
            instance_url=str(raw.get("instance_url") or self.org.my_domain_url).rstrip("/"),
            api_instance_url=str(raw.get("api_instance_url") or "").rstrip("/"),
            expires_at=expires_at,
            scope=_scope_text(raw.get("scope")),
            token_format=str(raw["token_format"]) if raw.get("token_format") else None,
            issued_at=time.time(),
        )

    # -- calls --------------------------------------------------------------------------------

    def call(
        self,
        route: Route,
        method: str,
        url_for: Callable[[CachedToken], str],
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        ids: tuple[str, ...] = (),
    ) -> requests.Response:
        """One call with the 401 heal; returns a 2xx response or raises a SalesforceError."""
        held = self._usage.held_until(self.key, route)
        if held is not None:
            raise errors.RateLimitedError(
                f"{route} is on hold after a 429", retry_after=held - time.time()
            )
        token = self.token()
        resp = self._send(route, method, url_for(token), token, params, json_body, ids)
        if resp.status_code == 401:
            # Expired or revoked: drop it only if no other worker has replaced it already, fetch
            # once (under the shared lock), try once more.
            self._tokens.discard_if_current(self.key, token.access_token)
            token = self.token()
            resp = self._send(route, method, url_for(token), token, params, json_body, ids)
            if resp.status_code == 401:
                raise errors.TokenRejectedError(
                    f"a fresh token was refused on {route}: check the app's scopes and Run As user",
                    status=401,
                    error_code=_error_code(resp),
                )
        return self._classify(route, resp, ids)

    def _send(  # noqa: PLR0917 -- private, called from two adjacent lines with the same order
        self,
        route: Route,
        method: str,
        url: str,
        token: CachedToken,
        params: Mapping[str, str] | None,
        json_body: Any,
        ids: tuple[str, ...],
    ) -> requests.Response:
        started = time.monotonic()
        try:
            # withhold_token: the token comes from the shared store, not the session's own copy.
            resp: requests.Response = self._session.request(
                method,
                url,
                params=params,
                json=json_body,
                headers={"Authorization": f"Bearer {token.access_token}"},
                timeout=self._timeouts.as_tuple(),
                verify=self._verify,
                withhold_token=True,
            )
        except requests.ConnectTimeout as exc:
            # Nothing was sent, so even a DELETE is safe to repeat.
            self._usage.record_call(self.key, route, "timeout")
            raise errors.UnavailableError(f"{route}: connect timeout") from exc
        except (requests.Timeout, requests.ConnectionError) as exc:
            outcome = "timeout" if isinstance(exc, requests.Timeout) else "connection_error"
            self._usage.record_call(self.key, route, outcome)
            self._log(route, outcome, started, ids)
            if route.is_delete:
                raise errors.AmbiguousDeleteError(f"{route}: {outcome}", ids=ids) from exc
            raise errors.UnavailableError(f"{route}: {outcome}") from exc
        self._usage.record_call(self.key, route, str(resp.status_code))
        self._log(route, str(resp.status_code), started, ids)
        return resp

    def _log(self, route: Route, outcome: str, started: float, ids: tuple[str, ...]) -> None:
        # Salesforce record ids are not personal data; they let an operator match our log to the
        # org's ConversationApiLog. Never the URL (SOQL) or the body.
        logger.info(
            "salesforce call",
            extra={
                "route": str(route),
                "outcome": outcome,
                "credential": self.credential.label,
                "duration_ms": round((time.monotonic() - started) * 1000),
                "ids": list(ids),
            },
        )

    def _classify(
        self, route: Route, resp: requests.Response, ids: tuple[str, ...]
    ) -> requests.Response:
        status = resp.status_code
        if 200 <= status < 300:
            return resp
        code = _error_code(resp)
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        if status == 429 or (status == 403 and code == "REQUEST_LIMIT_EXCEEDED"):
            if retry_after is not None:
                self._usage.hold(self.key, route, time.time() + retry_after)
            raise errors.RateLimitedError(
                f"{route}: rate limited", status=status, error_code=code, retry_after=retry_after
            )
        if status == 404:
            if route.is_engagement:
                raise errors.EngagementApiNotFoundError(
                    f"{route}: 404 from the engagement API (toggle off, wrong path or bad token)",
                    status=404,
                    error_code=code,
                )
            raise errors.OrgEndpointNotFoundError(
                f"{route}: 404 from the org", status=404, error_code=code
            )
        if status == 412:
            raise errors.OpenSessionError(f"{route}: an end user has an open session", status=412)
        if status == 400:
            raise errors.BadRequestError(
                f"{route}: bad request ({code})", status=400, error_code=code
            )
        if status == 403:
            raise errors.ForbiddenError(f"{route}: forbidden ({code})", status=403, error_code=code)
        if status >= 500:
            if route.is_delete:
                raise errors.AmbiguousDeleteError(
                    f"{route}: server error {status}", ids=ids, status=status
                )
            raise errors.UnavailableError(
                f"{route}: server error {status}", status=status, retry_after=retry_after
            )
        raise errors.UnexpectedResponseError(f"{route}: unexpected status {status}", status=status)
