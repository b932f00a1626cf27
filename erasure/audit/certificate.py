"""Certificates of erasure: a signed JSON document proving a request's events are in the log.

Envelope (format ``erasure-certificate``, version 1)::

    {
      "type": "erasure-certificate",
      "version": 1,
      "issued_at": "2025-06-01T09:30:00.000000Z",
      "request": {...},             # request summary, pseudonymous subject (caller-defined)
      "targets": [{...}, ...],      # per target: Salesforce log id, final status, read-back
      "checkpoint": "<signed note>",  # the C2SP checkpoint the proofs lead to
      "leaves": [
        {"index": 17, "leaf": {...}, "inclusion_proof": ["<base64 32 bytes>", ...]}, ...
      ],
      "signature": {"algorithm": "ed25519", "key_name": "...", "key_id": "<8 hex>",
                    "value": "<base64 64 bytes>"}
    }

The signature is Ed25519, by the log's key, over the RFC 8785 canonical bytes of the whole
document without its ``signature`` member. Each ``leaf`` is the leaf's JSON value; its exact
logged bytes are its RFC 8785 serialisation (leaves are canonical by construction, and
`build_certificate` refuses any that is not), which is what the inclusion proof hashes.

No domain-separation prefix is needed between certificate and checkpoint signatures made by the
same key: a signed note text always ends with a newline and a canonical JSON object never does,
so neither signature can be replayed as the other.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import rfc8785

from erasure.audit.canonical import is_canonical
from erasure.audit.checkpoint import Checkpoint, SigningKey, VerifierKey, open_checkpoint
from erasure.audit.errors import CertificateError, NoteError, ProofError
from erasure.audit.merkle.hashing import leaf_hash
from erasure.audit.merkle.verification import verify_inclusion
from erasure.audit.report import ExitCode, Finding, Report

CERTIFICATE_TYPE = "erasure-certificate"
CERTIFICATE_VERSION = 1
SIGNATURE_ALGORITHM = "ed25519"


@dataclass(frozen=True)
class ProvenLeaf:
    """A logged leaf, its position, and its inclusion proof at the checkpoint's size."""

    index: int
    leaf: bytes
    proof: Sequence[bytes]


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _unsigned_bytes(document: Mapping[str, object]) -> bytes:
    unsigned = {name: value for name, value in document.items() if name != "signature"}
    return rfc8785.dumps(unsigned)  # type: ignore[arg-type]  # JSON values, checked by caller


def build_certificate(
    *,
    request: Mapping[str, object],
    targets: Sequence[Mapping[str, object]],
    leaves: Sequence[ProvenLeaf],
    checkpoint_note: str,
    signing_key: SigningKey,
    issued_at: datetime,
) -> dict[str, object]:
    """The signed certificate document. Pure: no clock, no database.

    Checks what it can without a verifier key: every leaf is canonical JSON and its proof
    leads to the checkpoint's root, so a certificate that would fail verification is never
    issued.
    """
    try:
        checkpoint = open_checkpoint(checkpoint_note, signing_key.verifier())
    except NoteError as exc:
        raise CertificateError(f"the checkpoint is not signed by the signing key: {exc}") from exc
    entries: list[dict[str, object]] = []
    for proven in leaves:
        if not is_canonical(proven.leaf):
            raise CertificateError(f"leaf {proven.index} is not RFC 8785 canonical JSON")
        try:
            verify_inclusion(
                proven.index,
                checkpoint.size,
                leaf_hash(proven.leaf),
                proven.proof,
                checkpoint.root_hash,
            )
        except ProofError as exc:
            raise CertificateError(f"leaf {proven.index}: {exc}") from exc
        entries.append(
            {
                "index": proven.index,
                "leaf": json.loads(proven.leaf),
                "inclusion_proof": [base64.b64encode(h).decode("ascii") for h in proven.proof],
            }
        )
    document: dict[str, object] = {
        "type": CERTIFICATE_TYPE,
        "version": CERTIFICATE_VERSION,
        "issued_at": _timestamp(issued_at),
        "request": dict(request),
        "targets": [dict(target) for target in targets],
        "checkpoint": checkpoint_note,
        "leaves": entries,
    }
    try:
        signed = _unsigned_bytes(document)
    except (rfc8785.CanonicalizationError, TypeError) as exc:
        raise CertificateError(f"the request or targets are not JSON-serialisable: {exc}") from exc
    document["signature"] = {
        "algorithm": SIGNATURE_ALGORITHM,
        "key_name": signing_key.name,
        "key_id": signing_key.key_id.hex(),
        "value": base64.b64encode(signing_key.sign(signed)).decode("ascii"),
    }
    return document


def dump_certificate(document: Mapping[str, object]) -> bytes:
    """The certificate file: indented UTF-8 JSON (the signature does not depend on layout)."""
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    document = dict(pairs)
    if len(document) != len(pairs):
        # Duplicate members would let two readers see two different certificates.
        raise CertificateError("duplicate member in certificate JSON")
    return document


def load_certificate(data: bytes) -> dict[str, object]:
    """Parse a certificate file; rejects invalid UTF-8/JSON and duplicate members."""
    try:
        document = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CertificateError(f"not a JSON certificate: {exc}") from exc
    if not isinstance(document, dict) or document.get("type") != CERTIFICATE_TYPE:
        raise CertificateError(f"not an {CERTIFICATE_TYPE} document")
    return document


