"""`SandboxOrg`: one Salesforce org's behaviour (docs/salesforce.md, sections 1 and 4), independent of HTTP.

Every handler takes plain request parts and returns a `Reply`; `server.py` only translates. One
lock guards all state, and handlers never sleep while holding it (latency is applied by the server).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from erasure.salesforce.models import Route
from erasure.salesforce.sandbox import soql, sosl
from erasure.salesforce.sandbox.auth import (
    AppConfig,
    Claims,
    TokenAuthority,
    TokenEndpointError,
    TokenProblemError,
)
from erasure.salesforce.sandbox.config import Reply, SandboxConfig
from erasure.salesforce.sandbox.data import OrgData
from erasure.salesforce.sandbox.engagement import INVALID_SESSION, EngagementApi
from erasure.salesforce.sandbox.limits import Fault, FaultBook, SlidingWindows

REST_SCOPE_MISSING = [
    {
        "message": "This session is not valid for use with the REST API",
        "errorCode": "INVALID_SESSION_ID",
    }
]
MIN_LOG_VERSION = (63, 0)
DELETE_SHAPES = ("body", "query", "either")
NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]


def _version(text: str) -> tuple[int, int] | None:
    raw = text.removeprefix("v")
    major, _, minor = raw.partition(".")
    if not major.isdigit() or not minor.isdigit():
        return None
    return int(major), int(minor)


class SandboxOrg(EngagementApi):
    def __init__(self, config: SandboxConfig | None = None, *, org_id: str | None = None) -> None:
        self.lock = threading.RLock()
        self.config = config or SandboxConfig()
        self.org_id = org_id or "00D5g" + "".join(
            secrets.choice("ABCDEFGHJK0123456789") for _ in range(10)
        )
        self.clock_offset_s = 0.0
        self.held_at: float | None = None
        self.apps: dict[str, AppConfig] = {}
        self._reset_state()

    def _reset_state(self) -> None:
        self.data = OrgData()
        self.authority = TokenAuthority(self.org_id)
        self.windows = SlidingWindows()
        self.faults = FaultBook()
        #: calls[route][client_id or "-"] -> n, for every call received (rejected ones too).
        self.calls: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        #: every id each delete route accepted (202), in order: "no id accepted twice" checks.
        self.accepted_ids: dict[str, list[str]] = defaultdict(list)
        self._cursors: dict[str, tuple[list[dict[str, Any]], str, str]] = {}

    # -- administration (also reachable over HTTP, see admin.py) -------------------------------

    def now(self) -> float:
        if self.held_at is not None:
            return self.held_at
        return time.time() + self.clock_offset_s

    def hold_clock(self, held: bool) -> float:
        """Stop the sandbox clock (windows, log progress and token lifetimes stand still) or let
        it run again from where it stood: a test's calls then fit one window however slow the
        machine is."""
        with self.lock:
            if held and self.held_at is None:
                self.held_at = self.now()
            elif not held and self.held_at is not None:
                self.clock_offset_s = self.held_at - time.time()
                self.held_at = None
            return self.now()

    def add_app(
        self,
        client_id: str,
        client_secret: str,
        *,
        run_as_user_id: str | bool | None = True,
        **options: Any,
    ) -> AppConfig:
        """Add (or replace) an External Client App; `run_as_user_id=True` creates a user."""
        with self.lock:
            if run_as_user_id is True:
                run_as_user_id = self.data.new_id("User")
            app = AppConfig(
                client_id=client_id,
                client_secret=client_secret,
                run_as_user_id=run_as_user_id or None,
                **options,
            )
            self.apps[client_id] = app
            return app

    def configure_app(self, client_id: str, **options: Any) -> AppConfig:
        with self.lock:
            app = self.apps[client_id]
            for name, value in options.items():
                if not hasattr(app, name):
                    raise ValueError(f"unknown app option {name}")
                setattr(app, name, tuple(value) if name == "scopes" else value)
            return app

    def configure(self, **options: Any) -> SandboxConfig:
        with self.lock:
            for name, value in options.items():
                if not hasattr(self.config, name):
                    raise ValueError(f"unknown org option {name}")
                if name == "delete_ids_in" and value not in DELETE_SHAPES:
                    raise ValueError(f"delete_ids_in is one of {', '.join(DELETE_SHAPES)}")
                setattr(self.config, name, value)
            return self.config

    def advance(self, seconds: float) -> float:
        """Move the sandbox clock forward; logs progress and tokens expire accordingly."""
        with self.lock:
            self.clock_offset_s += seconds
            if self.held_at is not None:
                self.held_at += seconds
            self._tick()
            return self.now()

    def inject(self, fault: Fault) -> None:
        with self.lock:
            self.faults.add(fault)

    def revoke(self, client_id: str) -> int:
        with self.lock:
            return self.authority.revoke(client_id)

    def reset(self) -> None:
        """Forget data, logs, tokens, counters, faults and the clock offset; keep the apps."""
        with self.lock:
            self.clock_offset_s = 0.0
            self.held_at = None
            self._reset_state()

    def counters(self) -> dict[str, Any]:
        with self.lock:
            return {
                "calls": {route: dict(by_client) for route, by_client in self.calls.items()},
                "accepted_ids": {route: list(ids) for route, ids in self.accepted_ids.items()},
            }

    def call_count(self, route: str, client_id: str | None = None) -> int:
        with self.lock:
            by_client = self.calls.get(route, {})
            return by_client.get(client_id, 0) if client_id else sum(by_client.values())

    def _tick(self) -> None:
        self.data.advance(now=self.now(), step_s=self.config.log_step_s)

    def _count(self, route: str, client_id: str | None) -> None:
        self.calls[route][client_id or "-"] += 1

    # -- ORG host -----------------------------------------------------------------------------

    def token(self, form: Mapping[str, str], *, base_url: str) -> Reply:
        with self.lock:
            client_id = form.get("client_id")
            self._count(Route.TOKEN, client_id)
            fault = self.faults.take(Route.TOKEN, client_id)
            if fault is not None and fault.status is not None:
                return Reply(fault.status, {"error": "server_error"}, latency_s=fault.latency_s)
            try:
                if form.get("grant_type") != "client_credentials":
                    raise TokenEndpointError("unsupported_grant_type", "grant type not supported")
                app = self.apps.get(client_id or "")
                if app is None:
                    raise TokenEndpointError("invalid_client_id", "client identifier invalid")
                if not secrets.compare_digest(app.client_secret, form.get("client_secret", "")):
                    raise TokenEndpointError("invalid_client", "invalid client credentials")
                body = self.authority.issue(app, now=self.now(), base_url=base_url)
            except TokenEndpointError as exc:
                return Reply(exc.status, {"error": exc.error, "error_description": exc.description})
            return Reply(200, body, latency_s=fault.latency_s if fault else 0.0)

    def versions(self) -> Reply:
        with self.lock:
            latest = _version(self.config.latest_api_version) or (0, 0)
        versions = [
            {"label": f"v{m}.0", "url": f"/services/data/v{m}.0", "version": f"{m}.0"}
            for m in range(58, latest[0] + 1)
        ]
        return Reply(200, versions)

    def _org_auth(self, authorization: str | None) -> Claims | Reply:
        try:
            claims = self.authority.check(authorization, now=self.now())
        except TokenProblemError:
            return Reply(401, INVALID_SESSION)
        if "api" not in claims.scopes:
            return Reply(401, REST_SCOPE_MISSING)
        return claims

    def query(self, version: str, q: str | None, authorization: str | None) -> Reply:
        with self.lock:
            claims = self._org_auth(authorization)
            self._count(Route.QUERY, claims.client_id if isinstance(claims, Claims) else None)
            if isinstance(claims, Reply):
                return claims
            fault = self.faults.take(Route.QUERY, claims.client_id)
            if fault is not None and fault.status is not None:
                return Reply(fault.status, [{"errorCode": "SERVER_ERROR", "message": "injected"}])
            parsed_version = _version(version)
            latest = _version(self.config.latest_api_version) or (0, 0)
            if parsed_version is None or parsed_version > latest:
                return Reply(
                    404,
                    [
                        {
                            "errorCode": "NOT_FOUND",
                            "message": "The requested resource does not exist",
                        }
                    ],
                )
            if not q:
                return Reply(400, [{"errorCode": "MALFORMED_QUERY", "message": "q is required"}])
            try:
                parsed = soql.parse(q)
                if parsed.sobject == "ConversationApiLog" and parsed_version < MIN_LOG_VERSION:
                    raise soql.SoqlError(
                        "INVALID_TYPE", "sObject type 'ConversationApiLog' is not supported."
                    )
                self._tick()
                rows = parsed.run(self.data.rows(parsed.sobject))
            except soql.SoqlError as exc:
                return Reply(400, [{"errorCode": exc.error_code, "message": exc.message}])
            reply = self._page(rows, parsed.sobject, version, total=len(rows))
            reply.latency_s = fault.latency_s if fault else 0.0
            return reply

    def search(self, version: str, q: str | None, authorization: str | None) -> Reply:
        """SOSL (`GET /services/data/vNN.N/search?q=`): the phone search subset of `sosl.py`."""
        with self.lock:
            claims = self._org_auth(authorization)
            self._count(Route.SEARCH, claims.client_id if isinstance(claims, Claims) else None)
            if isinstance(claims, Reply):
                return claims
            fault = self.faults.take(Route.SEARCH, claims.client_id)
            if fault is not None and fault.status is not None:
                return Reply(fault.status, [{"errorCode": "SERVER_ERROR", "message": "injected"}])
            parsed_version = _version(version)
            latest = _version(self.config.latest_api_version) or (0, 0)
            if parsed_version is None or parsed_version > latest:
                return Reply(404, NOT_FOUND)
            try:
                search = sosl.parse(q)
            except soql.SoqlError as exc:
                return Reply(400, [{"errorCode": exc.error_code, "message": exc.message}])
            records = [
                {
                    "attributes": {
                        "type": search.sobject,
                        "url": f"/services/data/{version}/sobjects/{search.sobject}/{row['Id']}",
                    },
                    **{field: row.get(field) for field in search.fields},
                }
                for row in search.run(self.data.rows(search.sobject))
            ]
            reply = Reply(200, {"searchRecords": records})
            reply.latency_s = fault.latency_s if fault else 0.0
            return reply

    def query_more(self, version: str, locator: str, authorization: str | None) -> Reply:
        with self.lock:
            claims = self._org_auth(authorization)
            self._count(Route.QUERY, claims.client_id if isinstance(claims, Claims) else None)
            if isinstance(claims, Reply):
                return claims
            cursor = self._cursors.pop(locator, None)
            if cursor is None:
                return Reply(
                    400,
                    [{"errorCode": "INVALID_QUERY_LOCATOR", "message": "invalid query locator"}],
                )
            rows, sobject, total = cursor
            return self._page(rows, sobject, version, total=int(total))

    def _page(self, rows: list[dict[str, Any]], sobject: str, version: str, *, total: int) -> Reply:
        size = self.config.query_batch_size
        page, rest = rows[:size], rows[size:]
        records = [
            {
                "attributes": {
                    "type": sobject,
                    "url": f"/services/data/{version}/sobjects/{sobject}/{r.get('Id')}",
                },
                **r,
            }
            for r in page
        ]
        body: dict[str, Any] = {"totalSize": total, "done": not rest, "records": records}
        if rest:
            locator = f"01g5g{secrets.token_hex(5)}-{total - len(rest)}"
            self._cursors[locator] = (rest, sobject, str(total))
            body["nextRecordsUrl"] = f"/services/data/{version}/query/{locator}"
        return Reply(200, body)
