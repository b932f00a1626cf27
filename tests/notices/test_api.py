"""Notices over HTTP: admins edit templates (others may not; a broken template is a 422 naming
the part), officers make and download notices, and nothing in a list or an error shows the
subject's address or the letter."""

from __future__ import annotations

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.core.models import Org
from erasure.workflow import Protection
from tests.conftest import KeyMaker
from tests.notices.support import EMAIL, submit


def _auth(make_key: KeyMaker, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(role)}"}


def test_admin_edits_a_template_over_http_and_new_notices_use_it(
    client: FlaskClient, make_key: KeyMaker, db_session: Session, org: Org, protection: Protection
) -> None:
    admin, officer = _auth(make_key, Role.ADMIN), _auth(make_key, Role.OFFICER)
    listed = client.get("/v1/notice-templates", headers=officer)
    assert listed.status_code == 200
    document = listed.get_json()
    assert {t["kind"] for t in document["templates"]} == {
        "acknowledgement",
        "extension",
        "completion",
    }
    assert all(t["is_default"] for t in document["templates"])
    assert "extension_reason" in document["variables"]

    edited = {"subject": "Received: {{ reference }}", "body": "We will answer by {{ due_on }}."}
    assert (
        client.put("/v1/notice-templates/acknowledgement", json=edited, headers=officer).status_code
        == 403
    )
    saved = client.put("/v1/notice-templates/acknowledgement", json=edited, headers=admin)
    assert saved.status_code == 200, saved.get_data(as_text=True)
    version = saved.get_json()["version"]
    assert saved.get_json()["is_default"] is False
    assert saved.get_json()["updated_by"].startswith("api-key:")

    request = submit(db_session, protection, org.name)
    made = client.post(
        f"/v1/erasure-requests/{request.id}/notices",
        json={"kind": "acknowledgement"},
        headers=officer,
    )
    assert made.status_code == 201, made.get_data(as_text=True)
    notice = made.get_json()
    assert notice["template_version"] == version and notice["delivery"] == "queued"
    assert EMAIL not in made.get_data(as_text=True)

    text = client.get(notice["text"].removeprefix("https://erasure.test"), headers=officer)
    assert text.status_code == 200 and text.mimetype == "text/plain"
    assert text.get_data(as_text=True).startswith(
        "Subject: Received: PRIV-77\n\nWe will answer by "
    )
    assert "attachment" in text.headers["Content-Disposition"]
    auditor = _auth(make_key, Role.AUDITOR)
    assert (
        client.get(notice["text"].removeprefix("https://erasure.test"), headers=auditor).status_code
        == 403
    )
    listing = client.get(f"/v1/erasure-requests/{request.id}/notices", headers=auditor)
    assert listing.status_code == 200 and [n["id"] for n in listing.get_json()["notices"]] == [
        notice["id"]
    ]

    reset = client.delete("/v1/notice-templates/acknowledgement", headers=admin)
    assert reset.status_code == 200 and reset.get_json()["is_default"] is True


def test_a_broken_template_is_refused_with_the_part_at_fault(
    client: FlaskClient, make_key: KeyMaker
) -> None:
    admin = _auth(make_key, Role.ADMIN)
    broken = client.put(
        "/v1/notice-templates/extension",
        json={"subject": "fine", "body": "{{ ''.__class__.__mro__ }}"},
        headers=admin,
    )
    assert broken.status_code == 422
    assert broken.get_json()["errors"][0]["field"] == "body"
    unknown = client.put(
        "/v1/notice-templates/nonsense", json={"subject": "a", "body": "b"}, headers=admin
    )
    assert unknown.status_code == 404


def test_completion_letter_before_completion_is_a_conflict(
    client: FlaskClient,
    officer_headers: dict[str, str],
    db_session: Session,
    org: Org,
    protection: Protection,
) -> None:
    request = submit(db_session, protection, org.name)
    response = client.post(
        f"/v1/erasure-requests/{request.id}/notices",
        json={"kind": "completion"},
        headers=officer_headers,
    )
    assert response.status_code == 409
    extension = client.post(
        f"/v1/erasure-requests/{request.id}/notices",
        json={"kind": "extension"},
        headers=officer_headers,
    )
    assert extension.status_code == 422


def test_extending_over_http_makes_the_extension_notice(
    client: FlaskClient,
    officer_headers: dict[str, str],
    db_session: Session,
    org: Org,
    protection: Protection,
) -> None:
    request = submit(db_session, protection, org.name, email=None)
    extended = client.post(
        f"/v1/erasure-requests/{request.id}/extend",
        json={"reason": "three systems to search"},
        headers=officer_headers,
    )
    assert extended.status_code == 200
    (notice,) = client.get(
        f"/v1/erasure-requests/{request.id}/notices", headers=officer_headers
    ).get_json()["notices"]
    assert notice["kind"] == "extension" and notice["delivery"] == "download_only"
    text = client.get(notice["text"].removeprefix("https://erasure.test"), headers=officer_headers)
    assert "three systems to search" in text.get_data(as_text=True)
