"""Every endpoint x (no key, malformed key, revoked key, each role): 401, 403 or allowed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.api_keys import create_api_key, revoke_api_key
from erasure.core.models import Org
from tests.support.web import KeyMaker

OF, AP, AU, IN, AD = Role.OFFICER, Role.APPROVER, Role.AUDITOR, Role.INTEGRATION, Role.ADMIN

BODY = {"subject": {"phone": "+14155552671"}, "regulation": "gdpr"}

OPENDSR_COLLECTIONS = (
    "/opendsr/v2/requests",
    "/opendsr/requests",
    "/opengdpr/v1/opengdpr_requests",
)

# (method, rule, roles allowed)
MATRIX: list[tuple[str, str, frozenset[Role]]] = [
    ("POST", "/v1/erasure-requests", frozenset({OF, IN, AD})),
    ("GET", "/v1/erasure-requests", frozenset({OF, AP, AU, IN, AD})),
    ("GET", "/v1/erasure-requests/<uuid:request_id>", frozenset({OF, AP, AU, IN, AD})),
    ("POST", "/v1/erasure-requests/<uuid:request_id>/cancel", frozenset({OF, IN, AD})),
    ("POST", "/v1/erasure-requests/<uuid:request_id>/approve", frozenset({AP, AD})),
    ("POST", "/v1/erasure-requests/<uuid:request_id>/retry", frozenset({OF, AD})),
    ("POST", "/v1/erasure-requests/<uuid:request_id>/extend", frozenset({OF, AD})),
    ("GET", "/v1/erasure-requests/<uuid:request_id>/certificate", frozenset({OF, AP, AU, IN, AD})),
    ("GET", "/v1/audit/checkpoint", frozenset({OF, AP, AU, IN, AD})),
    ("GET", "/v1/audit/consistency", frozenset({OF, AP, AU, IN, AD})),
    ("POST", "/v1/subject-lookups", frozenset({OF, AD})),
    ("POST", "/v1/access-requests", frozenset({OF, IN, AD})),
    ("GET", "/v1/access-requests/<uuid:request_id>", frozenset({OF, AP, AU, IN, AD})),
    ("GET", "/v1/access-requests/<uuid:request_id>/certificate", frozenset({OF, AP, AU, IN, AD})),
    ("POST", "/v1/access-requests/<uuid:request_id>/cancel", frozenset({OF, IN, AD})),
    # Legal holds: approvers and admins, like approvals.
    ("POST", "/v1/holds", frozenset({AP, AD})),
    ("GET", "/v1/holds", frozenset({AP, AD})),
    ("GET", "/v1/holds/<uuid:hold_id>", frozenset({AP, AD})),
    ("POST", "/v1/holds/<uuid:hold_id>/release", frozenset({AP, AD})),
    ("POST", "/v1/erasure-requests/<uuid:request_id>/override-hold", frozenset({AP, AD})),
    # Notices to data subjects (tests/notices).
    ("GET", "/v1/erasure-requests/<uuid:request_id>/notices", frozenset({OF, AP, AU, IN, AD})),
    ("POST", "/v1/erasure-requests/<uuid:request_id>/notices", frozenset({OF, AD})),
    (
        "GET",
        "/v1/erasure-requests/<uuid:request_id>/notices/<uuid:notice_id>/text",
        frozenset({OF, AD}),
    ),
    ("GET", "/v1/notice-templates", frozenset({OF, AD})),
    ("PUT", "/v1/notice-templates/<kind>", frozenset({AD})),
    ("DELETE", "/v1/notice-templates/<kind>", frozenset({AD})),
    # Integrations (tests/integrations): webhook sources.
    ("POST", "/v1/webhook-sources", frozenset({AD})),
    ("GET", "/v1/webhook-sources", frozenset({AD})),
    ("POST", "/v1/webhook-sources/<source_name>/secrets", frozenset({AD})),
    ("POST", "/v1/callback-subscriptions", frozenset({IN, AD})),
    ("GET", "/v1/callback-subscriptions", frozenset({IN, AD})),
    ("POST", "/v1/callback-subscriptions/<uuid:subscription_id>/secrets", frozenset({AD})),
    ("DELETE", "/v1/callback-subscriptions/<uuid:subscription_id>", frozenset({AD})),
    ("GET", "/v1/callback-deliveries", frozenset({OF, AD})),
    ("POST", "/v1/callback-deliveries/<uuid:delivery_id>/redeliver", frozenset({OF, AD})),
    # OpenDSR (tests/integrations/test_opendsr*.py): v2, the unversioned and OpenGDPR aliases.
    *[
        (method, f"{collection}{suffix}", frozenset({IN, AD}))
        for collection in OPENDSR_COLLECTIONS
        for method, suffix in (
            ("POST", ""),
            ("GET", "/<subject_request_id>"),
            ("DELETE", "/<subject_request_id>"),
        )
    ],
    ("GET", "/opendsr/v2/status/<subject_request_id>", frozenset({IN, AD})),
]


# Path parameters the matrix fills with something that does not exist: allowed callers get 404.
MISSING_PARAMS = (
    "<source_name>",
    "<uuid:hold_id>",
    "<uuid:delivery_id>",
    "<uuid:subscription_id>",
    "<subject_request_id>",
    "<uuid:notice_id>",
)


def test_the_matrix_covers_every_protected_endpoint(app: Flask) -> None:
    protected = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if getattr(app.view_functions[rule.endpoint], "required_roles", None)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert protected == {(method, rule) for method, rule, _ in MATRIX}
    for method, rule, roles in MATRIX:
        view = next(
            app.view_functions[r.endpoint]
            for r in app.url_map.iter_rules()
            if r.rule == rule and method in (r.methods or ())
        )
        assert view.required_roles == roles


def _post_body(path: str) -> tuple[str, Any]:
    """The path (a placeholder filled) and a valid body for one POST of the matrix."""
    body = {"reason": "test"} if path.endswith(("/cancel", "/extend")) else BODY
    if path.endswith(("/approve", "/retry")):
        body = {}
    if path.endswith("/notices"):
        body = {"kind": "acknowledgement"}
    if path.endswith("/subject-lookups"):
        body = {"subject": BODY["subject"]}
    if path == "/v1/holds":
        body = {"scope": "org", "reason": "test", "ends_at": "2099-01-01T00:00:00Z"}
    if path.endswith("/override-hold"):
        body = {"reason": "test"}
    if path.endswith("/release"):
        body = {}
    if path.startswith("/v1/webhook-sources"):
        body = {"name": f"m-{uuid.uuid4().hex[:8]}", "system": "jira"}
        if "<source_name>" in path:
            path, body = path.replace("<source_name>", "no-such-source"), {}
    if path == "/v1/callback-subscriptions":
        body = {"url": "https://receiver.example/hooks"}
    if path.endswith("/secrets") and path.startswith("/v1/callback-subscriptions"):
        body = {"previous_valid_for_s": 60}
    if path in OPENDSR_COLLECTIONS:
        body = {
            "subject_request_id": str(uuid.uuid4()),
            "subject_request_type": "erasure",
            "subject_identities": [
                {"identity_type": "phone_number", "identity_value": "+14155552671"}
            ],
        }
    return path, body


def _call(
    client: FlaskClient, method: str, rule: str, request_id: str, headers: dict[str, str]
) -> Any:
    path = rule.replace("<uuid:request_id>", request_id).replace(
        "<uuid:delivery_id>", str(uuid.uuid4())
    )
    path = path.replace("<uuid:subscription_id>", str(uuid.uuid4()))
    path = path.replace("<uuid:hold_id>", str(uuid.uuid4()))
    path = path.replace("<subject_request_id>", "no-such-request")
    path = path.replace("<uuid:notice_id>", str(uuid.uuid4()))
    path = path.replace("<kind>", "acknowledgement")
    if method == "PUT":
        return client.put(path, json={"subject": "s", "body": "b"}, headers=headers)
    if method == "DELETE":
        return client.delete(path, headers=headers)
    if method == "POST":
        path, body = _post_body(path)
        return client.post(path, json=body, headers=headers)
    if path == "/v1/audit/consistency":
        path += "?first=1&second=1"
    return client.get(path, headers=headers)


def _code(response: Any) -> str:
    """The error's code: the problem's, or the reason of OpenDSR's error object."""
    body = response.get_json()
    if "error" in body:
        assert body["error"]["code"] == response.status_code
        return str(body["error"]["errors"][0]["reason"])
    return str(body["code"])


