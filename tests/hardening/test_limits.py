"""Abuse limits: per-key request rate, throttled failed authentications, body limits everywhere."""

from __future__ import annotations

import json

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from erasure.accounts.models import Role
from erasure.web.limits import MemoryCounters, RedisCounters, limiter
from tests.support.processes import RedisServer
from tests.support.web import AppMaker, KeyMaker

LIST = "/v1/erasure-requests"


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _assert_429(response: object) -> int:
    from werkzeug.test import TestResponse

    assert isinstance(response, TestResponse)
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["code"] == "too_many_requests" and body["correlation_id"]
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    return retry_after


def test_a_key_over_its_rate_gets_429_with_retry_after(
    make_app: AppMaker, make_key: KeyMaker
) -> None:
    client = make_app(rate_limit_requests=3, rate_limit_window_s=60).test_client()
    busy, other = _bearer(make_key(Role.OFFICER)), _bearer(make_key(Role.OFFICER))
    for _ in range(3):
        assert client.get(LIST, headers=busy).status_code == 200
    assert _assert_429(client.get(LIST, headers=busy)) <= 60
    assert client.get(LIST, headers=other).status_code == 200  # per key, not global


def test_zero_turns_the_rate_limit_off(make_app: AppMaker, make_key: KeyMaker) -> None:
    client = make_app(rate_limit_requests=0, auth_failure_limit=0).test_client()
    headers = _bearer(make_key(Role.OFFICER))
    assert all(client.get(LIST, headers=headers).status_code == 200 for _ in range(10))


def test_failed_authentications_are_throttled_per_address(
    make_app: AppMaker, make_key: KeyMaker
) -> None:
    client = make_app(auth_failure_limit=3, auth_failure_window_s=300).test_client()
    good = make_key(Role.OFFICER)
    for junk in ("not-a-key", "ek_000000000000_nope", "ek_111111111111_nope"):
        assert client.get(LIST, headers=_bearer(junk)).status_code == 401
    # The address is now refused, even with a valid key, until the window ends.
    retry_after = _assert_429(client.get(LIST, headers=_bearer(good)))
    assert 1 <= retry_after <= 300
    # A request without any key is not a failed guess; it stays a plain 401.
    assert client.get(LIST).status_code == 401


def _forged(key: str, n: int) -> str:
    """Another key with the same public prefix (every audit leaf names `api-key:<prefix>`)."""
    prefix = key.split("_")[1]  # ek_<prefix>_<secret>
    return f"ek_{prefix}_forged-guess-{n:03d}-xxxxxxxxxxxxxxxx"


@pytest.mark.parametrize("shared", [False, True], ids=["memory", "redis"])
def test_forged_keys_with_a_victims_prefix_never_lock_out_the_real_key(
    make_app: AppMaker, make_key: KeyMaker, redis_server: RedisServer, shared: bool
) -> None:
    # Behind one trusted proxy, an attacker spreads 20 wrong guesses over 20 addresses, each
    # carrying the victim's public prefix, and fills the victim's request rate with them too.
    options: dict[str, object] = {
        "auth_failure_limit": 20,
        "auth_failure_window_s": 300,
        "rate_limit_requests": 5,
        "forwarded_hops": 1,
    }
    if shared:
        options["redis_url"] = redis_server.url
    client = make_app(**options).test_client()
    victim = make_key(Role.OFFICER)
    for n in range(20):
        forwarded = {"X-Forwarded-For": f"198.51.100.{n}"}
        response = client.get(LIST, headers=_bearer(_forged(victim, n)) | forwarded)
        assert response.status_code == 401, (n, response.status_code)
    # The real key, from its own address, is never refused for other people's wrong guesses.
    from_victim = {"X-Forwarded-For": "203.0.113.9"}
    assert client.get(LIST, headers=_bearer(victim) | from_victim).status_code == 200
    assert client.get(LIST, headers=_bearer(victim) | from_victim).status_code == 200


def test_one_wrong_key_repeated_from_many_addresses_is_throttled(
    make_app: AppMaker, make_key: KeyMaker
) -> None:
    # What the attacker controls (the exact key presented) is counted wherever it comes from.
    client = make_app(auth_failure_limit=3, forwarded_hops=1).test_client()
    victim = make_key(Role.OFFICER)
    wrong = _forged(victim, 1)
    for n in range(3):
        forwarded = {"X-Forwarded-For": f"198.51.100.{n}"}
        assert client.get(LIST, headers=_bearer(wrong) | forwarded).status_code == 401
    _assert_429(client.get(LIST, headers=_bearer(wrong) | {"X-Forwarded-For": "198.51.100.77"}))
    # Neither the victim's key nor another key with the same prefix is held by it.
    from_victim = {"X-Forwarded-For": "203.0.113.9"}
    assert client.get(LIST, headers=_bearer(victim) | from_victim).status_code == 200
    other_guess = _bearer(_forged(victim, 2)) | {"X-Forwarded-For": "203.0.113.10"}
    assert client.get(LIST, headers=other_guess).status_code == 401


def test_without_redis_the_counters_are_per_process(app: Flask) -> None:
    with app.app_context():
        assert isinstance(limiter().counters, MemoryCounters)  # the tests' broker is memory://


