"""Evidence bundle writer and the bundle verifier's findings other than leaf tampering."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from erasure.audit.bundle import (
    BUNDLE_FORMAT,
    LEAF_HASHES_FILE,
    LEAVES_FILE,
    MANIFEST_FILE,
    PUBLIC_KEY_FILE,
    iter_leaf_chunks,
    write_bundle,
)
from erasure.audit.checkpoint import Checkpoint, SigningKey
from erasure.audit.errors import BundleError
from erasure.audit.merkle.hashing import EMPTY_ROOT, pack_leaf_hashes
from erasure.audit.merkle.tree import MerkleTree
from erasure.audit.report import ExitCode
from erasure.audit.verify import verify_bundle

from .support import ORIGIN, SignedLog, make_leaves, sign_checkpoints, signed_log


@pytest.fixture
def small(signing_key: SigningKey) -> SignedLog:
    return signed_log(50, [10, 32, 50], signing_key)


def write(path: Path, log: SignedLog) -> Path:
    write_bundle(
        path, leaves=iter(log.leaves), checkpoints=log.notes, verifier_key=str(log.key.verifier())
    )
    return path


def test_bundle_layout(tmp_path: Path, small: SignedLog) -> None:
    path = write(tmp_path / "b", small)
    assert (path / LEAVES_FILE).read_bytes() == b"".join(leaf + b"\n" for leaf in small.leaves)
    assert (path / LEAF_HASHES_FILE).read_bytes() == small.tree.leaf_hashes
    assert sorted(p.name for p in (path / "checkpoints").iterdir()) == [
        "10.note",
        "32.note",
        "50.note",
    ]
    assert (path / PUBLIC_KEY_FILE).read_text() == f"{small.key.verifier()}\n"
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    assert manifest["format"] == BUNDLE_FORMAT
    assert manifest["leaf_count"] == 50
    assert manifest["origin"] == ORIGIN
    assert [line for chunk in iter_leaf_chunks(path) for line in chunk] == small.leaves
    assert verify_bundle(path, small.key.verifier()).ok


def test_empty_log_bundle(tmp_path: Path, signing_key: SigningKey) -> None:
    note = Checkpoint(ORIGIN, 0, EMPTY_ROOT).sign(signing_key)
    write_bundle(tmp_path / "b", leaves=[], checkpoints=[note], verifier_key=signing_key.verifier())
    report = verify_bundle(tmp_path / "b", signing_key.verifier())
    assert report.ok, report.findings
    assert report.leaf_count == 0


def test_writer_refuses_inconsistent_input(tmp_path: Path, small: SignedLog) -> None:
    key = small.key.verifier()
    with pytest.raises(BundleError, match="newest checkpoint covers"):
        write_bundle(
            tmp_path / "a", leaves=small.leaves[:40], checkpoints=small.notes, verifier_key=key
        )
    with pytest.raises(BundleError, match="newest checkpoint covers"):
        write_bundle(
            tmp_path / "b", leaves=small.leaves, checkpoints=small.notes[:2], verifier_key=key
        )
    changed = [*small.leaves[:5], b'{"v":9}', *small.leaves[6:]]
    with pytest.raises(BundleError, match="do not match the checkpoint at size 10"):
        write_bundle(tmp_path / "c", leaves=changed, checkpoints=small.notes, verifier_key=key)
    with pytest.raises(BundleError, match="newline"):
        write_bundle(tmp_path / "d", leaves=[b"a\nb"], checkpoints=small.notes, verifier_key=key)
    with pytest.raises(BundleError, match="at least one"):
        write_bundle(tmp_path / "e", leaves=[], checkpoints=[], verifier_key=key)
    other = sign_checkpoints(small.tree, [32], small.key, origin="other.example/log")
    with pytest.raises(BundleError, match="several logs"):
        write_bundle(
            tmp_path / "f",
            leaves=small.leaves,
            checkpoints=[*small.notes, *other],
            verifier_key=key,
        )
    # Nothing half-written is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    write(tmp_path / "g", small)
    with pytest.raises(BundleError, match="exists"):
        write(tmp_path / "g", small)


def test_wrong_public_key_fails_every_checkpoint(tmp_path: Path, small: SignedLog) -> None:
    path = write(tmp_path / "b", small)
    stranger = SigningKey.generate(ORIGIN).verifier()
    report = verify_bundle(path, stranger)
    assert report.exit_code is ExitCode.BAD_CHECKPOINT
    assert {f.code for f in report.errors} == {"bad_checkpoint", "no_checkpoint"}
    assert any(f.code == "other_public_key" and f.warning for f in report.findings)


def test_forged_checkpoint_signature(tmp_path: Path, small: SignedLog) -> None:
    path = write(tmp_path / "b", small)
    note = (path / "checkpoints/32.note").read_text()
    (path / "checkpoints/32.note").write_text(note.replace("\n32\n", "\n33\n"))
    report = verify_bundle(path, small.key.verifier())
    assert report.exit_code is ExitCode.BAD_CHECKPOINT
    assert report.checkpoint_sizes == [10, 50]


def test_checkpoint_under_the_wrong_name(tmp_path: Path, small: SignedLog) -> None:
    path = write(tmp_path / "b", small)
    (path / "checkpoints/10.note").rename(path / "checkpoints/11.note")
    report = verify_bundle(path, small.key.verifier())
    assert report.exit_code is ExitCode.BAD_CHECKPOINT
    assert {f.code for f in report.errors} == {"bad_checkpoint", "missing_checkpoint"}


def test_deleted_newest_checkpoint_is_noticed(tmp_path: Path, small: SignedLog) -> None:
    path = write(tmp_path / "b", small)
    (path / "checkpoints/50.note").unlink()
    report = verify_bundle(path, small.key.verifier())
    # The manifest still lists it, and leaves 32..49 are now covered by no checkpoint.
    assert {f.code for f in report.errors} == {"missing_checkpoint", "leaves_do_not_match"}
    assert report.first_bad_leaf == 32
    assert report.exit_code is ExitCode.TAMPERED


@pytest.mark.parametrize("missing", [MANIFEST_FILE, LEAVES_FILE])
def test_missing_files_are_malformed(tmp_path: Path, small: SignedLog, missing: str) -> None:
    path = write(tmp_path / "b", small)
    (path / missing).unlink()
    report = verify_bundle(path, small.key.verifier())
    assert report.exit_code is ExitCode.MALFORMED


def test_bad_since_checkpoint(tmp_path: Path, small: SignedLog) -> None:
    path = write(tmp_path / "b", small)
    report = verify_bundle(path, small.key.verifier(), since=b"garbage")
    assert report.exit_code is ExitCode.BAD_CHECKPOINT
    other_log = sign_checkpoints(small.tree, [10], small.key, origin="other.example/log")[0]
    report = verify_bundle(path, small.key.verifier(), since=other_log)
    assert [f.code for f in report.errors] == ["since_other_log"]


def test_since_uses_authentic_reference_when_leaves_fail(tmp_path: Path, small: SignedLog) -> None:
    path = write(tmp_path / "b", small)
    leaves = list(small.leaves)
    leaves[40] = leaves[40].replace(b"Succeeded", b"Failed")
    (path / LEAVES_FILE).write_bytes(b"".join(leaf + b"\n" for leaf in leaves))
    report = verify_bundle(path, small.key.verifier(), since=small.notes[0])
    assert [f.code for f in report.errors] == ["leaves_do_not_match"]
    assert report.first_bad_leaf == 40


def test_non_canonical_but_signed_leaf_is_reported(tmp_path: Path, signing_key: SigningKey) -> None:
    leaves = [*make_leaves(3), b'{"b":1, "a":2}']
    tree = MerkleTree(pack_leaf_hashes(leaves))
    notes = sign_checkpoints(tree, [4], signing_key)
    write_bundle(
        tmp_path / "b", leaves=leaves, checkpoints=notes, verifier_key=signing_key.verifier()
    )
    report = verify_bundle(tmp_path / "b", signing_key.verifier())
    assert [f.code for f in report.errors] == ["non_canonical_leaf"]
    assert report.first_bad_leaf == 3


def test_report_json_is_serialisable(tmp_path: Path, small: SignedLog) -> None:
    path = write(tmp_path / "b", small)
    shutil.rmtree(path / "checkpoints")
    report = verify_bundle(path, small.key.verifier())
    data = json.loads(json.dumps(report.to_json()))
    assert data["ok"] is False
    assert data["exit_code"] == ExitCode.BAD_CHECKPOINT