@pytest.fixture
def request_id(client: FlaskClient, org: Org, make_key: KeyMaker) -> str:
    """A request owned by an integration key, so scoping is exercised too."""
    headers = {"Authorization": f"Bearer {make_key(Role.ADMIN)}"}
    return str(client.post("/v1/erasure-requests", json=BODY, headers=headers).get_json()["id"])


@pytest.fixture
def access_id(client: FlaskClient, org: Org, make_key: KeyMaker) -> str:
    headers = {"Authorization": f"Bearer {make_key(Role.ADMIN)}"}
    return str(client.post("/v1/access-requests", json=BODY, headers=headers).get_json()["id"])


@pytest.mark.parametrize(
    ("method", "rule", "allowed"), MATRIX, ids=[f"{m} {r}" for m, r, _ in MATRIX]
)
@pytest.mark.parametrize(
    "who", ["none", "malformed", "wrong-scheme", "unknown", "revoked", *[r.value for r in Role]]
)
def test_auth_matrix(
    client: FlaskClient,
    db_session: Session,
    org: Org,
    request_id: str,
    access_id: str,
    method: str,
    rule: str,
    allowed: frozenset[Role],
    who: str,
) -> None:
    headers: dict[str, str]
    if who == "none":
        headers = {}
    elif who == "malformed":
        headers = {"Authorization": "Bearer not-a-key"}
    elif who == "wrong-scheme":
        key = create_api_key(db_session, name="x", role=Role.ADMIN).secret
        headers = {"Authorization": f"Basic {key}"}
    elif who == "unknown":
        key = create_api_key(db_session, name="x", role=Role.ADMIN).secret
        headers = {"Authorization": f"Bearer {key[:-4]}AAAA"}  # right prefix, wrong secret
    elif who == "revoked":
        new = create_api_key(db_session, name="x", role=Role.ADMIN)
        db_session.flush()
        revoke_api_key(db_session, prefix=new.record.prefix)
        headers = {"Authorization": f"Bearer {new.secret}"}
    else:
        new = create_api_key(db_session, name="x", role=Role(who))
        headers = {"Authorization": f"Bearer {new.secret}"}
    db_session.flush()
    subject_id = access_id if rule.startswith("/v1/access-requests/") else request_id
    response = _call(client, method, rule, subject_id, headers)
    if who in {"none", "malformed", "wrong-scheme", "unknown", "revoked"}:
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert _code(response) == "unauthorized"
    elif Role(who) not in allowed:
        assert response.status_code == 403
        assert _code(response) == "forbidden"
    elif Role(who) == Role.INTEGRATION and "<uuid" in rule:
        # Integrations see only requests they submitted: someone else's is "not found".
        assert response.status_code == 404
    elif rule.endswith("/approve"):
        assert response.status_code == 409  # allowed, but this org does not require approval
    elif rule.endswith("/certificate"):
        assert response.status_code == 409  # allowed, but the request has not completed
    elif rule.endswith("/override-hold"):
        assert response.status_code == 409  # allowed, but the request is not on hold
    elif rule.startswith(("/opendsr", "/opengdpr")) and "<subject_request_id>" in rule:
        assert response.status_code == 400  # OpenDSR answers every request error 400 (§7.5)
        assert _code(response) == "not_found"
    elif rule.startswith("/v1/audit/") or any(p in rule for p in MISSING_PARAMS):
        # Allowed; 404 until the first checkpoint (checkpoint, consistency), and for a source or
        # delivery that does not exist.
        assert response.status_code in {200, 404}
    else:
        assert response.status_code in {200, 201, 202}, response.get_data(as_text=True)


def test_integrations_see_only_their_own_requests(
    client: FlaskClient, org: Org, make_key: KeyMaker
) -> None:
    mine = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    theirs = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    officer = {"Authorization": f"Bearer {make_key(Role.OFFICER)}"}
    created = client.post("/v1/erasure-requests", json=BODY, headers=mine).get_json()
    assert client.get(f"/v1/erasure-requests/{created['id']}", headers=mine).status_code == 200
    assert client.get(f"/v1/erasure-requests/{created['id']}", headers=theirs).status_code == 404
    assert client.get(f"/v1/erasure-requests/{created['id']}", headers=officer).status_code == 200
    assert [
        item["id"] for item in client.get("/v1/erasure-requests", headers=mine).get_json()["items"]
    ] == [created["id"]]
    assert client.get("/v1/erasure-requests", headers=theirs).get_json()["items"] == []
    assert (
        client.post(
            f"/v1/erasure-requests/{created['id']}/cancel", json={"reason": "x"}, headers=theirs
        ).status_code
        == 404
    )


@pytest.mark.parametrize("path", ["/openapi.json", "/healthz"])
def test_public_endpoints_need_no_key(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 200
