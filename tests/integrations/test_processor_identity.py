"""The OpenDSR processor identity: a configured CA-issued certificate is checked when loaded (its
key, not self-signed, in its validity period, naming the processor domain), production has no
self-signed fallback (the OpenDSR routes answer 503), and development (`erasure standalone`)
makes a self-signed one and says so at discovery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from flask.testing import FlaskClient
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.accounts.models import Role
from erasure.app import create_app
from erasure.config import Mode, Settings
from erasure.core.models import ErasureRequest, Org
from erasure.errors import ConfigurationError
from erasure.integrations import processor
from erasure.integrations.processor import ProcessorConfig
from erasure.workflow import Protection
from tests.support.certificates import TestCA
from tests.support.web import KeyMaker

BODY = {
    "subject_request_id": "1b0d4e1c-5d0c-4a53-9d55-0c8f4c1f6f11",
    "subject_request_type": "erasure",
    "subject_identities": [{"identity_type": "email", "identity_value": "p@example.com"}],
}


def _identity(session: Session, protection: Protection, config: ProcessorConfig) -> None:
    processor.identity(session, vault=protection.vault, config=config)


def test_a_ca_issued_certificate_signs_and_verifies(
    db_session: Session, protection: Protection, test_ca: TestCA, tmp_path: Path
) -> None:
    for rsa_key in (True, False):  # RSA and ECDSA, both FIPS 186-4
        issued = test_ca.issue(tmp_path / str(rsa_key), "opendsr.example", rsa_key=rsa_key)
        config = ProcessorConfig("opendsr.example", issued.certificate_file, issued.key_file)
        identity = processor.identity(db_session, vault=protection.vault, config=config)
        assert not identity.self_signed and identity.domain == "opendsr.example"
        signature = identity.sign(b"body")
        assert processor.verify(identity.certificate_pem, b"body", signature)
        assert not processor.verify(identity.certificate_pem, b"body!", signature)


def test_a_certificate_that_does_not_qualify_is_refused_naming_why(
    db_session: Session, protection: Protection, test_ca: TestCA, tmp_path: Path
) -> None:
    issued = test_ca.issue(tmp_path / "a", "opendsr.example")
    other = test_ca.issue(tmp_path / "b", "opendsr.example")
    expired = test_ca.issue(tmp_path / "c", "opendsr.example", valid_for=timedelta(minutes=-5))
    self_signed = TestCA.create("opendsr.example")
    self_signed_file = tmp_path / "self.crt"
    self_signed_file.write_bytes(self_signed.certificate.public_bytes(serialization.Encoding.PEM))
    self_signed_key = tmp_path / "self.key"
    self_signed_key.write_bytes(
        self_signed.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cases = [
        (ProcessorConfig("elsewhere.example", issued.certificate_file, issued.key_file), "names"),
        (ProcessorConfig("opendsr.example", issued.certificate_file, other.key_file), "match"),
        (ProcessorConfig("opendsr.example", expired.certificate_file, expired.key_file), "valid"),
        (ProcessorConfig("opendsr.example", self_signed_file, self_signed_key), "self-signed"),
        (ProcessorConfig("opendsr.example", tmp_path / "none.crt", issued.key_file), "read"),
        (ProcessorConfig("opendsr.example", issued.key_file, issued.key_file), "no PEM"),
    ]
    for config, reason in cases:
        with pytest.raises(ConfigurationError, match=reason):
            _identity(db_session, protection, config)


def test_certificate_and_key_files_are_set_together() -> None:
    with pytest.raises(ValidationError, match="go together"):
        Settings(
            database_url="postgresql+psycopg://x@db/x",
            encryption_keys="k:" + "A" * 43 + "=",
            pseudonym_key="A" * 43 + "=",
            opendsr_certificate_file=Path("/nowhere.crt"),
        )


def test_production_without_a_certificate_answers_503_on_the_opendsr_routes(
    settings: Settings, db_session: Session, org: Org, make_key: KeyMaker
) -> None:
    bare = settings.model_copy(
        update={"opendsr_certificate_file": None, "opendsr_private_key_file": None}
    )
    client = create_app(bare, session_factory=lambda: db_session).test_client()
    headers = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    for response in (
        client.get("/opendsr/v2/discovery"),
        client.get("/opendsr/v2/processor-certificate.pem"),
        client.post("/opendsr/v2/requests", json=BODY, headers=headers),
    ):
        assert response.status_code == 503
        error = response.get_json()["error"]
        assert error["code"] == 503 and "ERASURE_OPENDSR_CERTIFICATE_FILE" in error["message"]
    # Nothing was created that could not be answered with a signature.
    assert (
        db_session.scalar(
            select(func.count())
            .select_from(ErasureRequest)
            .where(ErasureRequest.reference_id == BODY["subject_request_id"])
        )
        == 0
    )


def test_development_makes_a_self_signed_certificate_and_says_so(
    settings: Settings, db_session: Session, org: Org, make_key: KeyMaker
) -> None:
    development = settings.model_copy(
        update={
            "mode": Mode.DEVELOPMENT,
            "opendsr_certificate_file": None,
            "opendsr_private_key_file": None,
        }
    )
    client: FlaskClient = create_app(development, session_factory=lambda: db_session).test_client()
    discovery = client.get("/opendsr/v2/discovery")
    assert discovery.status_code == 200
    assert discovery.get_json()["processor_certificate_self_signed"] is True
    pem = client.get("/opendsr/v2/processor-certificate.pem").get_data()
    certificate = x509.load_pem_x509_certificate(pem)
    assert certificate.issuer == certificate.subject
    assert processor.names_of(certificate) == {"erasure.test"}
    assert certificate.not_valid_after_utc > datetime.now(UTC)
    headers = {"Authorization": f"Bearer {make_key(Role.INTEGRATION)}"}
    created = client.post("/opendsr/v2/requests", json=BODY, headers=headers)
    assert created.status_code == 201
    assert processor.verify(
        pem.decode(), created.get_data(), created.headers["X-OpenDSR-Signature"]
    )


def test_production_with_a_certificate_says_it_is_not_self_signed(client: FlaskClient) -> None:
    assert client.get("/opendsr/v2/discovery").get_json()["processor_certificate_self_signed"] is (
        False
    )