def looks_like_certificate(data: bytes) -> bool:
    """A cheap sniff for the CLI: does this file claim to be a certificate? The whole file is
    searched: certificate files sort their keys, so `type` comes last, after every leaf."""
    return data.lstrip().startswith(b"{") and b'"' + CERTIFICATE_TYPE.encode() + b'"' in data


def verify_certificate(data: bytes | Mapping[str, object], key: VerifierKey) -> Report:
    """Verify a certificate offline: its signature, its checkpoint, every inclusion proof."""
    report = Report(kind="certificate")
    try:
        document = load_certificate(data) if isinstance(data, bytes) else dict(data)
        _check_shape(document)
    except CertificateError as exc:
        report.add(Finding("malformed_certificate", str(exc), ExitCode.MALFORMED))
        return report
    report.details["request"] = document["request"]
    _check_signature(report, document, key)
    try:
        checkpoint = open_checkpoint(str(document["checkpoint"]), key)
    except NoteError as exc:
        report.add(
            Finding("bad_checkpoint", f"certificate checkpoint: {exc}", ExitCode.BAD_CHECKPOINT)
        )
        return report
    report.tree_size, report.root_hash = checkpoint.size, checkpoint.root_hash
    report.checkpoint_sizes = [checkpoint.size]
    _check_leaves(report, document, checkpoint)
    return report


def _check_shape(document: Mapping[str, object]) -> None:
    if document.get("version") != CERTIFICATE_VERSION:
        raise CertificateError(f"unsupported certificate version {document.get('version')!r}")
    expected = {
        "issued_at": str,
        "request": dict,
        "targets": list,
        "checkpoint": str,
        "leaves": list,
        "signature": dict,
    }
    for name, kind in expected.items():
        if not isinstance(document.get(name), kind):
            raise CertificateError(f"certificate member {name!r} missing or not a {kind.__name__}")


def _check_signature(report: Report, document: Mapping[str, object], key: VerifierKey) -> None:
    signature = document["signature"]
    assert isinstance(signature, dict)  # noqa: S101  # _check_shape guarantees it
    if signature.get("algorithm") != SIGNATURE_ALGORITHM:
        report.add(
            Finding(
                "bad_signature", "certificate signature is not Ed25519", ExitCode.BAD_CERTIFICATE
            )
        )
        return
    if signature.get("key_name") != key.name or signature.get("key_id") != key.key_id.hex():
        report.add(
            Finding(
                "unknown_key",
                f"certificate is signed by {signature.get('key_name')}+{signature.get('key_id')}, "
                f"not by the trusted key {key.name}+{key.key_id.hex()}",
                ExitCode.BAD_CERTIFICATE,
            )
        )
        return
    try:
        value = base64.b64decode(str(signature.get("value", "")), validate=True)
        signed = _unsigned_bytes(document)
    except (binascii.Error, ValueError, TypeError) as exc:
        report.add(
            Finding("bad_signature", f"certificate signature: {exc}", ExitCode.BAD_CERTIFICATE)
        )
        return
    if not key.verify(signed, value):
        report.add(
            Finding(
                "bad_signature",
                "certificate signature does not verify: the document was altered after signing",
                ExitCode.BAD_CERTIFICATE,
            )
        )


def _check_leaves(report: Report, document: Mapping[str, object], checkpoint: Checkpoint) -> None:
    entries = document["leaves"]
    assert isinstance(entries, list)  # noqa: S101  # _check_shape guarantees it
    if not entries:
        report.add(Finding("no_leaves", "certificate proves no leaves", ExitCode.BAD_CERTIFICATE))
    proven: list[int] = []
    for position, entry in enumerate(entries):
        try:
            index, leaf, proof = _parse_entry(entry)
            verify_inclusion(index, checkpoint.size, leaf_hash(leaf), proof, checkpoint.root_hash)
        except (CertificateError, ProofError) as exc:
            where = entry.get("index") if isinstance(entry, dict) else None
            report.add(
                Finding(
                    "bad_inclusion_proof",
                    f"certificate leaf #{position}: {exc}",
                    ExitCode.BAD_CERTIFICATE,
                    where if isinstance(where, int) else None,
                )
            )
            continue
        proven.append(index)
    report.leaf_count = len(entries)
    report.details["proven_leaves"] = proven


def _parse_entry(entry: object) -> tuple[int, bytes, list[bytes]]:
    if not isinstance(entry, dict):
        raise CertificateError("leaf entry is not an object")
    index, leaf, proof = entry.get("index"), entry.get("leaf"), entry.get("inclusion_proof")
    if not isinstance(index, int) or isinstance(index, bool) or not isinstance(proof, list):
        raise CertificateError("leaf entry needs an integer index and a list inclusion_proof")
    try:
        leaf_bytes = rfc8785.dumps(leaf)
        hashes = [base64.b64decode(str(h), validate=True) for h in proof]
    except (rfc8785.CanonicalizationError, binascii.Error, ValueError, TypeError) as exc:
        raise CertificateError(f"leaf {index}: {exc}") from exc
    return index, leaf_bytes, hashes
