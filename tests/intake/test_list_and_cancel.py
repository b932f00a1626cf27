"""Listing with filters and keyset pagination; cancelling."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.audit.models import AuditLeaf
from erasure.core.models import ErasureRequest, Org, Target, TargetKind, TargetStatus


def submit(client: FlaskClient, headers: dict[str, str], n: int, **extra: object) -> str:
    body = {"subject": {"phone": f"+1415555{n:04d}"}, "regulation": "gdpr"} | extra
    response = client.post("/v1/erasure-requests", json=body, headers=headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    return str(response.get_json()["id"])


def test_keyset_pagination_walks_every_request_once_newest_first(
    client: FlaskClient, org: Org, officer_headers: dict[str, str]
) -> None:
    created = [submit(client, officer_headers, n) for n in range(7)]
    seen: list[str] = []
    url = "/v1/erasure-requests?limit=3"
    pages = 0
    while url:
        page = client.get(url, headers=officer_headers).get_json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        url = page["links"].get("next", "").replace("https://erasure.test", "")
        assert (page["next_cursor"] is None) == (url == "")
    assert seen == list(reversed(created))
    assert pages == 3


def test_pagination_links_carry_the_filters_exactly(
    client: FlaskClient, org: Org, officer_headers: dict[str, str]
) -> None:
    # A filter value holding URL syntax must come back in `links` exactly as it was sent:
    # a link built by pasting values in would turn it into another filter (and a fragment).
    tricky = "A&status=completed#f"
    due = (datetime.now(UTC) + timedelta(days=400)).isoformat()  # "+00:00": `+` is a space
    created = [
        submit(client, officer_headers, n, reference={"system": "jira", "id": tricky})
        for n in range(3)
    ]
    other = submit(client, officer_headers, 9, reference={"system": "jira", "id": "A"})
    client.post(
        f"/v1/erasure-requests/{other}/cancel", json={"reason": "x"}, headers=officer_headers
    )
    query = urlencode({"reference_id": tricky, "due_before": due, "limit": 1})
    url = f"/v1/erasure-requests?{query}"
    seen: list[str] = []
    while url:
        response = client.get(url, headers=officer_headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        page = response.get_json()
        seen += [item["id"] for item in page["items"]]
        for name, link in page["links"].items():
            parts = urlsplit(link)
            assert parts.fragment == "", (name, link)
            args = parse_qs(parts.query, keep_blank_values=True)
            assert args["reference_id"] == [tricky], (name, link)
            assert args["due_before"] == [due], (name, link)
            assert "status" not in args, (name, link)
        url = page["links"].get("next", "").replace("https://erasure.test", "")
    assert seen == list(reversed(created))


def test_filters(client: FlaskClient, org: Org, officer_headers: dict[str, str]) -> None:
    now = datetime.now(UTC)
    old = submit(
        client,
        officer_headers,
        1,
        received_at=(now - timedelta(days=40)).isoformat(),
        reference={"system": "jira", "id": "A-1"},
    )
    new = submit(client, officer_headers, 2, reference={"system": "zendesk", "id": "9"})
    cancelled = submit(client, officer_headers, 3)
    client.post(
        f"/v1/erasure-requests/{cancelled}/cancel", json={"reason": "test"}, headers=officer_headers
    )

    def ids(query: str) -> set[str]:
        response = client.get(f"/v1/erasure-requests?{query}", headers=officer_headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        return {item["id"] for item in response.get_json()["items"]}

    assert ids("status=cancelled") == {cancelled}
    assert ids("status=received") == {old, new}
    assert ids("status=received,cancelled") == {old, new, cancelled}
    assert ids("status=received&status=cancelled") == {old, new, cancelled}
    due = (now + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert ids(f"due_before={due}") == {old}  # received 40 days ago: already overdue
    assert ids("reference_system=jira&reference_id=A-1") == {old}
    assert ids("source=api") == {old, new, cancelled}
    assert ids("source=jira") == set()


def test_cancel_withdraws_unsent_targets_and_records_what_could_not_be_stopped(
    client: FlaskClient, org: Org, officer_headers: dict[str, str], db_session: Session
) -> None:
    request_id = submit(client, officer_headers, 1)
    erasure_request = db_session.get(ErasureRequest, request_id)
    assert erasure_request is not None
    for n, status in enumerate(
        [TargetStatus.PENDING, TargetStatus.BATCHED, TargetStatus.REQUESTED]
    ):
        db_session.add(
            Target(
                request_id=erasure_request.id,
                org_id=org.id,
                kind=TargetKind.MESSAGING_END_USER,
                salesforce_id=f"0PA00000000000{n}",
                status=status,
                due_at=erasure_request.due_at,
            )
        )
    db_session.flush()
    response = client.post(
        f"/v1/erasure-requests/{request_id}/cancel",
        json={"reason": "subject withdrew"},
        headers=officer_headers,
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "cancelled"
    assert body["targets"] == {"withdrawn": 2, "requested": 1}
    assert "1 deletion(s) already sent to Salesforce could not be stopped" in body["outcome"]
    assert body["links"]["cancel"] is None
    leaf = db_session.scalar(
        select(AuditLeaf).where(
            AuditLeaf.request_id == erasure_request.id, AuditLeaf.kind == "request.cancelled"
        )
    )
    assert leaf is not None
    data = json.loads(leaf.leaf)["data"]
    assert data == {
        "from_status": "received",
        "targets_withdrawn": 2,
        "deletions_not_stoppable": 1,
        "by": data["by"],
    }
    assert data["by"].startswith("api-key:")
    again = client.post(
        f"/v1/erasure-requests/{request_id}/cancel",
        json={"reason": "again"},
        headers=officer_headers,
    )
    assert again.status_code == 409
    assert again.get_json()["code"] == "invalid_transition"


def test_cancel_needs_a_reason(
    client: FlaskClient, org: Org, officer_headers: dict[str, str]
) -> None:
    request_id = submit(client, officer_headers, 1)
    response = client.post(
        f"/v1/erasure-requests/{request_id}/cancel", json={}, headers=officer_headers
    )
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "reason"


def test_the_audit_log_names_who_submitted_and_who_cancelled(
    client: FlaskClient, org: Org, make_key: object, db_session: Session
) -> None:
    from erasure.accounts.models import Role
    from erasure.api_keys import authenticate

    officer = make_key(Role.OFFICER)  # type: ignore[operator]
    admin = make_key(Role.ADMIN)  # type: ignore[operator]
    request_id = submit(client, {"Authorization": f"Bearer {officer}"}, 1)
    client.post(
        f"/v1/erasure-requests/{request_id}/cancel",
        json={"reason": "dup"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    events = {
        leaf.kind: json.loads(leaf.leaf)["data"]
        for leaf in db_session.scalars(select(AuditLeaf).where(AuditLeaf.request_id == request_id))
    }
    officer_key, admin_key = authenticate(db_session, officer), authenticate(db_session, admin)
    assert officer_key is not None and admin_key is not None
    assert events["request.received"]["submitted_by"] == f"api-key:{officer_key.prefix}"
    assert events["request.cancelled"]["by"] == f"api-key:{admin_key.prefix}"


def test_a_date_filter_takes_a_plain_date_as_the_end_of_that_day_utc(
    client: FlaskClient, org: Org, officer_headers: dict[str, str], db_session: Session
) -> None:
    request_id = submit(client, officer_headers, 4)
    erasure_request = db_session.get(ErasureRequest, request_id)
    assert erasure_request is not None
    due_day = erasure_request.due_at.astimezone(UTC).date()

    def ids(query: str) -> set[str]:
        response = client.get(f"/v1/erasure-requests?{query}", headers=officer_headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        return {item["id"] for item in response.get_json()["items"]}

    # Due during that day: included when the filter names the day, not the day before.
    assert request_id in ids(f"due_before={due_day.isoformat()}")
    assert request_id not in ids(f"due_before={(due_day - timedelta(days=1)).isoformat()}")
    # An instant still needs its offset; a date is not a bare time.
    naive = client.get("/v1/erasure-requests?due_before=2027-01-10T10:00", headers=officer_headers)
    assert naive.status_code == 422
    spec = client.get("/openapi.json").get_json()
    (param,) = [
        p
        for p in spec["paths"]["/v1/erasure-requests"]["get"]["parameters"]
        if p["name"] == "due_before"
    ]
    assert "end of that day" in param["description"] and "UTC" in param["description"]
    assert {s.get("format") for s in param["schema"]["oneOf"]} == {"date", "date-time"}
