"""Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes, signed with Ed25519.

Formats (c2sp.org/signed-note, c2sp.org/tlog-checkpoint; compatible with Go's
golang.org/x/mod/sumdb/note):

- checkpoint text: ``<origin>\\n<decimal tree size>\\n<base64 root hash>\\n[extension lines\\n]``
- signed note: the text, a blank line, then one line per signature:
  ``— <key name> <base64(4-byte key id || 64-byte Ed25519 signature)>\\n``
- key id: the first 4 bytes of SHA-256(key name || 0x0A || 0x01 || 32-byte public key)
- verifier key (public, shareable): ``<name>+<8 hex digits of key id>+<base64(0x01 || public key)>``
- signing key (secret): ``PRIVATE+KEY+<name>+<8 hex digits>+<base64(0x01 || 32-byte seed)>``,
  the sumdb/note format, so keys move between this tool and Go tooling unchanged.

Verification follows the spec: signatures from unknown keys are ignored, a signature by the
trusted key that fails rejects the whole note, and a note with no signature by the trusted key
is rejected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from erasure.audit.errors import BadSignatureError, MalformedNoteError, UnknownKeyError
from erasure.audit.merkle.hashing import HASH_SIZE

ALG_ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
# Go's sumdb/note rejects notes with more than 100 signatures; the spec asks for at least 16.
MAX_SIGNATURES = 100
# Checkpoints are a few hundred bytes; a cap keeps a hostile file from costing memory.
MAX_NOTE_BYTES = 1 << 20

_HEX8 = re.compile(r"[0-9a-f]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


def _b64decode(text: str) -> bytes:
    """Strict standard base64: alphabet, padding and canonical form all checked."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedNoteError(f"invalid base64: {text!r}") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise MalformedNoteError(f"non-canonical base64: {text!r}")
    return raw


def _check_key_name(name: str) -> None:
    # "Key names MUST be non-empty and MUST NOT contain any Unicode spaces or plus."
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise MalformedNoteError(f"invalid key name {name!r}: non-empty, no spaces, no '+'")
    if any(ord(ch) < 0x20 for ch in name):
        raise MalformedNoteError(f"invalid key name {name!r}: control characters")


def key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte signed-note key id of an Ed25519 key."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


