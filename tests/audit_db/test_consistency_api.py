"""`GET /v1/audit/consistency?first=M&second=N`: an RFC 9162 consistency proof between two tree
sizes the log has signed, served from stored nodes, and checked offline by `erasure audit verify`.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from erasure.audit import leaves, store
from erasure.audit.checkpoint import SigningKey, open_checkpoint
from erasure.audit.commands import audit_group
from erasure.audit.merkle.verification import verify_consistency
from erasure.audit.models import AuditCheckpoint


def _grow_and_sign(session: Session, key: SigningKey, n: int) -> AuditCheckpoint:
    request_id = uuid.uuid4()
    for i in range(n):
        leaves.append(session, kind="test.event", request_id=request_id, data={"n": i})
    while store.sequence(session):
        pass
    checkpoint = store.sign_checkpoint(session, key)
    assert checkpoint is not None
    return checkpoint


@pytest.fixture
def two_checkpoints(
    db_session: Session, signing_key: SigningKey
) -> tuple[AuditCheckpoint, AuditCheckpoint]:
    first = _grow_and_sign(db_session, signing_key, 5)
    second = _grow_and_sign(db_session, signing_key, 11)
    return first, second


def test_the_proof_links_two_signed_checkpoints(
    client: FlaskClient,
    officer_headers: dict[str, str],
    signing_key: SigningKey,
    two_checkpoints: tuple[AuditCheckpoint, AuditCheckpoint],
    tmp_path: Path,
) -> None:
    old, new = two_checkpoints
    response = client.get(
        f"/v1/audit/consistency?first={old.size}&second={new.size}", headers=officer_headers
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["first"] == old.size and body["second"] == new.size
    proof = [base64.b64decode(h) for h in body["consistency"]]
    assert proof  # 5 is not a power of two, and the log has grown since
    old_head = open_checkpoint(old.note, signing_key.verifier())
    new_head = open_checkpoint(new.note, signing_key.verifier())
    verify_consistency(old.size, new.size, proof, old_head.root_hash, new_head.root_hash)
    # What an auditor does with it: two checkpoint files and the proof, offline.
    (tmp_path / "old.note").write_text(old.note)
    (tmp_path / "new.note").write_text(new.note)
    (tmp_path / "proof.json").write_bytes(response.get_data())
    result = CliRunner().invoke(
        audit_group,
        [
            "verify",
            str(tmp_path / "new.note"),
            "--since",
            str(tmp_path / "old.note"),
            "--proof",
            str(tmp_path / "proof.json"),
            "--public-key",
            str(signing_key.verifier()),
        ],
    )
    assert result.exit_code == 0, result.output
    same = client.get(
        f"/v1/audit/consistency?first={new.size}&second={new.size}", headers=officer_headers
    )
    assert same.status_code == 200 and same.get_json()["consistency"] == []


def test_it_needs_a_key(
    client: FlaskClient, two_checkpoints: tuple[AuditCheckpoint, AuditCheckpoint]
) -> None:
    assert client.get("/v1/audit/consistency?first=1&second=2").status_code == 401


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("", ["first", "second"]),
        ("first=1", ["second"]),
        ("second=2", ["first"]),
        ("first=abc&second=2", ["first"]),
        ("first=1&second=2.5", ["second"]),
        ("first=0&second=2", ["first"]),
        ("first=-1&second=2", ["first"]),
        ("first=3&second=2", ["first"]),
        ("first=1&second=99999999999999999999999999", ["second"]),
        ("first=1&second=2&third=3", ["(query)"]),  # unknown keys are never named
        ("first=1&second=2&x@example.com=1&x@example.com=2", ["(query)"]),
        ("first=1&first=2&second=3", ["first"]),
    ],
)
def test_bad_sizes_are_422_naming_the_field(
    client: FlaskClient,
    officer_headers: dict[str, str],
    two_checkpoints: tuple[AuditCheckpoint, AuditCheckpoint],
    query: str,
    fields: list[str],
) -> None:
    response = client.get(f"/v1/audit/consistency?{query}", headers=officer_headers)
    assert response.status_code == 422, response.get_data(as_text=True)
    body = response.get_json()
    assert response.mimetype == "application/problem+json"
    assert sorted(e["field"] for e in body["errors"]) == fields
    assert "99999999999999999999999999" not in json.dumps(body)  # nothing sent is echoed


def test_a_size_beyond_the_latest_checkpoint_is_422(
    client: FlaskClient,
    officer_headers: dict[str, str],
    two_checkpoints: tuple[AuditCheckpoint, AuditCheckpoint],
) -> None:
    _, new = two_checkpoints
    response = client.get(
        f"/v1/audit/consistency?first=1&second={new.size + 1}", headers=officer_headers
    )
    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "second"
    assert str(new.size) in response.get_json()["errors"][0]["detail"]  # says how far it goes


def test_the_endpoint_is_in_the_openapi_document(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    operation = document["paths"]["/v1/audit/consistency"]["get"]
    names = {p["name"] for p in operation["parameters"]}
    assert {"first", "second"} <= names
    assert {"200", "401", "404", "422"} <= set(operation["responses"])
