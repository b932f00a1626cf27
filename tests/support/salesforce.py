"""Helpers for the Salesforce tests: the sandbox's two External Client Apps, a fast token policy,
the client factory's type, raw HTTP against the sandbox (no client in between), seeding
an end user, and running its logs to their end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from erasure.salesforce import SalesforceClient, TokenPolicy
from erasure.salesforce.sandbox import SandboxHandle, SeededEndUser, add_end_user

CLIENT_A = ("erasure-app-a", "secret-a-0123456789")
CLIENT_B = ("erasure-app-b", "secret-b-0123456789")
#: Fast backoff so fault tests finish in milliseconds, not seconds.
FAST_TOKENS = TokenPolicy(backoff_base_s=0.01, backoff_cap_s=0.05, lock_wait_s=10.0)
MakeClient = Callable[..., SalesforceClient]

ENG = "/platform/engagement/v1.0"


def call(
    http: requests.Session, sandbox: SandboxHandle, method: str, path: str, **kw: Any
) -> requests.Response:
    return http.request(method, sandbox.url + path, verify=sandbox.ca_path, timeout=5, **kw)


def get_token(
    http: requests.Session, sandbox: SandboxHandle, client: tuple[str, str] = CLIENT_A
) -> str:
    resp = call(
        http,
        sandbox,
        "POST",
        "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client[0],
            "client_secret": client[1],
        },
    )
    assert resp.status_code == 200
    return str(resp.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def soql(
    http: requests.Session, sandbox: SandboxHandle, token: str, q: str, version: str = "v63.0"
) -> requests.Response:
    return call(
        http,
        sandbox,
        "GET",
        f"/services/data/{version}/query",
        params={"q": q},
        headers=bearer(token),
    )


def new_user(sandbox: SandboxHandle, key: str, **spec: Any) -> str:
    with sandbox.org.lock:
        return add_end_user(sandbox.org.data, platform_key=key, **spec).end_user_id


def seed(sandbox: SandboxHandle, **spec: object) -> SeededEndUser:
    with sandbox.org.lock:
        return add_end_user(sandbox.org.data, **spec)  # type: ignore[arg-type]


def finish_logs(sandbox: SandboxHandle) -> None:
    """Advance the sandbox's clock until every log it holds has reached its end."""
    sandbox.org.advance(10 * sandbox.org.config.log_step_s)


def delete(
    http: requests.Session,
    sandbox: SandboxHandle,
    token: str,
    body: Any,
    path: str = "conversation-participants",
) -> requests.Response:
    return call(http, sandbox, "DELETE", f"{ENG}/{path}", json=body, headers=bearer(token))
