"""The sandbox rejects what Salesforce would reject (tokens, SOQL, SOSL): raw HTTP against it, no
client in between."""

from __future__ import annotations

import pytest
import requests

from erasure.salesforce.ids import to18
from erasure.salesforce.sandbox import SandboxHandle
from erasure.salesforce.sandbox.soql import SoqlError, parse
from tests.support.salesforce import CLIENT_A, ENG, bearer, call, get_token, new_user, soql

# -- token endpoint ---------------------------------------------------------------------------


def test_token_response_has_the_documented_fields(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    resp = call(
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
    resp = call(http, sandbox, "POST", "/services/oauth2/token", data=form)
    assert resp.status_code == 400
    assert resp.json()["error"] == error


# -- auth on every call -----------------------------------------------------------------------


def test_missing_expired_and_revoked_tokens_get_401(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    expected = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    assert soql(http, sandbox, "", "SELECT Id FROM Contact").json() == expected
    forged = get_token(http, sandbox)[:-4] + "AAAA"
    assert soql(http, sandbox, forged, "SELECT Id FROM Contact").status_code == 401
    token = get_token(http, sandbox)
    assert soql(http, sandbox, token, "SELECT Id FROM Contact").status_code == 200
    sandbox.org.advance(30 * 60 + 1)
    expired = soql(http, sandbox, token, "SELECT Id FROM Contact")
    assert expired.status_code == 401
    assert expired.json() == expected
    token = get_token(http, sandbox)
    sandbox.org.revoke(CLIENT_A[0])
    assert soql(http, sandbox, token, "SELECT Id FROM Contact").status_code == 401
    resp = call(
        http,
        sandbox,
        "DELETE",
        f"{ENG}/conversations",
        json={"conversationIds": []},
        headers=bearer(token),
    )
    assert resp.status_code == 401


def test_wrong_scopes_are_refused(http: requests.Session, sandbox: SandboxHandle) -> None:
    sandbox.org.configure_app(CLIENT_A[0], scopes=["sfap_api"])
    token = get_token(http, sandbox)
    assert soql(http, sandbox, token, "SELECT Id FROM Contact").status_code == 401
    sandbox.org.configure_app(CLIENT_A[0], scopes=["api"])
    token = get_token(http, sandbox)
    resp = call(http, sandbox, "GET", f"{ENG}/conversation-entries", headers=bearer(token))
    assert resp.status_code == 401


def test_opaque_tokens_get_404_from_the_engagement_api(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    sandbox.org.configure_app(CLIENT_A[0], jwt_tokens=False)
    token = get_token(http, sandbox)
    assert "." not in token
    assert soql(http, sandbox, token, "SELECT Id FROM Contact").status_code == 200
    resp = call(http, sandbox, "GET", f"{ENG}/conversation-entries", headers=bearer(token))
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
    resp = soql(http, sandbox, get_token(http, sandbox), q)
    assert resp.status_code == 400
    assert resp.json()[0]["errorCode"] == code


def _search(
    http: requests.Session, sandbox: SandboxHandle, token: str, q: str, version: str = "v63.0"
) -> requests.Response:
    return call(
        http,
        sandbox,
        "GET",
        f"/services/data/{version}/search",
        params={"q": q},
        headers=bearer(token),
    )


def test_sosl_finds_phone_fields_whatever_their_format(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    with sandbox.org.lock:
        data = sandbox.org.data
        formatted = data.add("Contact", Name="A", Phone="(415) 555-0001", MobilePhone=None)
        plus = data.add("Contact", Name="B", Phone=None, MobilePhone="+1 415-555-0001")
        data.add("Contact", Name="C", Phone="(415) 555-0002", MobilePhone=None)
    token = get_token(http, sandbox)
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
    resp = _search(http, sandbox, get_token(http, sandbox), q)
    assert resp.status_code == 400, resp.text
    assert resp.json()[0]["errorCode"] == code


def test_sosl_escapes_reserved_characters(http: requests.Session, sandbox: SandboxHandle) -> None:
    with sandbox.org.lock:
        contact = sandbox.org.data.add("Contact", Name="A", Phone="+1 415-555-0001")
    token = get_token(http, sandbox)
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
    assert _search(http, sandbox, get_token(http, sandbox), q).status_code == 401


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
    token = get_token(http, sandbox)
    old = soql(http, sandbox, token, "SELECT Id FROM ConversationApiLog", version="v62.0")
    assert old.status_code == 400
    assert old.json()[0]["errorCode"] == "INVALID_TYPE"
    assert soql(http, sandbox, token, "SELECT Id FROM Contact", version="v62.0").status_code == 200
    assert soql(http, sandbox, token, "SELECT Id FROM ConversationApiLog").status_code == 200
    assert soql(http, sandbox, token, "SELECT Id FROM Contact", version="v99.0").status_code == 404
    versions = call(http, sandbox, "GET", "/services/data/").json()
    assert versions[-1]["version"] == "64.0"


def test_query_pages_through_next_records_url(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    for n in range(5):
        new_user(sandbox, f"+1555800{n:04d}")
    sandbox.org.configure(query_batch_size=2)
    token = get_token(http, sandbox)
    body = soql(http, sandbox, token, "SELECT Id FROM MessagingEndUser").json()
    seen = len(body["records"])
    assert body["totalSize"] == 5
    while not body["done"]:
        body = call(http, sandbox, "GET", body["nextRecordsUrl"], headers=bearer(token)).json()
        seen += len(body["records"])
    assert seen == 5


# -- deletes ----------------------------------------------------------------------------------
