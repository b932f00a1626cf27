"""Certificates of erasure: building, signing and offline verification."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime

import pytest
import rfc8785

from erasure.audit.certificate import (
    ProvenLeaf,
    build_certificate,
    dump_certificate,
    load_certificate,
    verify_certificate,
)
from erasure.audit.checkpoint import SigningKey
from erasure.audit.errors import CertificateError
from erasure.audit.report import ExitCode

from .support import SignedLog

ISSUED = datetime(2025, 6, 1, 9, 30, tzinfo=UTC)
REQUEST = {
    "id": "00000000-0000-0000-0000-000000000002",
    "subject": "ab" * 32,
    "jurisdiction": "GDPR",
    "completed_at": "2025-06-01T09:29:00.000000Z",
}
TARGETS = [{"sf_log_id": "0Lg000000000012", "final_status": "Succeeded", "read_back": "absent"}]


def certificate(log: SignedLog, indices: list[int], size: int = 10_000) -> dict[str, object]:
    note = log.notes[log.sizes.index(size)]
    leaves = [ProvenLeaf(i, log.leaves[i], log.tree.inclusion_proof(i, size)) for i in indices]
    return build_certificate(
        request=REQUEST,
        targets=TARGETS,
        leaves=leaves,
        checkpoint_note=note,
        signing_key=log.key,
        issued_at=ISSUED,
    )


def test_certificate_verifies(log_10k: SignedLog) -> None:
    document = certificate(log_10k, [6, 7, 8, 9, 10, 11])
    data = dump_certificate(document)
    report = verify_certificate(data, log_10k.key.verifier())
    assert report.ok, report.findings
    assert report.details["proven_leaves"] == [6, 7, 8, 9, 10, 11]
    assert report.tree_size == 10_000
    assert load_certificate(data) == document
    assert document["issued_at"] == "2025-06-01T09:30:00.000000Z"


def test_certificate_against_an_older_checkpoint(log_10k: SignedLog) -> None:
    document = certificate(log_10k, [0, 499], size=500)
    assert verify_certificate(document, log_10k.key.verifier()).ok


def test_signature_covers_the_canonical_document(log_10k: SignedLog) -> None:
    document = certificate(log_10k, [12])
    signature = document["signature"]
    assert isinstance(signature, dict)
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    message = rfc8785.dumps(unsigned)  # type: ignore[arg-type]
    assert log_10k.key.verifier().verify(message, base64.b64decode(signature["value"]))
    assert signature["key_id"] == log_10k.key.key_id.hex()


def _mutations(document: dict[str, object]) -> list[tuple[str, dict[str, object], ExitCode]]:
    out = []

    def mutate(name: str, code: ExitCode, change: object) -> None:
        doc = copy.deepcopy(document)
        change(doc)  # type: ignore[operator]
        out.append((name, doc, code))

    def set_request(doc: dict[str, object]) -> None:
        doc["request"]["subject"] = "cd" * 32  # type: ignore[index]

    def set_target(doc: dict[str, object]) -> None:
        doc["targets"][0]["final_status"] = "Failed"  # type: ignore[index]

    def drop_leaf(doc: dict[str, object]) -> None:
        doc["leaves"].pop()  # type: ignore[attr-defined]

    def swap_index(doc: dict[str, object]) -> None:
        doc["leaves"][0]["index"] = 13  # type: ignore[index]

    def flip_sig(doc: dict[str, object]) -> None:
        raw = bytearray(base64.b64decode(doc["signature"]["value"]))  # type: ignore[index]
        raw[0] ^= 1
        doc["signature"]["value"] = base64.b64encode(raw).decode()  # type: ignore[index]

    def other_key(doc: dict[str, object]) -> None:
        doc["signature"]["key_id"] = "00000000"  # type: ignore[index]

    def bad_checkpoint(doc: dict[str, object]) -> None:
        doc["checkpoint"] = str(doc["checkpoint"]).replace("\n10000\n", "\n10001\n")

    def no_signature(doc: dict[str, object]) -> None:
        del doc["signature"]

    mutate("request edited", ExitCode.BAD_CERTIFICATE, set_request)
    mutate("target edited", ExitCode.BAD_CERTIFICATE, set_target)
    mutate("leaf dropped", ExitCode.BAD_CERTIFICATE, drop_leaf)
    mutate("index changed", ExitCode.BAD_CERTIFICATE, swap_index)
    mutate("signature flipped", ExitCode.BAD_CERTIFICATE, flip_sig)
    mutate("other key", ExitCode.BAD_CERTIFICATE, other_key)
    mutate("checkpoint forged", ExitCode.BAD_CHECKPOINT, bad_checkpoint)
    mutate("signature removed", ExitCode.MALFORMED, no_signature)
    return out


def test_every_alteration_is_rejected(log_10k: SignedLog) -> None:
    document = certificate(log_10k, [12, 13, 14])
    for name, altered, code in _mutations(document):
        report = verify_certificate(altered, log_10k.key.verifier())
        assert report.exit_code is code, (name, report.findings)


def test_forged_leaf_is_named_even_when_re_signed(log_10k: SignedLog) -> None:
    # Whoever holds the key can re-sign the document, but not forge an inclusion proof.
    document = certificate(log_10k, [12, 13])
    leaves = document["leaves"]
    assert isinstance(leaves, list)
    leaves[1]["leaf"]["data"]["targets"][0]["status"] = "Failed"
    key = log_10k.key
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    signature = key.sign(rfc8785.dumps(unsigned))  # type: ignore[arg-type]
    document["signature"]["value"] = base64.b64encode(signature).decode()  # type: ignore[index]
    report = verify_certificate(document, key.verifier())
    assert [f.code for f in report.errors] == ["bad_inclusion_proof"]
    assert report.first_bad_leaf == 13


def test_wrong_verifier_key(log_10k: SignedLog) -> None:
    stranger = SigningKey.generate(log_10k.key.name).verifier()
    report = verify_certificate(certificate(log_10k, [1]), stranger)
    assert report.exit_code is ExitCode.BAD_CHECKPOINT
    assert {f.code for f in report.errors} == {"unknown_key", "bad_checkpoint"}


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"type":"other"}',
        b'{"type":"erasure-certificate","version":2}',
        b"\xff",
    ],
)
def test_malformed_certificates(data: bytes, log_10k: SignedLog) -> None:
    assert verify_certificate(data, log_10k.key.verifier()).exit_code is ExitCode.MALFORMED


def test_duplicate_members_are_rejected(log_10k: SignedLog) -> None:
    data = dump_certificate(certificate(log_10k, [1]))
    duplicated = data.replace(
        b'"type": "erasure-certificate"',
        b'"type": "erasure-certificate", "type": "erasure-certificate"',
    )
    assert verify_certificate(duplicated, log_10k.key.verifier()).exit_code is ExitCode.MALFORMED


def test_builder_refuses_what_would_not_verify(log_10k: SignedLog) -> None:
    note = log_10k.notes[-1]
    proof = log_10k.tree.inclusion_proof(5)
    with pytest.raises(CertificateError, match="canonical"):
        build_certificate(
            request=REQUEST,
            targets=TARGETS,
            leaves=[ProvenLeaf(5, b'{"b":1,"a":2}', proof)],
            checkpoint_note=note,
            signing_key=log_10k.key,
            issued_at=ISSUED,
        )
    with pytest.raises(CertificateError, match="leaf 6"):
        build_certificate(
            request=REQUEST,
            targets=TARGETS,
            leaves=[ProvenLeaf(6, log_10k.leaves[5], proof)],
            checkpoint_note=note,
            signing_key=log_10k.key,
            issued_at=ISSUED,
        )
    with pytest.raises(CertificateError, match="not signed"):
        build_certificate(
            request=REQUEST,
            targets=TARGETS,
            leaves=[],
            checkpoint_note=note,
            signing_key=SigningKey.generate("x"),
            issued_at=ISSUED,
        )
    with pytest.raises(CertificateError, match="JSON"):
        build_certificate(
            request={"at": datetime.now(UTC)},
            targets=TARGETS,
            leaves=[],
            checkpoint_note=note,
            signing_key=log_10k.key,
            issued_at=ISSUED,
        )


def test_certificate_file_is_plain_json(log_10k: SignedLog) -> None:
    data = dump_certificate(certificate(log_10k, [1]))
    assert json.loads(data)["type"] == "erasure-certificate"
