"""Errors never leak internals: an exception forced on every route (every method of every rule in
the URL map) is answered with a correlation id and nothing of the exception: no stack trace, SQL,
token or exception text. The API answers problem+json; the console, a plain HTML page."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from flask import Flask
from pydantic import SecretStr
from sqlalchemy.exc import OperationalError
from werkzeug.routing import Rule, UUIDConverter
from werkzeug.test import TestResponse

from erasure.app import create_app
from erasure.config import Settings

TOKEN = "ek_0123456789ab_CanaryTokenValue-9f8e7d"  # a canary, not a secret
SQL = "SELECT key_hash FROM api_keys WHERE prefix = 'canary-prefix'"
CID = "leakcheck-7f3a9c21"
FORBIDDEN = (
    "Traceback",
    "CanaryTokenValue",
    "key_hash",
    "canary-prefix",
    "hunter2",
    "RuntimeError",
    "OperationalError",
    'File "',
    "site-packages",
)


class Boom(RuntimeError):
    pass


def _message() -> str:
    return f"{SQL} -- token {TOKEN} password=hunter2"


def _url(rule: Rule) -> str:
    values: dict[str, str] = {}
    for name in rule.arguments:
        converter = rule._converters[name]  # read-only look at the rule's types
        values[name] = str(uuid.uuid4()) if isinstance(converter, UUIDConverter) else "x1"
    path = rule.rule
    for name, value in values.items():
        path = path.replace(f"<{name}>", value)
        for prefix in ("uuid", "path", "string", "int"):
            path = path.replace(f"<{prefix}:{name}>", value)
    return path


def _routes(app: Flask) -> Iterator[tuple[str, str, str]]:
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            yield method, rule.rule, _url(rule)


def _assert_no_leak(response: TestResponse, where: str) -> None:
    text = response.get_data(as_text=True)
    for needle in FORBIDDEN:
        assert needle not in text, (where, needle)
        assert all(needle not in value for value in response.headers.values()), (where, needle)


def _assert_internal_error(response: TestResponse, where: str) -> None:
    assert response.status_code == 500, (where, response.status_code)
    _assert_no_leak(response, where)
    assert response.headers["X-Request-Id"] == CID, where
    if where.split()[1].startswith("/ui"):
        assert response.mimetype == "text/html", where
        assert CID in response.get_data(as_text=True), where
    else:
        assert response.mimetype == "application/problem+json", where
        body = response.get_json()
        assert body["correlation_id"] == CID and body["code"] == "internal_error", where
        assert body["status"] == 500, where


def _call(app: Flask, method: str, url: str) -> TestResponse:
    client = app.test_client()
    return client.open(
        url,
        method=method,
        headers={"X-Request-Id": CID, "Authorization": f"Bearer {TOKEN}"},
        json={} if method in {"POST", "PUT", "PATCH"} else None,
    )


def test_an_exception_on_every_route_answers_500_with_a_correlation_id_only(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    def boom() -> None:
        raise Boom(_message())

    # After the correlation id is assigned, before any view or blueprint hook runs.
    app.before_request_funcs.setdefault(None, []).append(boom)
    routes = list(_routes(app))
    assert len(routes) >= 40  # the API, integrations, OpenDSR, console, health and metrics
    assert any(path.startswith("/ui") for _, path, _ in routes)
    for method, path, url in routes:
        _assert_internal_error(_call(app, method, url), f"{method} {path}")
    # Operators get the traceback, in the log only.
    assert any(record.exc_info for record in caplog.records if record.levelname == "ERROR")


@pytest.fixture
def broken_database_app(settings: Settings) -> Flask:
    def factory() -> object:
        raise OperationalError(_message(), {"password": "hunter2"}, Exception(TOKEN))

    configured = settings.model_copy(update={"secret_key": SecretStr("k" * 40)})  # console on
    return create_app(configured, session_factory=factory)  # type: ignore[arg-type]


def test_a_failing_database_leaks_nothing_on_any_route(broken_database_app: Flask) -> None:
    """The database is unavailable: every route that needs it answers 503 with Retry-After
    (problem+json, or the console's plain page), says nothing of the error, and keeps the
    correlation id."""
    unavailable = 0
    for method, path, url in _routes(broken_database_app):
        response = _call(broken_database_app, method, url)
        where = f"{method} {path}"
        _assert_no_leak(response, where)
        assert response.status_code != 500, where
        if response.status_code == 503 and path != "/readyz":
            unavailable += 1
            assert response.headers["X-Request-Id"] == CID, where
            assert int(response.headers["Retry-After"]) > 0, where
            if path.startswith("/ui"):
                assert response.mimetype == "text/html", where
            else:
                assert response.mimetype == "application/problem+json", where
                body = response.get_json()
                assert body["code"] == "database_unavailable" and body["correlation_id"] == CID
    assert unavailable >= 20  # every route that reads the database, and said nothing
