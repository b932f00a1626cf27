"""The sandbox rejects what Salesforce would reject: raw HTTP against it, no client in between."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from erasure.salesforce.ids import to18
from erasure.salesforce.sandbox import SandboxHandle, add_end_user
from erasure.salesforce.sandbox.soql import SoqlError, parse
from erasure.salesforce.soql import literal, select

from .conftest import CLIENT_A, CLIENT_B

ENG = "/platform/engagement/v1.0"


@pytest.fixture
def http(sandbox: SandboxHandle) -> Iterator[requests.Session]:
    session = requests.Session()
    yield session
    session.close()


def _call(
    http: requests.Session, sandbox: SandboxHandle, method: str, path: str, **kw: Any
) -> requests.Response:
    return http.request(method, sandbox.url + path, verify=sandbox.ca_path, timeout=5, **kw)


def _token(
    http: requests.Session, sandbox: SandboxHandle, client: tuple[str, str] = CLIENT_A
) -> str:
    resp = _call(
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


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _query(
    http: requests.Session, sandbox: SandboxHandle, token: str, q: str, version: str = "v63.0"
) -> requests.Response:
    return _call(
        http,
        sandbox,
        "GET",
        f"/services/data/{version}/query",
        params={"q": q},
        headers=_auth(token),
    )


def _user(sandbox: SandboxHandle, key: str, **spec: Any) -> str:
    with sandbox.org.lock:
        return add_end_user(sandbox.org.data, platform_key=key, **spec).end_user_id


# -- token endpoint ---------------------------------------------------------------------------


def test_token_response_has_the_documented_fields(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    resp = _call(
        http,
        sandbox,
        "POST",
        "/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_A[0],
            "client_secret": CLIENT_A[1],
        },
    )
    body = resp.json()
    assert resp.status_code == 200
    assert body["token_type"] == "Bearer"
    assert body["token_format"] == "jwt"
    assert body["scope"] == "sfap_api api"
    assert body["issued_at"].isdigit()
    assert body["access_token"].count(".") == 2
    assert "expires_in" not in body
    assert "refresh_token" not in body


@pytest.mark.parametrize(
    ("form", "error"),
    [
        (
            {"grant_type": "password", "client_id": CLIENT_A[0], "client_secret": CLIENT_A[1]},
            "unsupported_grant_type",
        ),
        (
            {"grant_type": "client_credentials", "client_id": "nope", "client_secret": "x"},
            "invalid_client_id",
        ),
        (
            {"grant_type": "client_credentials", "client_id": CLIENT_A[0], "client_secret": "bad"},
            "invalid_client",
        ),
    ],
)
def test_token_endpoint_rejects_bad_requests(
    http: requests.Session, sandbox: SandboxHandle, form: dict[str, str], error: str
) -> None:
    resp = _call(http, sandbox, "POST", "/services/oauth2/token", data=form)
    assert resp.status_code == 400
    assert resp.json()["error"] == error


# -- auth on every call -----------------------------------------------------------------------


def test_missing_expired_and_revoked_tokens_get_401(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    expected = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    assert _query(http, sandbox, "", "SELECT Id FROM Contact").json() == expected
    forged = _token(http, sandbox)[:-4] + "AAAA"
    assert _query(http, sandbox, forged, "SELECT Id FROM Contact").status_code == 401
    token = _token(http, sandbox)
    assert _query(http, sandbox, token, "SELECT Id FROM Contact").status_code == 200
    sandbox.org.advance(30 * 60 + 1)
    expired = _query(http, sandbox, token, "SELECT Id FROM Contact")
    assert expired.status_code == 401
    assert expired.json() == expected
    token = _token(http, sandbox)
    sandbox.org.revoke(CLIENT_A[0])
    assert _query(http, sandbox, token, "SELECT Id FROM Contact").status_code == 401
    resp = _call(
        http,
        sandbox,
        "DELETE",
        f"{ENG}/conversations",
        json={"conversationIds": []},
        headers=_auth(token),
    )
    assert resp.status_code == 401


def test_wrong_scopes_are_refused(http: requests.Session, sandbox: SandboxHandle) -> None:
    sandbox.org.configure_app(CLIENT_A[0], scopes=["sfap_api"])
    token = _token(http, sandbox)
    assert _query(http, sandbox, token, "SELECT Id FROM Contact").status_code == 401
    sandbox.org.configure_app(CLIENT_A[0], scopes=["api"])
    token = _token(http, sandbox)
    resp = _call(http, sandbox, "GET", f"{ENG}/conversation-entries", headers=_auth(token))
    assert resp.status_code == 401


def test_opaque_tokens_get_404_from_the_engagement_api(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    sandbox.org.configure_app(CLIENT_A[0], jwt_tokens=False)
    token = _token(http, sandbox)
    assert "." not in token
    assert _query(http, sandbox, token, "SELECT Id FROM Contact").status_code == 200
    resp = _call(http, sandbox, "GET", f"{ENG}/conversation-entries", headers=_auth(token))
    assert resp.status_code == 404


# -- SOQL -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "code"),
    [
        ("SELECT Id FROM", "MALFORMED_QUERY"),
        ("DELETE FROM Contact", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE Email LIKE 'a%'", "MALFORMED_QUERY"),
        (
            "SELECT Id FROM Contact WHERE Email = 'a' AND Phone = 'b' OR Name = 'c'",
            "MALFORMED_QUERY",
        ),
        ("SELECT Id FROM Contact WHERE Email = 'unterminated", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE Email = 'bad \\q escape'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact LIMIT x", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account", "INVALID_TYPE"),
        ("SELECT Secret__c FROM Contact", "INVALID_FIELD"),
        ("SELECT Id FROM MessagingEndUser WHERE Id = 'nope'", "INVALID_QUERY_FILTER_OPERATOR"),
    ],
)
def test_bad_soql_is_rejected(
    http: requests.Session, sandbox: SandboxHandle, q: str, code: str
) -> None:
    resp = _query(http, sandbox, _token(http, sandbox), q)
    assert resp.status_code == 400
    assert resp.json()[0]["errorCode"] == code


def _search(
    http: requests.Session, sandbox: SandboxHandle, token: str, q: str, version: str = "v63.0"
) -> requests.Response:
    return _call(
        http,
        sandbox,
        "GET",
        f"/services/data/{version}/search",
        params={"q": q},
        headers=_auth(token),
    )


def test_sosl_finds_phone_fields_whatever_their_format(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    with sandbox.org.lock:
        data = sandbox.org.data
        formatted = data.add("Contact", Name="A", Phone="(415) 555-0001", MobilePhone=None)
        plus = data.add("Contact", Name="B", Phone=None, MobilePhone="+1 415-555-0001")
        data.add("Contact", Name="C", Phone="(415) 555-0002", MobilePhone=None)
    token = _token(http, sandbox)
    national = _search(
        http, sandbox, token, "FIND {4155550001} IN PHONE FIELDS RETURNING Contact(Id, Phone)"
    )
    assert national.status_code == 200, national.text
    records = national.json()["searchRecords"]
    assert [r["Id"] for r in records] == [formatted]
    assert records[0]["attributes"]["type"] == "Contact"
    assert records[0]["Phone"] == "(415) 555-0001"
    both = _search(
        http,
        sandbox,
        token,
        "find {4155550001 OR 14155550001} in phone fields returning Contact(Id)",
    )
    assert sorted(r["Id"] for r in both.json()["searchRecords"]) == sorted([formatted, plus])
    phrase = _search(
        http, sandbox, token, 'FIND {"415 555 0001"} IN PHONE FIELDS RETURNING Contact(Id)'
    )
    assert [r["Id"] for r in phrase.json()["searchRecords"]] == [formatted]


@pytest.mark.parametrize(
    ("q", "code"),
    [
        ("FIND 4155550001 IN PHONE FIELDS RETURNING Contact(Id)", "MALFORMED_SEARCH"),
        ("FIND {+14155550001} IN PHONE FIELDS RETURNING Contact(Id)", "MALFORMED_SEARCH"),
        ("FIND {4155550001} IN PHONE FIELDS RETURNING Contact(Id", "MALFORMED_SEARCH"),
        ("FIND {} IN PHONE FIELDS RETURNING Contact(Id)", "MALFORMED_SEARCH"),
        ("FIND {4155550001} IN PHONE FIELDS RETURNING Widget__c(Id)", "INVALID_TYPE"),
        ("FIND {4155550001} IN PHONE FIELDS RETURNING Contact(Secret__c)", "INVALID_FIELD"),
        ("SELECT Id FROM Contact", "MALFORMED_SEARCH"),
        ("", "MALFORMED_SEARCH"),
    ],
)
def test_bad_sosl_is_rejected(
    http: requests.Session, sandbox: SandboxHandle, q: str, code: str
) -> None:
    resp = _search(http, sandbox, _token(http, sandbox), q)
    assert resp.status_code == 400, resp.text
    assert resp.json()[0]["errorCode"] == code


def test_sosl_escapes_reserved_characters(http: requests.Session, sandbox: SandboxHandle) -> None:
    with sandbox.org.lock:
        contact = sandbox.org.data.add("Contact", Name="A", Phone="+1 415-555-0001")
    token = _token(http, sandbox)
    q = r"FIND {\+14155550001} IN PHONE FIELDS RETURNING Contact(Id)"
    resp = _search(http, sandbox, token, q)
    assert resp.status_code == 200, resp.text
    assert [r["Id"] for r in resp.json()["searchRecords"]] == [contact]


def test_sosl_needs_a_valid_token_with_the_api_scope(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    q = "FIND {4155550001} IN PHONE FIELDS RETURNING Contact(Id)"
    assert _search(http, sandbox, "forged", q).status_code == 401
    sandbox.org.configure_app(CLIENT_A[0], scopes=["sfap_api"])
    assert _search(http, sandbox, _token(http, sandbox), q).status_code == 401


def test_soql_subset_semantics() -> None:
    rows = [
        {"Id": to18("0035g0000000001"), "Email": "A@x.com", "Phone": "1"},
        {"Id": to18("0035g0000000002"), "Email": "b@x.com", "Phone": "2"},
        {"Id": to18("0035g0000000003"), "Email": None, "Phone": "3"},
    ]
    q = parse(
        "select id from contact where (Email = 'a@X.com' or Phone = '3') and Phone != '9' "
        "order by Phone desc limit 5"
    )
    assert [r["Id"][:15] for r in q.run(rows)] == ["0035g0000000003", "0035g0000000001"]
    q = parse("SELECT Id FROM Contact WHERE Id NOT IN ('0035g0000000001') AND Email = null")
    assert [r["Id"][:15] for r in q.run(rows)] == ["0035g0000000003"]
    with pytest.raises(SoqlError):
        parse("   ")


def test_conversation_api_log_needs_api_63(http: requests.Session, sandbox: SandboxHandle) -> None:
    token = _token(http, sandbox)
    old = _query(http, sandbox, token, "SELECT Id FROM ConversationApiLog", version="v62.0")
    assert old.status_code == 400
    assert old.json()[0]["errorCode"] == "INVALID_TYPE"
    assert (
        _query(http, sandbox, token, "SELECT Id FROM Contact", version="v62.0").status_code == 200
    )
    assert _query(http, sandbox, token, "SELECT Id FROM ConversationApiLog").status_code == 200
    assert (
        _query(http, sandbox, token, "SELECT Id FROM Contact", version="v99.0").status_code == 404
    )
    versions = _call(http, sandbox, "GET", "/services/data/").json()
    assert versions[-1]["version"] == "64.0"


def test_query_pages_through_next_records_url(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    for n in range(5):
        _user(sandbox, f"+1555800{n:04d}")
    sandbox.org.configure(query_batch_size=2)
    token = _token(http, sandbox)
    body = _query(http, sandbox, token, "SELECT Id FROM MessagingEndUser").json()
    seen = len(body["records"])
    assert body["totalSize"] == 5
    while not body["done"]:
        body = _call(http, sandbox, "GET", body["nextRecordsUrl"], headers=_auth(token)).json()
        seen += len(body["records"])
    assert seen == 5


# -- deletes ----------------------------------------------------------------------------------


def _delete(
    http: requests.Session,
    sandbox: SandboxHandle,
    token: str,
    body: Any,
    path: str = "conversation-participants",
) -> requests.Response:
    return _call(http, sandbox, "DELETE", f"{ENG}/{path}", json=body, headers=_auth(token))


@pytest.mark.parametrize(
    "body",
    [
        {"participantEntityIds": []},
        {"participantEntityIds": "0PA5g0000000001GAA"},
        {"wrongField": ["0PA5g0000000001GAA"]},
        {"participantEntityIds": ["0PA5g0000000001AAA"]},  # bad checksum
        {"participantEntityIds": ["short"]},
        {"participantEntityIds": ["0PA5g0000000001GAA", "0PA5g0000000001"]},  # duplicate
        {"participantEntityIds": [to18(f"0PA5g{n:010d}") for n in range(201)]},
    ],
)
def test_bad_delete_bodies_get_400(
    http: requests.Session, sandbox: SandboxHandle, body: Any
) -> None:
    resp = _delete(http, sandbox, _token(http, sandbox), body)
    assert resp.status_code == 400
    assert sandbox.org.counters()["accepted_ids"] == {}


@pytest.mark.parametrize(
    ("mode", "body_ok", "query_ok"),
    [("body", True, False), ("query", False, True), ("either", True, True)],
)
def test_delete_ids_in_the_body_or_the_query_string_as_the_org_is_configured(
    http: requests.Session, sandbox: SandboxHandle, mode: str, body_ok: bool, query_ok: bool
) -> None:
    sandbox.org.configure(delete_ids_in=mode)
    token = _token(http, sandbox)
    first, second = _user(sandbox, "+15550033000"), _user(sandbox, "+15550034000")
    by_body = _delete(http, sandbox, token, {"participantEntityIds": [first]})
    assert by_body.status_code == (202 if body_ok else 400)
    by_query = _call(
        http,
        sandbox,
        "DELETE",
        f"{ENG}/conversation-participants",
        params={"participantEntityIds": f"{second},{to18('0PA5g0000000001')}"},
        headers=_auth(token),
    )
    assert by_query.status_code == (202 if query_ok else 400), by_query.text
    if query_ok:
        logs = by_query.json()["conversationApiLogs"]
        assert [log["requestedEntityIdentifier"] for log in logs] == [
            second[:15],
            "0PA5g0000000001",
        ]
    accepted = sandbox.org.counters()["accepted_ids"].get("delete_participants", [])
    assert (first in accepted) is body_ok and (second in accepted) is query_ok


@pytest.mark.parametrize(
    "params",
    [
        {"participantEntityIds": ""},
        {"participantEntityIds": ","},
        {"participantEntityIds": "0PA5g0000000001GAA,,0PA5g0000000002GAA"},
        {"participantEntityIds": "short"},
        {"wrongField": "0PA5g0000000001GAA"},
    ],
)
def test_bad_delete_query_strings_get_400(
    http: requests.Session, sandbox: SandboxHandle, params: dict[str, str]
) -> None:
    sandbox.org.configure(delete_ids_in="query")
    resp = _call(
        http,
        sandbox,
        "DELETE",
        f"{ENG}/conversation-participants",
        params=params,
        headers=_auth(_token(http, sandbox)),
    )
    assert resp.status_code == 400
    assert sandbox.org.counters()["accepted_ids"] == {}


def test_an_unknown_delete_shape_is_refused(http: requests.Session, sandbox: SandboxHandle) -> None:
    resp = _call(http, sandbox, "PATCH", "/__sandbox__/org", json={"delete_ids_in": "header"})
    assert resp.status_code == 400
    assert sandbox.org.config.delete_ids_in == "body"


def test_ids_in_both_places_are_refused(http: requests.Session, sandbox: SandboxHandle) -> None:
    sandbox.org.configure(delete_ids_in="either")
    user = _user(sandbox, "+15550035000")
    resp = _call(
        http,
        sandbox,
        "DELETE",
        f"{ENG}/conversation-participants",
        params={"participantEntityIds": user},
        json={"participantEntityIds": [user]},
        headers=_auth(_token(http, sandbox)),
    )
    assert resp.status_code == 400


def test_open_session_gets_412_and_nothing_is_accepted(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    busy = _user(sandbox, "+15550030000", open_session=True)
    idle = _user(sandbox, "+15550031000")
    resp = _delete(http, sandbox, _token(http, sandbox), {"participantEntityIds": [idle, busy]})
    assert resp.status_code == 412
    assert sandbox.org.counters()["accepted_ids"] == {}


def test_delete_202_and_logs_advance_on_the_sandbox_clock(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    user = _user(sandbox, "+15550032000")
    token = _token(http, sandbox)
    resp = _delete(http, sandbox, token, {"participantEntityIds": [user]})
    assert resp.status_code == 202
    (log,) = resp.json()["conversationApiLogs"]
    assert log["requestedEntityIdentifier"] == user[:15]
    assert log["status"] == "REQUESTED"
    statuses = []
    for _ in range(3):
        sandbox.org.advance(1.0)
        row = _query(
            http,
            sandbox,
            token,
            select("Status, StatusHistory", "ConversationApiLog", f"Id = {literal(log['id'])}"),
        )
        statuses.append(row.json()["records"][0]["Status"])
    assert statuses == ["ENQUEUED", "IN_PROGRESS", "COMPLETED"]
    gone = _query(http, sandbox, token, select("Id", "MessagingEndUser", f"Id = {literal(user)}"))
    assert gone.json()["totalSize"] == 0


def test_unknown_ids_fail_in_the_log_or_404_when_configured(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    token = _token(http, sandbox)
    ghost = to18("0PA5g0000000777")
    resp = _delete(http, sandbox, token, {"participantEntityIds": [ghost]})
    assert resp.status_code == 202
    sandbox.org.advance(5)
    row = _query(
        http,
        sandbox,
        token,
        select(
            "Status", "ConversationApiLog", f"RequestedEntityIdentifier = {literal(ghost[:15])}"
        ),
    )
    assert row.json()["records"][0]["Status"] == "FAILED"
    sandbox.org.configure(unknown_id_mode="not_found")
    assert _delete(http, sandbox, token, {"participantEntityIds": [ghost]}).status_code == 404


def test_api_toggle_off_gives_404_on_every_engagement_path(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    token = _token(http, sandbox)
    assert (
        _call(http, sandbox, "GET", f"{ENG}/no-such-thing", headers=_auth(token)).status_code == 404
    )
    sandbox.org.configure(api_enabled=False)
    for method, path in [
        ("DELETE", "conversation-participants"),
        ("DELETE", "conversations"),
        ("GET", "conversation-entries?conversationIdentifier=x"),
    ]:
        assert (
            _call(http, sandbox, method, f"{ENG}/{path}", headers=_auth(token)).status_code == 404
        )


# -- limits -----------------------------------------------------------------------------------


def test_delete_limit_is_per_execution_user_and_429_does_not_spend(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    sandbox.org.configure(hour_s=20.0)
    users = [_user(sandbox, f"+1555900{n:04d}") for n in range(12)]
    token = _token(http, sandbox)
    for n in range(10):
        assert (
            _delete(http, sandbox, token, {"participantEntityIds": [users[n]]}).status_code == 202
        )
    limited = _delete(http, sandbox, token, {"participantEntityIds": [users[10]]})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 20
    # Another execution user has its own budget; the conversations route has its own too.
    other = _token(http, sandbox, CLIENT_B)
    assert _delete(http, sandbox, other, {"participantEntityIds": [users[10]]}).status_code == 202
    conv_resp = _delete(
        http, sandbox, token, {"conversationIds": [to18("0dw5g0000000001")]}, "conversations"
    )
    assert conv_resp.status_code == 202
    sandbox.org.advance(21)  # the compressed "hour" passes
    assert _delete(http, sandbox, token, {"participantEntityIds": [users[11]]}).status_code == 202
    assert sandbox.org.call_count("delete_participants", CLIENT_A[0]) == 12


def test_entries_limit_is_90_per_minute(http: requests.Session, sandbox: SandboxHandle) -> None:
    token = _token(http, sandbox)
    sandbox.org.hold_clock(True)  # 91 calls within one minute, however busy the machine
    statuses = [
        _call(http, sandbox, "GET", f"{ENG}/conversation-entries", headers=_auth(token)).status_code
        for _ in range(91)
    ]
    assert statuses[:90] == [400] * 90  # missing conversationIdentifier, but a call all the same
    assert statuses[90] == 429
    sandbox.org.advance(60)  # the minute passes: the window has room again
    again = _call(http, sandbox, "GET", f"{ENG}/conversation-entries", headers=_auth(token))
    assert again.status_code == 400


# -- admin ------------------------------------------------------------------------------------


def test_admin_endpoints(http: requests.Session, sandbox: SandboxHandle) -> None:
    admin = "/__sandbox__"
    seeded = _call(http, sandbox, "POST", f"{admin}/seed", json={"dataset": "demo"}).json()[
        "end_users"
    ]
    assert len(seeded) == 36
    assert (
        _call(
            http, sandbox, "POST", f"{admin}/apps", json={"client_id": "c3", "client_secret": "s3"}
        ).status_code
        == 200
    )
    assert _call(http, sandbox, "PATCH", f"{admin}/apps/c3", json={"scopes": ["api"]}).json()[
        "scopes"
    ] == ["api"]
    assert (
        _call(http, sandbox, "PATCH", f"{admin}/org", json={"api_enabled": False}).json()[
            "api_enabled"
        ]
        is False
    )
    fault = {"route": "query", "status": 500, "count": 1}
    assert _call(http, sandbox, "POST", f"{admin}/faults", json=fault).status_code == 200
    token = _token(http, sandbox)
    assert _query(http, sandbox, token, "SELECT Id FROM Contact").status_code == 500
    assert _query(http, sandbox, token, "SELECT Id FROM Contact").status_code == 200
    assert (
        _call(
            http, sandbox, "POST", f"{admin}/faults", json={"route": "query", "status": 404}
        ).status_code
        == 400
    )
    before = sandbox.org.now()
    assert (
        _call(http, sandbox, "POST", f"{admin}/clock/advance", json={"seconds": 60}).json()["now"]
        >= before + 60
    )
    assert (
        _call(http, sandbox, "POST", f"{admin}/revoke", json={"client_id": CLIENT_A[0]}).json()[
            "revoked"
        ]
        == 1
    )
    counters = _call(http, sandbox, "GET", f"{admin}/counters").json()
    assert counters["calls"]["query"][CLIENT_A[0]] == 2
    assert _call(http, sandbox, "POST", f"{admin}/reset").status_code == 200
    assert _call(http, sandbox, "GET", f"{admin}/counters").json()["calls"] == {}
    assert _call(http, sandbox, "GET", f"{admin}/nope").status_code == 404
