"""Evidence bundles: the audit log exported as plain files an auditor can check offline.

Layout of a bundle directory (format ``erasure-audit-bundle/1``)::

    manifest.json        what is in the bundle (informational: it is not signed)
    public-key.txt       the log's verifier key, name+keyid+base64 (informational: verify with
                         a key obtained out of band, never with the copy in the bundle)
    leaves.jsonl         leaf i on line i (0-based): the exact bytes that were hashed, each a
                         line of RFC 8785 canonical JSON, which never contains a raw newline
    leaf-hashes.bin      the 32-byte RFC 9162 leaf hash of every leaf, concatenated; used only to
                         name the first bad leaf, and only after it matches the signed roots
    checkpoints/<n>.note the signed checkpoints (C2SP signed notes) at tree sizes n

The newest checkpoint covers every leaf: the writer refuses to export leaves that no signed
checkpoint attests, because an auditor could not tell them from inserted ones.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from erasure.audit.checkpoint import Checkpoint, VerifierKey, read_checkpoint_unverified
from erasure.audit.errors import BundleError, NoteError
from erasure.audit.merkle.frontier import Frontier
from erasure.audit.merkle.hashing import HASH_SIZE

BUNDLE_FORMAT = "erasure-audit-bundle/1"
MANIFEST_FILE = "manifest.json"
PUBLIC_KEY_FILE = "public-key.txt"
LEAVES_FILE = "leaves.jsonl"
LEAF_HASHES_FILE = "leaf-hashes.bin"
CHECKPOINTS_DIR = "checkpoints"

# Large sequential writes and reads; the leaf count can reach millions.
_IO_BUFFER = 1 << 20
_READ_CHUNK = 16 << 20


@dataclass(frozen=True)
class BundleSummary:
    """What `write_bundle` wrote."""

    path: Path
    leaf_count: int
    checkpoint_sizes: tuple[int, ...]
    root_hash: bytes


def checkpoint_filename(size: int) -> str:
    """`checkpoints/<size>.note`, relative to the bundle."""
    return f"{CHECKPOINTS_DIR}/{size}.note"


def _sorted_checkpoints(notes: Iterable[str]) -> list[tuple[Checkpoint, str]]:
    by_size: dict[int, tuple[Checkpoint, str]] = {}
    for note in notes:
        try:
            checkpoint = read_checkpoint_unverified(note)
        except NoteError as exc:
            raise BundleError(f"cannot export a malformed checkpoint: {exc}") from exc
        seen = by_size.get(checkpoint.size)
        if seen is not None and seen[0].root_hash != checkpoint.root_hash:
            raise BundleError(f"two checkpoints at size {checkpoint.size} with different roots")
        by_size[checkpoint.size] = (checkpoint, note)
    origins = {checkpoint.origin for checkpoint, _ in by_size.values()}
    if len(origins) > 1:
        raise BundleError(f"checkpoints from several logs: {sorted(origins)}")
    return [by_size[size] for size in sorted(by_size)]


def write_bundle(
    path: Path,
    *,
    leaves: Iterable[bytes],
    checkpoints: Iterable[str],
    verifier_key: VerifierKey | str,
    created_at: datetime | None = None,
) -> BundleSummary:
    """Write an evidence bundle at `path` (which must not exist yet).

    `leaves` is streamed (a million leaves never sit in memory); `checkpoints` are signed
    notes. Every checkpoint's root is recomputed while streaming and must match, and the
    newest must cover exactly the leaves given: a mismatch means the database and its
    checkpoints disagree, which the exporter must report rather than publish. The bundle is
    assembled in a temporary sibling directory and renamed into place, so a failed export
    leaves nothing behind.
    """
    key = verifier_key if isinstance(verifier_key, VerifierKey) else VerifierKey.parse(verifier_key)
    ordered = _sorted_checkpoints(checkpoints)
    if not ordered:
        raise BundleError("a bundle needs at least one signed checkpoint")
    if path.exists():
        raise BundleError(f"{path} already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        count, leaves_digest, hashes_digest = _write_leaves(staging, leaves, ordered)
        newest = ordered[-1][0]
        if count != newest.size:
            raise BundleError(
                f"{count} leaves given but the newest checkpoint covers {newest.size}: "
                "export exactly the leaves of the newest checkpoint"
            )
        (staging / CHECKPOINTS_DIR).mkdir()
        for checkpoint, note in ordered:
            (staging / checkpoint_filename(checkpoint.size)).write_text(note, encoding="utf-8")
        (staging / PUBLIC_KEY_FILE).write_text(f"{key}\n", encoding="utf-8")
        manifest: dict[str, object] = {
            "format": BUNDLE_FORMAT,
            "origin": newest.origin,
            "leaf_count": count,
            "checkpoints": [checkpoint_filename(c.size) for c, _ in ordered],
            "files": {
                LEAVES_FILE: {"sha256": leaves_digest},
                LEAF_HASHES_FILE: {"sha256": hashes_digest},
            },
            "public_key": PUBLIC_KEY_FILE,
        }
        if created_at is not None:
            manifest["created_at"] = created_at.isoformat()
        (staging / MANIFEST_FILE).write_text(
            json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        staging.rename(path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BundleSummary(path, count, tuple(c.size for c, _ in ordered), newest.root_hash)


def _write_leaves(
    staging: Path, leaves: Iterable[bytes], ordered: list[tuple[Checkpoint, str]]
) -> tuple[int, str, str]:
    frontier = Frontier()
    pending = [checkpoint for checkpoint, _ in ordered]
    position = 0
    leaves_sha = hashlib.sha256()
    hashes_sha = hashlib.sha256()
    sha = hashlib.sha256
    with (
        (staging / LEAVES_FILE).open("wb", buffering=_IO_BUFFER) as leaves_out,
        (staging / LEAF_HASHES_FILE).open("wb", buffering=_IO_BUFFER) as hashes_out,
    ):
        # A size-0 checkpoint is checked before any leaf.
        while pending and pending[0].size == position:
            _check_root(frontier, pending.pop(0))
        for leaf in leaves:
            if not leaf or b"\n" in leaf:
                raise BundleError(f"leaf {position} is empty or contains a newline")
            line = leaf + b"\n"
            digest = sha(b"\x00" + leaf).digest()
            leaves_out.write(line)
            leaves_sha.update(line)
            hashes_out.write(digest)
            hashes_sha.update(digest)
            frontier.append(digest)
            position += 1
            while pending and pending[0].size == position:
                _check_root(frontier, pending.pop(0))
    return position, leaves_sha.hexdigest(), hashes_sha.hexdigest()


def _check_root(frontier: Frontier, checkpoint: Checkpoint) -> None:
    if frontier.root() != checkpoint.root_hash:
        raise BundleError(
            f"the leaves do not match the checkpoint at size {checkpoint.size}: "
            "the log and its checkpoints disagree"
        )


# --- reading ----------------------------------------------------------------------------------


def read_manifest(path: Path) -> dict[str, object]:
    """The parsed manifest; `BundleError` when missing, not JSON, or not this format."""
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BundleError(f"{path} has no {MANIFEST_FILE}: not an evidence bundle") from exc
    except (OSError, ValueError) as exc:
        raise BundleError(f"{MANIFEST_FILE} is unreadable: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{MANIFEST_FILE} is not an {BUNDLE_FORMAT} manifest")
    return manifest


def read_checkpoint_notes(path: Path) -> dict[str, bytes]:
    """Every `checkpoints/*.note` file, by bundle-relative name, as raw bytes."""
    directory = path / CHECKPOINTS_DIR
    if not directory.is_dir():
        return {}
    return {
        f"{CHECKPOINTS_DIR}/{entry.name}": entry.read_bytes()
        for entry in sorted(directory.iterdir())
        if entry.name.endswith(".note") and entry.is_file()
    }


def iter_leaf_chunks(path: Path) -> Iterator[list[bytes]]:
    """The lines of `leaves.jsonl` in batches, without the newline terminators.

    Batches keep the verifier's per-leaf loops inside list comprehensions while the file is
    never held whole in memory. A final line without a terminating newline is yielded as is
    (the caller decides what that means); a file ending in a newline yields no empty line.
    """
    carry = b""
    with (path / LEAVES_FILE).open("rb", buffering=0) as stream:
        while chunk := stream.read(_READ_CHUNK):
            lines = (carry + chunk).split(b"\n")
            carry = lines.pop()
            if lines:
                yield lines
    if carry:
        yield [carry]


def leaf_ranges(path: Path, parts: int) -> list[tuple[int, int]]:
    """`leaves.jsonl` cut into about `parts` byte ranges [start, end), each starting at a line
    and ending just after a newline (or at the end of the file), so workers can read their own
    range and together see exactly the lines `iter_leaf_chunks` yields, in order."""
    size = (path / LEAVES_FILE).stat().st_size
    if size == 0:
        return []
    cuts = [0]
    with (path / LEAVES_FILE).open("rb") as stream:
        for k in range(1, max(1, parts)):
            target = max(size * k // parts, cuts[-1])
            stream.seek(target)
            stream.readline()  # to the end of the line that holds `target`
            position = stream.tell()
            if cuts[-1] < position < size:
                cuts.append(position)
    cuts.append(size)
    return list(itertools.pairwise(cuts))


def read_leaf_range(path: Path, start: int, end: int) -> list[bytes]:
    """The lines in bytes [start, end) of `leaves.jsonl` (a range from `leaf_ranges`), without
    their newlines; a final line without one is kept, as `iter_leaf_chunks` keeps it."""
    with (path / LEAVES_FILE).open("rb", buffering=0) as stream:
        stream.seek(start)
        data = stream.read(end - start)
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return lines


def leaves_end_with_newline(path: Path) -> bool:
    """Whether `leaves.jsonl` is empty or ends with a newline, as the format requires."""
    with (path / LEAVES_FILE).open("rb") as stream:
        stream.seek(0, os.SEEK_END)
        if stream.tell() == 0:
            return True
        stream.seek(-1, os.SEEK_END)
        return stream.read(1) == b"\n"


def read_leaf_hashes(path: Path) -> bytes | None:
    """The packed `leaf-hashes.bin`, or None when absent or not a whole number of hashes."""
    try:
        data = (path / LEAF_HASHES_FILE).read_bytes()
    except FileNotFoundError:
        return None
    return data if len(data) % HASH_SIZE == 0 else None


def manifest_checkpoints(manifest: Mapping[str, object]) -> list[str]:
    """The checkpoint file names the manifest lists (empty if the field is unusable)."""
    listed = manifest.get("checkpoints")
    if not isinstance(listed, list):
        return []
    return [name for name in listed if isinstance(name, str)]
