"""`erasure audit verify NEW.note --since OLD.note --proof PROOF.json`: a bare checkpoint checked
against an earlier one with an RFC 9162 consistency proof, offline, with its exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from erasure.audit.checkpoint import Checkpoint, SigningKey
from erasure.audit.commands import audit_group
from erasure.audit.consistency import proof_document
from erasure.audit.merkle.hashing import pack_leaf_hashes
from erasure.audit.merkle.tree import MerkleTree

from .support import ORIGIN, SignedLog, make_leaves

OLD, NEW = 1000, 7777  # neither a power of two: the proof is not trivial


def _files(tmp_path: Path, log: SignedLog, old: int = OLD, new: int = NEW) -> tuple[Path, Path]:
    old_note = tmp_path / "old.note"
    old_note.write_text(Checkpoint(ORIGIN, old, log.tree.root(old)).sign(log.key))
    new_note = tmp_path / "new.note"
    new_note.write_text(Checkpoint(ORIGIN, new, log.tree.root(new)).sign(log.key))
    return old_note, new_note


def _proof(tmp_path: Path, tree: MerkleTree, first: int, second: int) -> Path:
    path = tmp_path / "proof.json"
    document = proof_document(first, second, tree.consistency_proof(first, second))
    path.write_text(json.dumps(document))
    return path


def _verify(log: SignedLog, *args: str, stdin: str | None = None) -> Result:
    key = str(log.key.verifier())
    return CliRunner().invoke(
        audit_group, ["verify", *args, "--public-key", key, "--json"], input=stdin
    )


def _codes(result: Result) -> list[str]:
    return [finding["code"] for finding in json.loads(result.stdout)["findings"]]


def test_a_checkpoint_that_extends_the_earlier_one_verifies(
    log_10k: SignedLog, tmp_path: Path
) -> None:
    old, new = _files(tmp_path, log_10k)
    proof = _proof(tmp_path, log_10k.tree, OLD, NEW)
    result = _verify(log_10k, str(new), "--since", str(old), "--proof", str(proof))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kind"] == "checkpoint" and report["ok"] is True
    assert report["tree_size"] == NEW and report["since"] == OLD
    # The proof may come on stdin (`curl ... | erasure audit verify ... --proof -`).
    piped = _verify(log_10k, str(new), "--since", str(old), "--proof", "-", stdin=proof.read_text())
    assert piped.exit_code == 0, piped.output
    # Human output too.
    human = CliRunner().invoke(
        audit_group,
        [
            "verify",
            str(new),
            "--since",
            str(old),
            "--proof",
            str(proof),
            "--public-key",
            str(log_10k.key.verifier()),
        ],
    )
    assert human.exit_code == 0 and "VERIFIED" in human.output


def test_a_bare_checkpoint_alone_has_its_signature_checked(
    log_10k: SignedLog, tmp_path: Path
) -> None:
    _, new = _files(tmp_path, log_10k)
    assert _verify(log_10k, str(new)).exit_code == 0
    stranger = SigningKey.generate(ORIGIN)
    new.write_text(Checkpoint(ORIGIN, NEW, log_10k.tree.root(NEW)).sign(stranger))
    result = _verify(log_10k, str(new))
    assert result.exit_code == 3
    assert _codes(result) == ["bad_checkpoint"]


def test_a_rewritten_history_is_a_fork(log_10k: SignedLog, tmp_path: Path) -> None:
    leaves = make_leaves(NEW)
    leaves[OLD // 2] = leaves[OLD // 2].replace(b'"v":1', b'"v":2')  # history before OLD changed
    forked = MerkleTree(pack_leaf_hashes(leaves))
    old = tmp_path / "old.note"
    old.write_text(Checkpoint(ORIGIN, OLD, log_10k.tree.root(OLD)).sign(log_10k.key))
    new = tmp_path / "new.note"
    new.write_text(Checkpoint(ORIGIN, NEW, forked.root(NEW)).sign(log_10k.key))  # re-signed
    proof = _proof(tmp_path, forked, OLD, NEW)
    result = _verify(log_10k, str(new), "--since", str(old), "--proof", str(proof))
    assert result.exit_code == 4, result.output
    assert _codes(result) == ["fork"]


def test_a_smaller_checkpoint_is_a_rollback(log_10k: SignedLog, tmp_path: Path) -> None:
    old, new = _files(tmp_path, log_10k, old=NEW, new=OLD)
    result = _verify(log_10k, str(new), "--since", str(old))
    assert result.exit_code == 4
    assert _codes(result) == ["rollback"]


def test_equal_sizes_need_no_proof_but_equal_roots(log_10k: SignedLog, tmp_path: Path) -> None:
    old, new = _files(tmp_path, log_10k, old=NEW, new=NEW)
    assert _verify(log_10k, str(new), "--since", str(old)).exit_code == 0
    new.write_text(Checkpoint(ORIGIN, NEW, log_10k.tree.root(NEW - 1)).sign(log_10k.key))
    result = _verify(log_10k, str(new), "--since", str(old))
    assert result.exit_code == 4 and _codes(result) == ["fork"]


def test_checkpoints_of_another_log_are_not_compared(log_10k: SignedLog, tmp_path: Path) -> None:
    old, new = _files(tmp_path, log_10k)
    old.write_text(Checkpoint("other.example/log", OLD, log_10k.tree.root(OLD)).sign(log_10k.key))
    result = _verify(log_10k, str(new), "--since", str(old), "--proof", str(new))
    assert result.exit_code == 4 and _codes(result) == ["since_other_log"]


def test_different_sizes_without_a_proof_is_a_usage_error(
    log_10k: SignedLog, tmp_path: Path
) -> None:
    old, new = _files(tmp_path, log_10k)
    result = _verify(log_10k, str(new), "--since", str(old))
    assert result.exit_code == 2
    assert "--proof" in result.output


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ("not json", "malformed_proof"),
        ('{"first": 1000, "second": 7777}', "malformed_proof"),
        ('{"first": 1000, "second": 7777, "consistency": ["AAAA"]}', "malformed_proof"),
        ('{"first": true, "second": 7777, "consistency": []}', "malformed_proof"),
        (None, "proof_mismatch"),  # a valid proof, but between other sizes
    ],
)
def test_a_malformed_or_mismatched_proof_is_named(
    log_10k: SignedLog, tmp_path: Path, document: str | None, code: str
) -> None:
    old, new = _files(tmp_path, log_10k)
    proof = _proof(tmp_path, log_10k.tree, OLD, NEW - 1)
    if document is not None:
        proof.write_text(document)
    result = _verify(log_10k, str(new), "--since", str(old), "--proof", str(proof))
    assert result.exit_code == 5, result.output
    assert _codes(result) == [code]


def test_a_proof_with_a_wrong_hash_does_not_verify(log_10k: SignedLog, tmp_path: Path) -> None:
    old, new = _files(tmp_path, log_10k)
    document = proof_document(OLD, NEW, log_10k.tree.consistency_proof(OLD, NEW))
    hashes = document["consistency"]
    assert isinstance(hashes, list)
    hashes[0] = hashes[1]
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(document))
    result = _verify(log_10k, str(new), "--since", str(old), "--proof", str(proof))
    assert result.exit_code == 4 and _codes(result) == ["fork"]


def test_not_a_checkpoint_nor_a_certificate(log_10k: SignedLog, tmp_path: Path) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_text("hello\n")
    result = _verify(log_10k, str(junk))
    assert result.exit_code == 2
