"""The certificate of disclosure: served over the API once the export is ready, it names what was
disclosed (counts, the export's SHA-256) and never the content, and `erasure audit verify` checks
it offline; an edit to what it claims was disclosed is caught."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import rfc8785
from click.testing import CliRunner

from erasure.access import retrieve
from erasure.access.models import AccessRequest
from erasure.accounts.models import Role
from erasure.api_keys import create_api_key
from erasure.app import create_app
from erasure.audit import store
from erasure.audit.certificate import dump_certificate, verify_certificate
from erasure.audit.checkpoint import SigningKey
from erasure.audit.commands import audit_group
from erasure.salesforce.sandbox.seed import demo_phone
from tests.support.access import submit_access_for
from tests.support.pipeline import World


def test_a_certificate_of_disclosure_verifies_offline_and_holds_no_content(
    world: World, signing_key: SigningKey, tmp_path: Path
) -> None:
    with world.session() as session:
        key = create_api_key(session, name="certificate", role=Role.AUDITOR)
        session.commit()
    headers = {"Authorization": f"Bearer {key.secret}"}
    app = create_app(world.settings, session_factory=world.ctx.sessionmaker, owns_sessions=True)
    client = app.test_client()
    access_id = submit_access_for(world, demo_phone(1))
    early = client.get(f"/v1/access-requests/{access_id}/certificate", headers=headers)
    assert early.status_code == 409 and early.get_json()["code"] == "invalid_transition"
    retrieve.run(world.ctx, retrieve.AccessTunables())
    with world.session() as session:
        while store.sequence(session):
            session.commit()
        store.sign_checkpoint(session, signing_key, origin="erasure.test/audit")
        session.commit()
        access = session.get_one(AccessRequest, access_id)
    response = client.get(f"/v1/access-requests/{access_id}/certificate", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    document = json.loads(response.get_data())
    assert document["type"] == "disclosure-certificate"
    assert document["request"]["disclosure"] == {
        "end_users": 1,
        "conversations": 2,
        "entries": 6,
        "export_sha256": access.export_sha256,
    }
    assert [leaf["leaf"]["kind"] for leaf in document["leaves"]] == [
        "access.received",
        "access.resolved",
        "access.disclosed",
    ]
    text = response.get_data(as_text=True)
    assert "message 0" not in text and demo_phone(1) not in text

    public_key = tmp_path / "log.pub"
    public_key.write_text(str(signing_key.verifier()))
    good = tmp_path / "certificate.json"
    good.write_bytes(response.get_data())
    runner = CliRunner()
    ok = runner.invoke(audit_group, ["verify", str(good), "--public-key", str(public_key)])
    assert ok.exit_code == 0, ok.output
    # Claiming a different export was disclosed breaks the signature.
    forged = tmp_path / "forged.json"
    forged.write_bytes(
        response.get_data().replace((access.export_sha256 or "").encode(), b"0" * 64, 1)
    )
    bad = runner.invoke(audit_group, ["verify", str(forged), "--public-key", str(public_key)])
    assert bad.exit_code == 6, bad.output
    # Even signed by the log's own key, a summary that is not what the log recorded fails.
    document["request"]["disclosure"]["entries"] = 5
    document.pop("signature")
    signed = signing_key.sign(rfc8785.dumps(document))
    document["signature"] = {
        "algorithm": "ed25519",
        "key_name": signing_key.name,
        "key_id": signing_key.key_id.hex(),
        "value": base64.b64encode(signed).decode(),
    }
    report = verify_certificate(dump_certificate(document), signing_key.verifier())
    assert [f.code for f in report.findings] == ["disclosure_mismatch"]
