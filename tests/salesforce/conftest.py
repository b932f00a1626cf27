"""Fixtures for the Salesforce client and sandbox: one real HTTPS sandbox per test process, reset
for every test, and clients that talk to it over the network (no mocked HTTP)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
import requests

from erasure.salesforce import (
    CredentialSettings,
    InMemoryTokenStore,
    InMemoryUsageStore,
    OrgSettings,
    SalesforceClient,
    Timeouts,
)
from erasure.salesforce.sandbox import SandboxHandle, SeededEndUser
from erasure.salesforce.sandbox import seed_demo as _seed_demo
from tests.support.salesforce import CLIENT_A, CLIENT_B, FAST_TOKENS, MakeClient
from tests.support.sandbox import reset_sandbox


@pytest.fixture
def sandbox(sandbox_server: SandboxHandle) -> SandboxHandle:
    """The sandbox with no data, default config and two apps (two execution users)."""
    reset_sandbox(sandbox_server, log_step_s=1.0, apps=[CLIENT_A, CLIENT_B])
    return sandbox_server


@pytest.fixture
def demo(sandbox: SandboxHandle) -> list[SeededEndUser]:
    with sandbox.org.lock:
        return _seed_demo(sandbox.org.data)


@pytest.fixture
def org_settings(sandbox: SandboxHandle) -> OrgSettings:
    return OrgSettings(sandbox.url, ca_bundle=sandbox.ca_path)


@pytest.fixture
def credential() -> CredentialSettings:
    return CredentialSettings(*CLIENT_A, name="app-a")


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The local Redis on 6379, or, on a machine with none, a redis-server of our own."""
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        from tests.support.processes import RedisServer

        server = RedisServer(tmp_path_factory.mktemp("redis"))
        server.start()
        yield server.port
        server.stop()
        return
    yield 6379


@pytest.fixture
def redis_client(redis_port: int) -> Iterator[redis.Redis]:
    client = redis.Redis(host="127.0.0.1", port=redis_port)
    yield client
    client.close()


@pytest.fixture
def redis_prefix(redis_client: redis.Redis) -> Iterator[str]:
    """A key prefix unique to this test, so parallel runs never share tokens or counters."""
    prefix = f"erasure-test:{uuid.uuid4().hex}"
    yield prefix
    for key in redis_client.scan_iter(f"{prefix}:*"):
        redis_client.delete(key)


@pytest.fixture
def make_client(org_settings: OrgSettings, credential: CredentialSettings) -> Iterator[MakeClient]:
    """Build clients (closed after the test); keyword arguments override the defaults."""
    made: list[SalesforceClient] = []

    def make(**overrides: object) -> SalesforceClient:
        options: dict[str, object] = {
            "tokens": InMemoryTokenStore(),
            "usage": InMemoryUsageStore(),
            "timeouts": Timeouts(connect_s=2.0, read_s=5.0),
            "token_policy": FAST_TOKENS,
        }
        org = overrides.pop("org", org_settings)
        cred = overrides.pop("credential", credential)
        options.update(overrides)
        client = SalesforceClient(org, cred, **options)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: MakeClient) -> SalesforceClient:
    return make_client()


@pytest.fixture
def http(sandbox: SandboxHandle) -> Iterator[requests.Session]:
    """A plain HTTP session for raw calls to the sandbox."""
    session = requests.Session()
    yield session
    session.close()
