"""The admin's live token check per execution user, against the HTTPS sandbox org."""

from __future__ import annotations

import html
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.identifiers import Vault
from erasure.orgs import add_credential, add_org
from erasure.salesforce.sandbox import SandboxHandle, SandboxOrg, run_in_thread
from tests.support.console import SignedIn


@pytest.fixture
def sandbox() -> Iterator[SandboxHandle]:
    org = SandboxOrg()
    org.add_app("good-client", "good-secret")
    org.add_app("no-run-as", "other-secret", run_as_user_id=None)
    with run_in_thread(org) as handle:
        yield handle


def test_admin_checks_each_execution_users_token_live(
    signed_in: SignedIn, db_session: Session, sandbox: SandboxHandle, settings: object
) -> None:
    vault = Vault(settings.encryption_key_bytes)  # type: ignore[attr-defined]
    org = add_org(db_session, name="token-check", my_domain_url=sandbox.url)
    org.ca_bundle_path = sandbox.ca_path
    good = add_credential(
        db_session, vault, org, name="eu-1", client_id="good-client", client_secret="good-secret"
    )
    wrong = add_credential(
        db_session, vault, org, name="eu-2", client_id="good-client", client_secret="not-it"
    )
    no_user = add_credential(
        db_session, vault, org, name="eu-3", client_id="no-run-as", client_secret="other-secret"
    )
    client, csrf = signed_in(Role.ADMIN)

    def check(credential_id: object) -> str:
        response = client.post(
            f"/ui/settings/credentials/{credential_id}/check",
            data={"csrf_token": csrf},
            follow_redirects=True,
        )
        assert response.status_code == 200
        return html.unescape(response.get_data(as_text=True))

    page = check(good.id)
    assert "token-check / eu-1: token OK" in page
    assert "good-secret" not in page
    refused = check(wrong.id)
    assert "token-check / eu-2: token refused (invalid_client)" in refused
    assert "token-check / eu-3: token refused (" in check(no_user.id)
    # The button is on the settings page, CSRF-protected, and only for admins.
    assert "Check token" in client.get("/ui/settings").get_data(as_text=True)
    assert client.post(f"/ui/settings/credentials/{good.id}/check").status_code == 400
    officer, officer_csrf = signed_in(Role.OFFICER)
    assert (
        officer.post(
            f"/ui/settings/credentials/{good.id}/check", data={"csrf_token": officer_csrf}
        ).status_code
        == 403
    )
