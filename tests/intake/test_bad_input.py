"""Bad input: each case is a 4xx problem+json naming what is wrong, never a 500, and nothing is
written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.api.models import IdempotencyRecord
from erasure.audit.models import AuditLeaf
from erasure.core.models import ErasureRequest, SubjectIdentifier
from tests.support.web import Committed, LiveServer

GOOD: dict[str, Any] = {"subject": {"phone": "+14155552671"}, "regulation": "gdpr"}


def with_(**changes: Any) -> dict[str, Any]:
    return GOOD | changes


def nested(depth: int) -> dict[str, Any]:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return with_(notes=None, extra_field=value)


def counts(session: Session) -> tuple[int, ...]:
    return tuple(
        session.scalar(select(func.count()).select_from(model)) or 0
        for model in (ErasureRequest, SubjectIdentifier, AuditLeaf, IdempotencyRecord)
    )


JSON = {"Content-Type": "application/json"}

CASES = [
    # (id, raw body, extra headers, status, code, field at fault)
    ("malformed json", b'{"subject": {', JSON, 400, "malformed_json", None),
    ("not an object", b"[1, 2]", JSON, 400, "malformed_json", None),
    ("not utf-8", b'{"notes": "\xff"}', JSON, 400, "malformed_json", None),
    (
        "wrong content type",
        b"subject=1",
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
        "unsupported_media_type",
        None,
    ),
    ("no content type", b"{}", {}, 415, "unsupported_media_type", None),
    ("too deep", nested(20), JSON, 400, "json_too_deep", None),
    (
        "unknown field",
        with_(subjet={"phone": "+14155552671"}),
        JSON,
        422,
        "validation_error",
        "(body)",  # an unknown key is counted under its parent, never named
    ),
    (
        "unknown subject field",
        with_(subject={"phone": "+14155552671", "ssn": "1"}),
        JSON,
        422,
        "validation_error",
        "subject",
    ),
    ("missing subject", {"regulation": "gdpr"}, JSON, 422, "validation_error", "subject"),
    ("empty subject", with_(subject={}), JSON, 422, "validation_error", "subject"),
    (
        "invalid phone",
        with_(subject={"phone": "555-0100"}),
        JSON,
        422,
        "validation_error",
        "subject.phone",
    ),
    (
        "impossible phone",
        with_(subject={"phone": "+19999999999"}),
        JSON,
        422,
        "validation_error",
        "subject.phone",
    ),
    (
        "invalid email",
        with_(subject={"email": "ana@@example"}),
        JSON,
        422,
        "validation_error",
        "subject.email",
    ),
    (
        "bad contact id",
        with_(subject={"contact_id": "0PA000000000001"}),
        JSON,
        422,
        "validation_error",
        "subject.contact_id",
    ),
    (
        "bad end user id",
        with_(subject={"messaging_end_user_ids": ["nope"]}),
        JSON,
        422,
        "validation_error",
        "subject.messaging_end_user_ids.0",
    ),
    ("unknown regulation", with_(regulation="hipaa"), JSON, 422, "validation_error", "regulation"),
    (
        "missing regulation",
        {"subject": {"phone": "+14155552671"}},
        JSON,
        422,
        "validation_error",
        "regulation",
    ),
    (
        "naive received_at",
        with_(received_at="2026-01-01T10:00:00"),
        JSON,
        422,
        "validation_error",
        "received_at",
    ),
    (
        "future received_at",
        with_(received_at="2099-01-01T10:00:00Z"),
        JSON,
        422,
        "validation_error",
        "received_at",
    ),
    (
        "bad reference url",
        with_(reference={"system": "jira", "id": "1", "url": "not a url"}),
        JSON,
        422,
        "validation_error",
        "reference.url",
    ),
    ("unknown org", with_(org="nope"), JSON, 422, "unknown_org", "org"),
    ("wrong type", with_(subject="+14155552671"), JSON, 422, "validation_error", "subject"),
    ("NUL in a string", with_(notes="a\u0000b"), JSON, 400, "malformed_json", None),
    # UTC of this instant is before year 1: it cannot be stored or have a deadline.
    (
        "received_at before the first instant",
        with_(received_at="0001-01-01T00:00:00+14:00"),
        JSON,
        422,
        "validation_error",
        "received_at",
    ),
    (
        "received_at long before any privacy law",
        with_(received_at="0001-01-02T00:00:00Z"),
        JSON,
        422,
        "validation_error",
        "received_at",
    ),
    (
        "received_at at the last instant",
        with_(received_at="9999-12-31T23:59:59-14:00"),
        JSON,
        422,
        "validation_error",
        "received_at",
    ),
    (
        "lone surrogate in a string",
        b'{"notes": "a\\ud800b"}',
        JSON,
        422,
        "validation_error",
        "notes",
    ),
]


def _send(client: FlaskClient, body: Any, headers: dict[str, str], auth: dict[str, str]) -> Any:
    import json

    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        "/v1/erasure-requests", data=data, headers=headers | auth | {"Idempotency-Key": "k-1"}
    )


@pytest.mark.parametrize(
    ("name", "body", "headers", "status", "code", "field"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input_is_a_clear_4xx_and_writes_nothing(
    client: FlaskClient,
    org: object,
    officer_headers: dict[str, str],
    db_session: Session,
    name: str,
    body: Any,
    headers: dict[str, str],
    status: int,
    code: str,
    field: str | None,
) -> None:
    before = counts(db_session)
    response = _send(client, body, headers, officer_headers)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == status and problem["code"] == code
    assert problem["type"].startswith("urn:erasure:problem:")
    assert problem["correlation_id"] == response.headers["X-Request-Id"]
    if field is not None:
        assert field in [error["field"] for error in problem["errors"]]
    assert counts(db_session) == before


def test_body_over_the_limit_is_413_before_it_is_read(
    client: FlaskClient, org: object, officer_headers: dict[str, str], db_session: Session
) -> None:
    before = counts(db_session)
    big = b'{"notes": "' + b"x" * 20000 + b'"}'
    response = client.post("/v1/erasure-requests", data=big, headers=JSON | officer_headers)
    assert response.status_code == 413
    assert response.get_json()["code"] == "content_too_large"
    assert counts(db_session) == before


def test_chunked_body_over_the_limit_is_413(live_server: LiveServer, committed: Committed) -> None:
    """Without a Content-Length (a chunked upload) the reader stops at the limit too."""

    def chunks() -> Iterator[bytes]:
        yield b'{"notes": "'
        for _ in range(40):
            yield b"x" * 1000
        yield b'"}'

    response = requests.post(
        f"{live_server.url}/v1/erasure-requests",
        data=chunks(),
        headers=JSON | committed.headers,
        timeout=10,
    )
    assert response.status_code == 413, response.text
    assert response.headers["Content-Type"] == "application/problem+json"


def test_bad_idempotency_key_is_400(
    client: FlaskClient, org: object, officer_headers: dict[str, str]
) -> None:
    response = client.post(
        "/v1/erasure-requests", json=GOOD, headers=officer_headers | {"Idempotency-Key": "x" * 300}
    )
    assert response.status_code == 400
    assert response.get_json()["code"] == "invalid_idempotency_key"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/erasure-requests/not-a-uuid", 404),
        ("/v1/erasure-requests/00000000-0000-0000-0000-000000000000", 404),
        ("/v1/nothing-here", 404),
    ],
)
def test_unknown_resources_are_problem_404(
    client: FlaskClient, officer_headers: dict[str, str], path: str, status: int
) -> None:
    response = client.get(path, headers=officer_headers)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"


def test_wrong_method_is_problem_405_with_allow(
    client: FlaskClient, officer_headers: dict[str, str]
) -> None:
    response = client.delete("/v1/erasure-requests", headers=officer_headers)
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=bogus", "status.0"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("due_before=yesterday", "due_before"),
        ("colour=red", "(query)"),  # an unknown parameter is counted, never named
    ],
)
def test_bad_list_filters_are_422_naming_the_parameter(
    client: FlaskClient, officer_headers: dict[str, str], query: str, field: str
) -> None:
    response = client.get(f"/v1/erasure-requests?{query}", headers=officer_headers)
    assert response.status_code == 422
    assert field in [error["field"] for error in response.get_json()["errors"]]


def test_bad_cursor_is_400(client: FlaskClient, officer_headers: dict[str, str]) -> None:
    response = client.get("/v1/erasure-requests?cursor=garbage", headers=officer_headers)
    assert response.status_code == 400
    assert response.get_json()["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize(
    "path",
    ["/v1/erasure-requests?reference_id=a%00b", "/v1/webhooks/a%00b", "/v1/erasure-requests/x%00"],
)
def test_nul_in_a_path_or_query_is_400(
    client: FlaskClient, officer_headers: dict[str, str], path: str
) -> None:
    response = (
        client.get(path, headers=officer_headers)
        if "?" in path
        else client.post(path, headers=officer_headers)
    )
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