@dataclass(frozen=True)
class VerifierKey:
    """A trusted public key: name, key id and raw 32-byte Ed25519 public key."""

    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def from_public_key(cls, name: str, public_key: bytes) -> VerifierKey:
        """Build from a name and a raw public key (the key id is derived)."""
        _check_key_name(name)
        if len(public_key) != 32:
            raise MalformedNoteError("an Ed25519 public key is 32 bytes")
        return cls(name, key_id(name, public_key), public_key)

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        """Parse ``name+hexid+base64(0x01||key)``; the id must match the key."""
        # maxsplit: the base64 part may itself contain "+" (names may not).
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise MalformedNoteError("a verifier key is <name>+<key id>+<base64 key>")
        name, id_hex, encoded = parts
        _check_key_name(name)
        if not _HEX8.fullmatch(id_hex):
            raise MalformedNoteError("the key id is 8 lowercase hex digits")
        raw = _b64decode(encoded)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise MalformedNoteError(
                "only Ed25519 verifier keys (type 0x01, 32 bytes) are supported"
            )
        key = cls.from_public_key(name, raw[1:])
        if key.key_id.hex() != id_hex:
            raise MalformedNoteError("the key id does not match the key name and public key")
        return key

    def __str__(self) -> str:
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether `signature` is this key's Ed25519 signature over `message`."""
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    """A named Ed25519 signing key. Keep the text form (`to_text`) secret."""

    name: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, name: str) -> SigningKey:
        """A fresh random key (from the OS CSPRNG, through `cryptography`)."""
        _check_key_name(name)
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> SigningKey:
        """The key with this 32-byte RFC 8032 seed."""
        _check_key_name(name)
        if len(seed) != 32:
            raise MalformedNoteError("an Ed25519 seed is 32 bytes")
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def parse(cls, text: str) -> SigningKey:
        """Parse ``PRIVATE+KEY+name+hexid+base64(0x01||seed)``."""
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise MalformedNoteError("a signing key is PRIVATE+KEY+<name>+<key id>+<base64 seed>")
        _, _, name, id_hex, encoded = parts
        if not _HEX8.fullmatch(id_hex):
            raise MalformedNoteError("the key id is 8 lowercase hex digits")
        raw = _b64decode(encoded)
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise MalformedNoteError(
                "only Ed25519 signing keys (type 0x01, 32-byte seed) are supported"
            )
        key = cls.from_seed(name, raw[1:])
        if key.key_id.hex() != id_hex:
            raise MalformedNoteError("the key id does not match the key name and public key")
        return key

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte public key."""
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def key_id(self) -> bytes:
        """The 4-byte signed-note key id."""
        return key_id(self.name, self.public_key)

    def verifier(self) -> VerifierKey:
        """The matching public verifier key."""
        return VerifierKey(self.name, self.key_id, self.public_key)

    def to_text(self) -> str:
        """The secret text form (sumdb/note compatible)."""
        seed = self.private_key.private_bytes_raw()
        encoded = base64.b64encode(bytes([ALG_ED25519]) + seed).decode("ascii")
        return f"PRIVATE+KEY+{self.name}+{self.key_id.hex()}+{encoded}"

    def sign(self, message: bytes) -> bytes:
        """Raw Ed25519 signature (deterministic, RFC 8032)."""
        return self.private_key.sign(message)

    def __repr__(self) -> str:
        # Never print the seed, even by accident in a traceback or a log line.
        return f"SigningKey(name={self.name!r}, key_id={self.key_id.hex()})"


# --- signed notes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: key name, key id, raw signature bytes."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        encoded = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{SIGNATURE_PREFIX}{self.name} {encoded}\n"


@dataclass(frozen=True)
class Note:
    """A parsed, not yet verified, signed note."""

    text: str
    signatures: tuple[NoteSignature, ...]


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise MalformedNoteError("note text must end with a newline")
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise MalformedNoteError("note contains control characters")


def sign_note(text: str, key: SigningKey) -> str:
    """The signed note for `text` with one signature by `key`."""
    _check_text(text)
    signature = NoteSignature(key.name, key.key_id, key.sign(text.encode()))
    return text + "\n" + signature.line()


def parse_note(note: str | bytes) -> Note:
    """Split a signed note into text and signature lines, checking the grammar only."""
    if isinstance(note, bytes):
        if len(note) > MAX_NOTE_BYTES:
            raise MalformedNoteError("note too large")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedNoteError("note is not valid UTF-8") from exc
    elif len(note) > MAX_NOTE_BYTES:
        raise MalformedNoteError("note too large")
    if any(ord(ch) < 0x20 and ch != "\n" for ch in note):
        raise MalformedNoteError("note contains control characters")
    # The text ends at the LAST blank line (it may itself contain blank lines).
    split = note.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("note has no blank line before its signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise MalformedNoteError("signature block must end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise MalformedNoteError(f"more than {MAX_SIGNATURES} signatures")
    signatures = []
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise MalformedNoteError(f"not a signature line: {line!r}")
        name, sep, encoded = line[len(SIGNATURE_PREFIX) :].rpartition(" ")
        if not sep:
            raise MalformedNoteError(f"signature line without key name: {line!r}")
        _check_key_name(name)
        raw = _b64decode(encoded)
        if len(raw) < 5:
            raise MalformedNoteError(f"signature too short: {line!r}")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    return Note(text, tuple(signatures))


def open_note(note: str | bytes, key: VerifierKey) -> str:
    """The note's text, once a signature by `key` verifies.

    Raises `MalformedNoteError`, `BadSignatureError` (a signature with the key's name and id
    fails) or `UnknownKeyError` (nothing signed by the key: other keys' signatures are ignored).
    """
    parsed = parse_note(note)
    message = parsed.text.encode()
    verified = False
    for signature in parsed.signatures:
        if signature.name != key.name or signature.key_id != key.key_id:
            continue
        if not key.verify(message, signature.signature):
            raise BadSignatureError(f"invalid signature for key {key.name}+{key.key_id.hex()}")
        verified = True
    if not verified:
        raise UnknownKeyError(f"no signature by key {key.name}+{key.key_id.hex()}")
    return parsed.text


# --- checkpoints ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: who (origin), how many leaves (size), which root (32 bytes)."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise MalformedNoteError("checkpoint origin must be one non-empty line")
        if self.size < 0:
            raise MalformedNoteError("checkpoint size must be >= 0")
        if len(self.root_hash) != HASH_SIZE:
            raise MalformedNoteError("checkpoint root hash must be 32 bytes")
        for line in self.extensions:
            if not line or "\n" in line:
                raise MalformedNoteError(
                    "checkpoint extension lines must be non-empty single lines"
                )

    def to_text(self) -> str:
        """The C2SP tlog-checkpoint note text."""
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root_hash).decode("ascii"),
            *self.extensions,
        ]
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse checkpoint note text (no signatures)."""
        if not text.endswith("\n"):
            raise MalformedNoteError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedNoteError("checkpoint needs origin, size and root hash lines")
        origin, size_text, root_text, *extensions = lines
        if not _DECIMAL.fullmatch(size_text):
            raise MalformedNoteError(f"checkpoint size {size_text!r} is not a plain decimal")
        return cls(origin, int(size_text), _b64decode(root_text), tuple(extensions))

    def sign(self, key: SigningKey) -> str:
        """This checkpoint as a signed note."""
        return sign_note(self.to_text(), key)


def open_checkpoint(
    note: str | bytes, key: VerifierKey, *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint and parse it; optionally pin the expected origin."""
    checkpoint = Checkpoint.parse(open_note(note, key))
    if origin is not None and checkpoint.origin != origin:
        raise MalformedNoteError(f"checkpoint origin {checkpoint.origin!r}, expected {origin!r}")
    return checkpoint


def read_checkpoint_unverified(note: str | bytes) -> Checkpoint:
    """Parse a signed checkpoint WITHOUT checking signatures (exporters' sanity checks only)."""
    return Checkpoint.parse(parse_note(note).text)


def load_signing_key(path: Path | None) -> SigningKey | None:
    """The signing key in the file at `path` (written by `erasure signing-keys generate`), or None."""
    return None if path is None else SigningKey.parse(path.read_text())
