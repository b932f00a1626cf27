"""Access requests in the console: the new-request form opens one, and its page follows it from
received to ready, with the expiring download links for officers and admins only and the
certificate of disclosure for every reader; no page carries a subject identifier."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.access import disclose
from erasure.access.models import AccessRequest, AccessStatus
from erasure.accounts.models import Role
from erasure.audit.certificate import verify_certificate
from erasure.audit.checkpoint import SigningKey
from erasure.core.models import ErasureRequest, Org, Source
from erasure.workflow import Protection
from tests.support.audited_requests import checkpoint_now
from tests.support.console import CONSOLE_ROLES, SignedIn

EMAIL = "console.access.canary@example.com"
LINK = re.compile(r'href="(/v1/access-exports/[^"?]+)\?format=(json|html)"')


def test_the_form_opens_an_access_request_and_its_page_follows_it(
    signed_in: SignedIn,
    org: Org,
    db_session: Session,
    protection: Protection,
    signing_key: SigningKey,
) -> None:
    officer, token = signed_in(Role.OFFICER)
    created = officer.post(
        "/ui/requests/new",
        data={
            "csrf_token": token,
            "request_type": "access",
            "email": EMAIL,
            "regulation": "gdpr",
            "reference_system": "jira",
            "reference_id": "PRIV-ACCESS-1",
        },
    )
    assert created.status_code == 302, created.get_data(as_text=True)
    location = created.headers["Location"]
    assert "/ui/access-requests/" in location
    access = db_session.get(AccessRequest, uuid.UUID(location.rsplit("/", 1)[-1]))
    assert access is not None and access.source is Source.UI
    assert access.status is AccessStatus.RECEIVED and access.reference_id == "PRIV-ACCESS-1"
    erasures = select(func.count()).select_from(ErasureRequest)
    assert db_session.scalar(erasures.where(ErasureRequest.reference_id == "PRIV-ACCESS-1")) == 0

    page = officer.get(location)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-status="received"' in html
    assert EMAIL not in html and not LINK.search(html) and 'id="certificate"' not in html

    # Retrieval ends: the domain's own step seals the export and audits the disclosure.
    access.end_users = 1
    disclose.finish(
        db_session, protection.vault, access, now=datetime.now(UTC), retention=timedelta(days=30)
    )
    db_session.commit()
    checkpoint_now(db_session, signing_key)
    db_session.commit()

    for role in CONSOLE_ROLES:
        client, _ = signed_in(role)
        html = client.get(location).get_data(as_text=True)
        assert 'data-status="ready"' in html and EMAIL not in html, role
        assert 'id="certificate"' in html, role
        assert bool(LINK.search(html)) == (role in {Role.OFFICER, Role.ADMIN}), role

    html = officer.get(location).get_data(as_text=True)
    links = {kind: path for path, kind in LINK.findall(html)}
    assert set(links) == {"json", "html"}
    download = officer.application.test_client().get(f"{links['json']}?format=json")
    assert download.status_code == 200  # the link itself is the credential: no session needed
    assert hashlib.sha256(download.get_data()).hexdigest() == access.export_sha256
    certificate = officer.get(f"/ui/access-requests/{access.id}/certificate")
    assert certificate.status_code == 200
    assert json.loads(certificate.get_data())["type"] == "disclosure-certificate"
    assert verify_certificate(certificate.get_data(), signing_key.verifier()).ok


def test_the_form_validates_an_access_request_like_an_erasure(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    officer, token = signed_in(Role.OFFICER)
    before = db_session.scalar(select(func.count()).select_from(AccessRequest))
    bad = officer.post(
        "/ui/requests/new",
        data={"csrf_token": token, "request_type": "access", "phone": "12-no", "email": EMAIL},
    )
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "subject.phone" in html and EMAIL not in html and "12-no" not in html
    assert 'value="access" selected' in html  # the choice survives, the identifiers do not
    assert db_session.scalar(select(func.count()).select_from(AccessRequest)) == before


def test_an_access_page_is_for_console_readers_only(
    signed_in: SignedIn, org: Org, db_session: Session
) -> None:
    officer, token = signed_in(Role.OFFICER)
    created = officer.post(
        "/ui/requests/new",
        data={"csrf_token": token, "request_type": "access", "email": EMAIL, "regulation": "gdpr"},
    )
    location = created.headers["Location"]
    assert officer.get(f"/ui/access-requests/{uuid.uuid4()}").status_code == 404
    anonymous = officer.application.test_client()
    assert anonymous.get(location).status_code == 302  # to sign-in
