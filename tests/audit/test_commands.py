"""The click commands: keys generate/public and audit verify, with their exit codes."""

from __future__ import annotations

import json
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from erasure.audit.bundle import LEAVES_FILE, write_bundle
from erasure.audit.certificate import ProvenLeaf, build_certificate, dump_certificate
from erasure.audit.checkpoint import SigningKey, VerifierKey
from erasure.audit.commands import audit_group, signing_keys_group

from .support import SignedLog


def test_keys_generate_and_public(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        signing_keys_group,
        ["generate", "--name", "erasure.example/audit", "--out", str(tmp_path / "k")],
    )
    assert result.exit_code == 0, result.output
    private = tmp_path / "k" / "private-key.txt"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = SigningKey.parse(private.read_text())
    public = VerifierKey.parse((tmp_path / "k" / "public-key.txt").read_text())
    assert public == key.verifier()
    assert str(public) in result.stdout
    result = runner.invoke(signing_keys_group, ["public", str(private)])
    assert result.exit_code == 0
    assert result.stdout.strip() == str(public)
    # Never overwrite an existing key.
    again = runner.invoke(
        signing_keys_group,
        ["generate", "--name", "erasure.example/audit", "--out", str(tmp_path / "k")],
    )
    assert again.exit_code == 1
    assert SigningKey.parse(private.read_text()).public_key == key.public_key


def test_keys_generate_rejects_bad_names(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        signing_keys_group, ["generate", "--name", "a b", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2


def test_verify_clean_bundle(bundle_10k: Path, log_10k: SignedLog, tmp_path: Path) -> None:
    key_file = tmp_path / "public-key.txt"
    key_file.write_text(f"{log_10k.key.verifier()}\n")
    since = tmp_path / "old.note"
    since.write_text(log_10k.notes[4])
    runner = CliRunner()
    result = runner.invoke(
        audit_group,
        ["verify", str(bundle_10k), "--public-key", str(key_file), "--since", str(since)],
    )
    assert result.exit_code == 0, result.output
    assert "VERIFIED" in result.output
    inline = runner.invoke(
        audit_group,
        ["verify", str(bundle_10k), "--public-key", str(log_10k.key.verifier()), "--json"],
    )
    assert inline.exit_code == 0
    assert json.loads(inline.stdout)["ok"] is True


def test_verify_names_the_first_bad_leaf(
    bundle_10k: Path, log_10k: SignedLog, tmp_path: Path
) -> None:
    path = tmp_path / "b"
    shutil.copytree(bundle_10k, path)
    leaves = list(log_10k.leaves)
    del leaves[777]
    (path / LEAVES_FILE).write_bytes(b"".join(leaf + b"\n" for leaf in leaves))
    runner = CliRunner()
    key = str(log_10k.key.verifier())
    result = runner.invoke(audit_group, ["verify", str(path), "--public-key", key])
    assert result.exit_code == 1
    assert "first bad leaf 777" in result.output
    result = runner.invoke(audit_group, ["verify", str(path), "--public-key", key, "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["first_bad_leaf"] == 777


def test_verify_rollback_exit_code(log_10k: SignedLog, tmp_path: Path) -> None:
    path = tmp_path / "b"
    notes = [n for n, s in zip(log_10k.notes, log_10k.sizes, strict=True) if s <= 500]
    write_bundle(
        path, leaves=log_10k.leaves[:500], checkpoints=notes, verifier_key=log_10k.key.verifier()
    )
    since = tmp_path / "later.note"
    since.write_text(log_10k.notes[-1])
    result = CliRunner().invoke(
        audit_group,
        ["verify", str(path), "--public-key", str(log_10k.key.verifier()), "--since", str(since)],
    )
    assert result.exit_code == 4
    assert "rolled back" in result.output


def test_verify_certificate_file(log_10k: SignedLog, tmp_path: Path) -> None:
    document = build_certificate(
        request={"id": "r1"},
        targets=[],
        leaves=[ProvenLeaf(3, log_10k.leaves[3], log_10k.tree.inclusion_proof(3))],
        checkpoint_note=log_10k.notes[-1],
        signing_key=log_10k.key,
        issued_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    path = tmp_path / "certificate.json"
    path.write_bytes(dump_certificate(document))
    runner = CliRunner()
    key = str(log_10k.key.verifier())
    result = runner.invoke(audit_group, ["verify", str(path), "--public-key", key])
    assert result.exit_code == 0, result.output
    assert "1 of 1 proven included" in result.output
    path.write_bytes(path.read_bytes().replace(b'"r1"', b'"r2"'))
    result = runner.invoke(audit_group, ["verify", str(path), "--public-key", key])
    assert result.exit_code == 6
    since = tmp_path / "old.note"
    since.write_text(log_10k.notes[0])
    result = runner.invoke(
        audit_group, ["verify", str(path), "--public-key", key, "--since", str(since)]
    )
    assert result.exit_code == 2


def test_verify_a_certificate_larger_than_a_page(log_10k: SignedLog, tmp_path: Path) -> None:
    """Certificate files sort their keys, so `"type"` comes after every leaf: a real request's
    certificate (many leaves with proofs) must still be recognised as one."""
    document = build_certificate(
        request={"id": "r1"},
        targets=[],
        leaves=[
            ProvenLeaf(i, log_10k.leaves[i], log_10k.tree.inclusion_proof(i)) for i in range(12)
        ],
        checkpoint_note=log_10k.notes[-1],
        signing_key=log_10k.key,
        issued_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    path = tmp_path / "certificate.json"
    path.write_bytes(dump_certificate(document))
    assert path.read_bytes().index(b'"erasure-certificate"') > 4096
    result = CliRunner().invoke(
        audit_group, ["verify", str(path), "--public-key", str(log_10k.key.verifier())]
    )
    assert result.exit_code == 0, result.output
    assert "12 of 12 proven included" in result.output


def test_verify_usage_errors(bundle_10k: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    assert (
        runner.invoke(
            audit_group, ["verify", str(bundle_10k), "--public-key", "nonsense"]
        ).exit_code
        == 2
    )
    assert runner.invoke(audit_group, ["verify", str(bundle_10k)]).exit_code == 2
    other = tmp_path / "x.txt"
    other.write_text("hello")
    key = str(SigningKey.generate("k").verifier())
    assert runner.invoke(audit_group, ["verify", str(other), "--public-key", key]).exit_code == 2
