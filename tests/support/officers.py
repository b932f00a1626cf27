"""An API key's holder talking to the live app over real HTTP (tests that pair a `World` with
`live_server`): post and get with its bearer token, and a wait on a condition."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from erasure.accounts.models import Role
from erasure.api_keys import create_api_key
from tests.support.pipeline import World


@dataclass
class Caller:
    base: str
    headers: dict[str, str]
    http: requests.Session
    key_id: Any

    def post(self, path: str, body: dict[str, Any], **headers: str) -> requests.Response:
        return self.http.post(
            self.base + path, json=body, headers={**self.headers, **headers}, timeout=10
        )

    def get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, headers=self.headers, timeout=10)


def caller(world: World, base: str, role: Role = Role.OFFICER) -> Caller:
    """A new key of `role`, committed, and a caller holding it."""
    with world.session() as session:
        new = create_api_key(session, name=f"{role.value} over http", role=role)
        session.commit()
        key_id = new.record.id
    return Caller(base, {"Authorization": f"Bearer {new.secret}"}, requests.Session(), key_id)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll `check` until it returns something truthy (returned), or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