def test_with_redis_every_worker_shares_one_count(
    make_app: AppMaker, make_key: KeyMaker, redis_server: RedisServer
) -> None:
    # Two apps stand for two gunicorn workers (or two hosts) on one Redis.
    options = {"redis_url": redis_server.url, "rate_limit_requests": 3, "auth_failure_limit": 2}
    first, second = make_app(**options), make_app(**options)
    with first.app_context():
        assert isinstance(limiter().counters, RedisCounters)
    a, b = first.test_client(), second.test_client()
    headers = _bearer(make_key(Role.OFFICER))
    assert a.get(LIST, headers=headers).status_code == 200
    assert b.get(LIST, headers=headers).status_code == 200
    assert a.get(LIST, headers=headers).status_code == 200
    _assert_429(b.get(LIST, headers=headers))
    # Failed authentications are shared too, and the keys hold no secret.
    assert a.get(LIST, headers=_bearer("ek_222222222222_wrong")).status_code == 401
    assert b.get(LIST, headers=_bearer("ek_222222222222_wrong")).status_code == 401
    _assert_429(a.get(LIST, headers=_bearer(make_key(Role.OFFICER))))
    names = [k.decode() for k in redis.Redis.from_url(redis_server.url).keys("erasure:rl:*")]
    assert names and not any("wrong" in name for name in names)


def test_a_request_costs_the_limiter_one_redis_command(
    make_app: AppMaker, make_key: KeyMaker, redis_server: RedisServer
) -> None:
    # Each command is packed by the API worker and its reply parsed: the whole check (count the
    # rate, read both failure counters) is one script call, however many counters it touches.
    client = make_app(redis_url=redis_server.url, rate_limit_requests=100).test_client()
    headers = _bearer(make_key(Role.OFFICER))
    assert client.get(LIST, headers=headers).status_code == 200  # loads the script once
    watcher, marker = redis.Redis.from_url(redis_server.url), redis.Redis.from_url(redis_server.url)
    marker.ping()  # connected before watching, so its handshake is not seen
    sent: list[str] = []
    with watcher.monitor() as monitor:
        for _ in range(3):
            assert client.get(LIST, headers=headers).status_code == 200
        marker.echo("end of requests")
        while (seen := monitor.next_command())["command"] != "ECHO end of requests":
            if seen["client_type"] != "lua":  # what the script itself runs is not sent
                sent.append(seen["command"].split()[0])
    assert sent == ["EVALSHA"] * 3


def test_the_limits_hold_after_redis_forgets_its_scripts(
    make_app: AppMaker, make_key: KeyMaker, redis_server: RedisServer
) -> None:
    # A Redis restart or failover empties the script cache: the next check loads the script
    # again instead of failing open.
    client = make_app(redis_url=redis_server.url, rate_limit_requests=3).test_client()
    headers = _bearer(make_key(Role.OFFICER))
    assert client.get(LIST, headers=headers).status_code == 200
    watcher = redis.Redis.from_url(redis_server.url)
    watcher.script_flush()
    assert client.get(LIST, headers=headers).status_code == 200
    watcher.script_flush()
    assert client.get(LIST, headers=headers).status_code == 200
    # Every check counted (a check that failed open would have let a fourth request through).
    _assert_429(client.get(LIST, headers=headers))


def test_an_unreachable_redis_lets_requests_through(make_app: AppMaker, make_key: KeyMaker) -> None:
    client = make_app(redis_url="redis://127.0.0.1:1/0", rate_limit_requests=1).test_client()
    headers = _bearer(make_key(Role.OFFICER))
    assert [client.get(LIST, headers=headers).status_code for _ in range(3)] == [200] * 3


def test_429_is_documented_on_every_authenticated_operation(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if operation.get("security"):
                assert "429" in operation["responses"], (method, path)
                assert "Retry-After" in operation["responses"]["429"]["headers"]


def _deep(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def test_deep_or_large_bodies_are_refused_on_every_json_route(
    client: FlaskClient, make_key: KeyMaker
) -> None:
    admin = _bearer(make_key(Role.ADMIN))
    json_routes = [
        "/v1/erasure-requests",
        "/v1/callback-subscriptions",
        "/v1/webhook-sources",
        "/opendsr/v2/requests",
    ]
    for path in json_routes:
        # OpenDSR answers every request error 400 with its error object (its §7.5).
        opendsr = path.startswith("/opendsr")
        response = client.post(
            path, data=_deep(50), headers=admin | {"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (path, response.status_code)
        body = response.get_json()
        code = body["error"]["errors"][0]["reason"] if opendsr else body["code"]
        assert code == "json_too_deep"
        big = json.dumps({"note": "x" * 20000})
        response = client.post(path, data=big, headers=admin | {"Content-Type": "application/json"})
        assert response.status_code == (400 if opendsr else 413), (path, response.status_code)
        body = response.get_json()
        code = body["error"]["errors"][0]["reason"] if opendsr else body["code"]
        assert code == "content_too_large"


def test_webhook_bodies_are_held_to_limits_whatever_their_content_type(
    client: FlaskClient,
) -> None:
    # Even sent as text/plain (ServiceNow may), a body nested past the parser's recursion limit
    # is refused before any signature check or JSON parser sees it.
    for content_type in ("text/plain", "application/json"):
        response = client.post(
            "/v1/webhooks/anything",
            data="[" * 3000 + "]" * 3000,
            headers={"Content-Type": content_type},
        )
        assert response.status_code == 400 and response.get_json()["code"] == "json_too_deep"
    response = client.post("/v1/webhooks/anything", data="x" * 20000)
    assert response.status_code == 413
    # Jira-like nesting within the webhook limit passes the guard (then: no such source).
    assert client.post("/v1/webhooks/anything", data=_deep(12)).status_code == 404
