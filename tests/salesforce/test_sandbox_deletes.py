"""The sandbox's deletes, logs, limits and admin endpoints as Salesforce would answer them: raw HTTP
against it, no client in between."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from erasure.salesforce.ids import to18
from erasure.salesforce.sandbox import SandboxHandle
from erasure.salesforce.soql import literal, select
from tests.support.salesforce import (
    CLIENT_A,
    CLIENT_B,
    ENG,
    bearer,
    call,
    delete,
    get_token,
    new_user,
    soql,
)


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
    resp = delete(http, sandbox, get_token(http, sandbox), body)
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
    token = get_token(http, sandbox)
    first, second = new_user(sandbox, "+15550033000"), new_user(sandbox, "+15550034000")
    by_body = delete(http, sandbox, token, {"participantEntityIds": [first]})
    assert by_body.status_code == (202 if body_ok else 400)
    by_query = call(
        http,
        sandbox,
        "DELETE",
        f"{ENG}/conversation-participants",
        params={"participantEntityIds": f"{second},{to18('0PA5g0000000001')}"},
        headers=bearer(token),
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
    resp = call(
        http,
        sandbox,
        "DELETE",
        f"{ENG}/conversation-participants",
        params=params,
        headers=bearer(get_token(http, sandbox)),
    )
    assert resp.status_code == 400
    assert sandbox.org.counters()["accepted_ids"] == {}


def test_an_unknown_delete_shape_is_refused(http: requests.Session, sandbox: SandboxHandle) -> None:
    resp = call(http, sandbox, "PATCH", "/__sandbox__/org", json={"delete_ids_in": "header"})
    assert resp.status_code == 400
    assert sandbox.org.config.delete_ids_in == "body"


def test_ids_in_both_places_are_refused(http: requests.Session, sandbox: SandboxHandle) -> None:
    sandbox.org.configure(delete_ids_in="either")
    user = new_user(sandbox, "+15550035000")
    resp = call(
        http,
        sandbox,
        "DELETE",
        f"{ENG}/conversation-participants",
        params={"participantEntityIds": user},
        json={"participantEntityIds": [user]},
        headers=bearer(get_token(http, sandbox)),
    )
    assert resp.status_code == 400


def test_open_session_gets_412_and_nothing_is_accepted(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    busy = new_user(sandbox, "+15550030000", open_session=True)
    idle = new_user(sandbox, "+15550031000")
    resp = delete(http, sandbox, get_token(http, sandbox), {"participantEntityIds": [idle, busy]})
    assert resp.status_code == 412
    assert sandbox.org.counters()["accepted_ids"] == {}


def test_delete_202_and_logs_advance_on_the_sandbox_clock(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    user = new_user(sandbox, "+15550032000")
    token = get_token(http, sandbox)
    resp = delete(http, sandbox, token, {"participantEntityIds": [user]})
    assert resp.status_code == 202
    (log,) = resp.json()["conversationApiLogs"]
    assert log["requestedEntityIdentifier"] == user[:15]
    assert log["status"] == "REQUESTED"
    statuses = []
    for _ in range(3):
        sandbox.org.advance(1.0)
        row = soql(
            http,
            sandbox,
            token,
            select("Status, StatusHistory", "ConversationApiLog", f"Id = {literal(log['id'])}"),
        )
        statuses.append(row.json()["records"][0]["Status"])
    assert statuses == ["ENQUEUED", "IN_PROGRESS", "COMPLETED"]
    gone = soql(http, sandbox, token, select("Id", "MessagingEndUser", f"Id = {literal(user)}"))
    assert gone.json()["totalSize"] == 0


def test_unknown_ids_fail_in_the_log_or_404_when_configured(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    token = get_token(http, sandbox)
    ghost = to18("0PA5g0000000777")
    resp = delete(http, sandbox, token, {"participantEntityIds": [ghost]})
    assert resp.status_code == 202
    sandbox.org.advance(5)
    row = soql(
        http,
        sandbox,
        token,
        select(
            "Status", "ConversationApiLog", f"RequestedEntityIdentifier = {literal(ghost[:15])}"
        ),
    )
    assert row.json()["records"][0]["Status"] == "FAILED"
    sandbox.org.configure(unknown_id_mode="not_found")
    assert delete(http, sandbox, token, {"participantEntityIds": [ghost]}).status_code == 404


def test_api_toggle_off_gives_404_on_every_engagement_path(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    token = get_token(http, sandbox)
    assert (
        call(http, sandbox, "GET", f"{ENG}/no-such-thing", headers=bearer(token)).status_code == 404
    )
    sandbox.org.configure(api_enabled=False)
    for method, path in [
        ("DELETE", "conversation-participants"),
        ("DELETE", "conversations"),
        ("GET", "conversation-entries?conversationIdentifier=x"),
    ]:
        assert (
            call(http, sandbox, method, f"{ENG}/{path}", headers=bearer(token)).status_code == 404
        )


# -- limits -----------------------------------------------------------------------------------


def test_delete_limit_is_per_execution_user_and_429_does_not_spend(
    http: requests.Session, sandbox: SandboxHandle
) -> None:
    sandbox.org.configure(hour_s=20.0)
    users = [new_user(sandbox, f"+1555900{n:04d}") for n in range(12)]
    token = get_token(http, sandbox)
    for n in range(10):
        assert delete(http, sandbox, token, {"participantEntityIds": [users[n]]}).status_code == 202
    limited = delete(http, sandbox, token, {"participantEntityIds": [users[10]]})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 20
    # Another execution user has its own budget; the conversations route has its own too.
    other = get_token(http, sandbox, CLIENT_B)
    assert delete(http, sandbox, other, {"participantEntityIds": [users[10]]}).status_code == 202
    conv_resp = delete(
        http, sandbox, token, {"conversationIds": [to18("0dw5g0000000001")]}, "conversations"
    )
    assert conv_resp.status_code == 202
    sandbox.org.advance(21)  # the compressed "hour" passes
    assert delete(http, sandbox, token, {"participantEntityIds": [users[11]]}).status_code == 202
    assert sandbox.org.call_count("delete_participants", CLIENT_A[0]) == 12


def test_entries_limit_is_90_per_minute(http: requests.Session, sandbox: SandboxHandle) -> None:
    token = get_token(http, sandbox)
    sandbox.org.hold_clock(True)  # 91 calls within one minute, however busy the machine
    statuses = [
        call(http, sandbox, "GET", f"{ENG}/conversation-entries", headers=bearer(token)).status_code
        for _ in range(91)
    ]
    assert statuses[:90] == [400] * 90  # missing conversationIdentifier, but a call all the same
    assert statuses[90] == 429
    sandbox.org.advance(60)  # the minute passes: the window has room again
    again = call(http, sandbox, "GET", f"{ENG}/conversation-entries", headers=bearer(token))
    assert again.status_code == 400


# -- admin ------------------------------------------------------------------------------------


def test_admin_endpoints(http: requests.Session, sandbox: SandboxHandle) -> None:
    admin = "/__sandbox__"
    seeded = call(http, sandbox, "POST", f"{admin}/seed", json={"dataset": "demo"}).json()[
        "end_users"
    ]
    assert len(seeded) == 36
    assert (
        call(
            http, sandbox, "POST", f"{admin}/apps", json={"client_id": "c3", "client_secret": "s3"}
        ).status_code
        == 200
    )
    assert call(http, sandbox, "PATCH", f"{admin}/apps/c3", json={"scopes": ["api"]}).json()[
        "scopes"
    ] == ["api"]
    assert (
        call(http, sandbox, "PATCH", f"{admin}/org", json={"api_enabled": False}).json()[
            "api_enabled"
        ]
        is False
    )
    fault = {"route": "query", "status": 500, "count": 1}
    assert call(http, sandbox, "POST", f"{admin}/faults", json=fault).status_code == 200
    token = get_token(http, sandbox)
    assert soql(http, sandbox, token, "SELECT Id FROM Contact").status_code == 500
    assert soql(http, sandbox, token, "SELECT Id FROM Contact").status_code == 200
    assert (
        call(
            http, sandbox, "POST", f"{admin}/faults", json={"route": "query", "status": 404}
        ).status_code
        == 400
    )
    before = sandbox.org.now()
    assert (
        call(http, sandbox, "POST", f"{admin}/clock/advance", json={"seconds": 60}).json()["now"]
        >= before + 60
    )
    assert (
        call(http, sandbox, "POST", f"{admin}/revoke", json={"client_id": CLIENT_A[0]}).json()[
            "revoked"
        ]
        == 1
    )
    counters = call(http, sandbox, "GET", f"{admin}/counters").json()
    assert counters["calls"]["query"][CLIENT_A[0]] == 2
    assert call(http, sandbox, "POST", f"{admin}/reset").status_code == 200
    assert call(http, sandbox, "GET", f"{admin}/counters").json()["calls"] == {}
    assert call(http, sandbox, "GET", f"{admin}/nope").status_code == 404
