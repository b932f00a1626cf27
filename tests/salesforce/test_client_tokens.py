"""Tokens: one per credential fleet-wide, healed once on 401, configuration errors never looped."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from erasure.salesforce import (
    CachedToken,
    ConfigurationError,
    CredentialSettings,
    RedisTokenStore,
    RedisUsageStore,
    Route,
    SalesforceClient,
    Subject,
    SubjectKind,
    TokenEndpointError,
    TokenRejectedError,
)
from erasure.salesforce.sandbox import Fault, SandboxHandle, add_end_user
from erasure.salesforce.tokens import jwt_expiry
from tests.support.salesforce import CLIENT_A, MakeClient

PROBE_ID = "0PA5g0000000001GAA"


def _token_calls(sandbox: SandboxHandle, client_id: str = CLIENT_A[0]) -> int:
    return sandbox.org.call_count(Route.TOKEN, client_id)


def test_token_expiry_comes_from_the_jwt(client: SalesforceClient, sandbox: SandboxHandle) -> None:
    token = client.token()
    assert token.token_format == "jwt"
    assert jwt_expiry(token.access_token) == token.expires_at
    assert token.api_instance_url == sandbox.url
    assert token.instance_url == sandbox.url
    assert "access_token" not in repr(token)
    assert token.access_token not in repr(token)
    assert jwt_expiry("not-a-jwt") is None
    assert jwt_expiry("a.!!!.c") is None


def test_the_cached_token_is_reused(client: SalesforceClient, sandbox: SandboxHandle) -> None:
    for _ in range(3):
        client.existing_end_users([PROBE_ID])
    assert _token_calls(sandbox) == 1


def test_expired_token_heals_with_exactly_one_refetch(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    client.existing_end_users([PROBE_ID])
    sandbox.org.advance(31 * 60)  # past the 30-minute token timeout on the sandbox's clock only
    client.existing_end_users([PROBE_ID])
    assert _token_calls(sandbox) == 2
    assert client.usage().by_route[Route.QUERY] == {"200": 2, "401": 1}


def test_revoked_token_heals_with_exactly_one_refetch(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    with sandbox.org.lock:
        add_end_user(sandbox.org.data, platform_key="+15550020000")
    client.existing_end_users([PROBE_ID])
    sandbox.org.revoke(CLIENT_A[0])
    found = client.find_end_users(Subject(SubjectKind.PLATFORM_KEY, "+15550020000"))
    assert len(found) == 1
    # The engagement API heals the same way.
    sandbox.org.revoke(CLIENT_A[0])
    client.delete_participants([found[0].id])
    assert _token_calls(sandbox) == 3


def test_a_fresh_token_still_refused_is_not_retried_again(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    sandbox.org.configure_app(CLIENT_A[0], scopes=["api"])  # sfap_api missing
    with pytest.raises(TokenRejectedError) as caught:
        client.delete_participants([PROBE_ID])
    assert caught.value.org_fault
    assert not caught.value.retryable
    assert _token_calls(sandbox) == 2
    assert sandbox.org.call_count(Route.DELETE_PARTICIPANTS) == 2


@pytest.mark.parametrize(
    ("change", "error_code"),
    [
        ({"client_secret": "wrong"}, "invalid_client"),
        ({"client_credentials_enabled": False}, "unsupported_grant_type"),
        ({"run_as_user_id": None}, "invalid_grant"),
    ],
)
def test_configuration_errors_are_raised_once_and_not_retried(
    client: SalesforceClient, sandbox: SandboxHandle, change: dict[str, object], error_code: str
) -> None:
    sandbox.org.configure_app(CLIENT_A[0], **change)
    for _ in range(3):
        with pytest.raises(ConfigurationError) as caught:
            client.existing_end_users([PROBE_ID])
        assert caught.value.error_code == error_code
        assert not caught.value.retryable
    assert _token_calls(sandbox) == 1  # held in memory, not asked again in a loop
    assert CLIENT_A[1] not in str(caught.value)


def test_token_endpoint_failures_back_off_and_recover(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    sandbox.org.inject(Fault(route=Route.TOKEN, status=503, count=2))
    client.existing_end_users([PROBE_ID])
    assert _token_calls(sandbox) == 3
    assert client.usage().by_route[Route.TOKEN] == {"503": 2, "200": 1}


def test_token_endpoint_down_raises_a_retryable_error(
    client: SalesforceClient, sandbox: SandboxHandle
) -> None:
    sandbox.org.inject(Fault(route=Route.TOKEN, status=500, count=10))
    with pytest.raises(TokenEndpointError) as caught:
        client.existing_end_users([PROBE_ID])
    assert caught.value.retryable
    assert _token_calls(sandbox) == 4  # TokenPolicy.attempts


def test_backoff_sleeps_are_jittered_and_capped(
    make_client: MakeClient, sandbox: SandboxHandle
) -> None:
    slept: list[float] = []
    client = make_client(sleep=slept.append)
    sandbox.org.inject(Fault(route=Route.TOKEN, status=500, count=10))
    with pytest.raises(TokenEndpointError):
        client.token()
    assert len(slept) == 3
    assert all(0 <= s <= 0.05 for s in slept)


def test_64_cold_workers_cause_one_token_request(
    make_client: MakeClient,
    sandbox: SandboxHandle,
    redis_client: redis.Redis,
    redis_prefix: str,
    redis_port: int,
) -> None:
    # One client per "worker", each with its own Redis connection: only Redis is shared.
    workers = [
        make_client(
            tokens=RedisTokenStore(redis.Redis(port=redis_port), prefix=redis_prefix),
            usage=RedisUsageStore(redis_client, prefix=redis_prefix),
        )
        for _ in range(64)
    ]
    start = threading.Barrier(64)

    def work(client: SalesforceClient) -> set[str]:
        start.wait()
        return client.existing_end_users([PROBE_ID])

    with ThreadPoolExecutor(64) as pool:
        results = list(pool.map(work, workers))
    assert results == [set()] * 64
    assert _token_calls(sandbox) == 1
    assert workers[0].usage().by_route[Route.QUERY] == {"200": 64}


def test_a_fleet_heals_a_revoked_token_with_one_refetch(
    make_client: MakeClient, sandbox: SandboxHandle, redis_prefix: str, redis_port: int
) -> None:
    workers = [
        make_client(tokens=RedisTokenStore(redis.Redis(port=redis_port), prefix=redis_prefix))
        for _ in range(16)
    ]
    workers[0].existing_end_users([PROBE_ID])
    sandbox.org.revoke(CLIENT_A[0])
    start = threading.Barrier(16)

    def work(client: SalesforceClient) -> set[str]:
        start.wait()
        return client.existing_end_users([PROBE_ID])

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(work, workers))
    assert _token_calls(sandbox) == 2


def test_redis_discard_is_compare_and_delete(redis_client: redis.Redis, redis_prefix: str) -> None:
    store = RedisTokenStore(redis_client, prefix=redis_prefix)
    import time

    fresh = CachedToken("fresh", "https://o", "https://a", expires_at=time.time() + 60)
    store.put("k", fresh)
    assert not store.discard_if_current("k", "stale")
    assert store.get("k") == fresh
    assert store.discard_if_current("k", "fresh")
    assert store.get("k") is None


def test_secrets_tokens_and_personal_data_never_reach_the_logs(
    make_client: MakeClient, sandbox: SandboxHandle, caplog: pytest.LogCaptureFixture
) -> None:
    canary_email = "canary.subject@example.com"
    canary_phone = "+15557654321"
    canary_key = "whatsapp:+15557654321"
    canary_secret = "canary-secret-5f2b9c"
    sandbox.org.add_app("canary-app", canary_secret)
    with sandbox.org.lock:
        add_end_user(
            sandbox.org.data, platform_key=canary_key, email=canary_email, phone=canary_phone
        )
    caplog.set_level(logging.DEBUG)
    client = make_client(credential=CredentialSettings("canary-app", canary_secret))
    ids = [e.id for e in client.find_end_users(Subject(SubjectKind.EMAIL, canary_email))]
    ids += [e.id for e in client.find_end_users(Subject(SubjectKind.PHONE, canary_phone))]
    sandbox.org.revoke("canary-app")  # force the 401 path and a second token fetch
    client.find_end_users(Subject(SubjectKind.PLATFORM_KEY, canary_key))
    client.open_sessions(ids)
    accepted = client.delete_participants(sorted(set(ids)))
    client.api_logs(log_ids=[log.id for log in accepted.logs])
    token = client.token().access_token

    assert caplog.records, "the flow should log something"
    everything = caplog.text + "".join(repr(r.__dict__) for r in caplog.records)
    for canary in (canary_email, canary_phone, canary_key, canary_secret, token, "canary.subject"):
        assert canary not in everything
    assert token.split(".")[2] not in everything
