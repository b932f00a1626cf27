"""Auditor results in words: which request a certificate is about, which records were deleted and
read back as absent, that its events are in the log and that the log now still extends the
checkpoint it was proven against; a tampered one proves nothing. The printable certificate page."""

from __future__ import annotations

import html as html_text
import io
import re

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.audit import leaves
from erasure.audit.checkpoint import SigningKey
from erasure.core.models import Org
from tests.support.audited_requests import checkpoint_now, complete
from tests.support.console import SignedIn

PHONE = "+14155552688"


def _upload(client: FlaskClient, token: str, data: bytes) -> str:
    return client.post(
        "/ui/audit/verify-certificate",
        data={"csrf_token": token, "certificate": (io.BytesIO(data), "c.json")},
        content_type="multipart/form-data",
    ).get_data(as_text=True)


def _proven(html: str) -> list[str]:
    block = html[html.index('<ul id="proven">') : html.index("</ul>", html.index('id="proven"'))]
    return [
        html_text.unescape(re.sub(r"\s+", " ", item))
        for item in re.findall(r"<li[^>]*>([^<]+)</li>", block)
    ]


def _completed_request(
    signed_in: SignedIn, org: Org, db_session: Session, signing_key: SigningKey
) -> str:
    officer, token = signed_in(Role.OFFICER)
    created = officer.post(
        "/ui/requests/new", data={"csrf_token": token, "phone": PHONE, "regulation": "gdpr"}
    )
    request_id = created.headers["Location"].rsplit("/", 1)[-1]
    complete(db_session, request_id, org)
    checkpoint_now(db_session, signing_key)
    return request_id


def test_certificate_verification_says_what_it_proves(
    signed_in: SignedIn, org: Org, db_session: Session, signing_key: SigningKey
) -> None:
    request_id = _completed_request(signed_in, org, db_session, signing_key)
    auditor, token = signed_in(Role.AUDITOR)
    certificate = auditor.get(f"/ui/requests/{request_id}/certificate").get_data()
    # The log grows after the certificate was issued: it must still extend its checkpoint.
    leaves.append(db_session, kind="test.marker", request_id=None, data={})
    checkpoint_now(db_session, signing_key)

    said = _proven(_upload(auditor, token, certificate))

    assert said[0] == "The certificate is signed by this log's key."
    assert f"erasure request {request_id} (GDPR, org {org.name})" in said[1]
    assert "1 of its 1 Salesforce record(s) were deleted and confirmed absent" in said[2]
    assert "0Xa000000000001" in said[2]  # the Salesforce log id of the deletion
    assert re.match(r"All 3 of the request's audit events are proven to be in the log", said[3])
    assert "extends the certificate's checkpoint" in said[4]
    assert "exit code" not in " ".join(said)

    tampered = certificate.replace(b'"deleted"', b'"failed"', 1)
    html = _upload(auditor, token, tampered)
    assert _proven(html) == [
        "Nothing in this document is proven: it is not a certificate signed by this log's key, "
        "or it was altered after signing."
    ]
    assert request_id not in html.split('id="proven"')[1].split("</ul>")[0]


def test_log_verification_says_what_it_proves(
    signed_in: SignedIn, org: Org, db_session: Session, signing_key: SigningKey
) -> None:
    _completed_request(signed_in, org, db_session, signing_key)
    auditor, token = signed_in(Role.AUDITOR)
    html = auditor.post("/ui/audit/verify", data={"csrf_token": token}).get_data(as_text=True)
    said = _proven(html)
    assert re.match(
        r"All \d+ audit events were read back and hash to the tree of size \d+", said[0]
    )
    assert "no event was altered, removed or inserted after signing" in said[1]


def test_printable_certificate_states_the_facts(
    signed_in: SignedIn, org: Org, db_session: Session, signing_key: SigningKey
) -> None:
    request_id = _completed_request(signed_in, org, db_session, signing_key)
    auditor, _ = signed_in(Role.AUDITOR)
    detail = auditor.get(f"/ui/requests/{request_id}").get_data(as_text=True)
    assert f'href="/ui/requests/{request_id}/certificate/print"' in detail
    page = auditor.get(f"/ui/requests/{request_id}/certificate/print")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    said = _proven(html)
    assert f"erasure request {request_id}" in said[1]
    assert "confirmed absent" in said[2]
    assert "0Xa000000000001" in html and '<pre id="certificate-checkpoint">' in html
    assert PHONE not in html and PHONE.lstrip("+") not in html
    assert f'href="/ui/requests/{request_id}/certificate" download' in html
    stylesheet = auditor.get("/ui/static/console.css")
    css = stylesheet.get_data(as_text=True)
    stylesheet.close()  # a static file is streamed from an open file
    assert "@media print" in css and ".top, .skip, .no-print" in css


def test_printable_certificate_of_an_open_request_is_refused(signed_in: SignedIn, org: Org) -> None:
    officer, token = signed_in(Role.OFFICER)
    created = officer.post(
        "/ui/requests/new", data={"csrf_token": token, "phone": PHONE, "regulation": "gdpr"}
    )
    request_id = created.headers["Location"].rsplit("/", 1)[-1]
    response = officer.get(f"/ui/requests/{request_id}/certificate/print")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/ui/requests/{request_id}")
