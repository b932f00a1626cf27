"""C2SP signed notes and tlog checkpoints, against golang.org/x/mod/sumdb/note vectors."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erasure.audit.checkpoint import (
    Checkpoint,
    SigningKey,
    VerifierKey,
    key_id,
    open_checkpoint,
    open_note,
    parse_note,
    read_checkpoint_unverified,
    sign_note,
)
from erasure.audit.errors import (
    BadSignatureError,
    MalformedNoteError,
    NoteError,
    UnknownKeyError,
)

# Vectors copied from golang/mod, sumdb/note/note_test.go (TestSign, TestOpen, TestNewVerifier).
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "\u2014 EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)


def test_signing_reproduces_the_go_vector_byte_for_byte() -> None:
    key = SigningKey.parse(PETER_SKEY)
    assert key.to_text() == PETER_SKEY
    assert str(key.verifier()) == PETER_VKEY
    assert key.key_id == bytes.fromhex("c74f20a3")
    assert sign_note(TEXT, key) == TEXT + "\n" + PETER_SIG


def test_key_id_is_the_spec_formula() -> None:
    key = VerifierKey.parse(PETER_VKEY)
    want = hashlib.sha256(b"PeterNeumann\n\x01" + key.public_key).digest()[:4]
    assert key_id("PeterNeumann", key.public_key) == want == key.key_id


def test_open_verifies_the_trusted_key_and_ignores_others() -> None:
    peter, enoch = VerifierKey.parse(PETER_VKEY), VerifierKey.parse(ENOCH_VKEY)
    note = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert open_note(note, peter) == TEXT
    assert open_note(note, enoch) == TEXT
    assert open_note(note.encode(), peter) == TEXT
    assert len(parse_note(note).signatures) == 2


def test_open_rejects_a_note_without_the_trusted_key() -> None:
    with pytest.raises(UnknownKeyError):
        open_note(TEXT + "\n" + ENOCH_SIG, VerifierKey.parse(PETER_VKEY))
    # Same name, different id: an unknown key, not a bad signature.
    renamed = PETER_SIG.replace("x08g", "xxxx")
    with pytest.raises(UnknownKeyError):
        open_note(TEXT + "\n" + renamed, VerifierKey.parse(PETER_VKEY))


def test_open_rejects_a_bad_signature_by_the_trusted_key() -> None:
    broken = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(BadSignatureError):
        open_note(TEXT + "\n" + broken, VerifierKey.parse(PETER_VKEY))
    with pytest.raises(BadSignatureError):
        open_note(
            TEXT.replace("problem", "problems", 1) + "\n" + PETER_SIG, VerifierKey.parse(PETER_VKEY)
        )


@pytest.mark.parametrize(
    "message",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + PETER_SIG.replace("PeterNeumann", "Bad Name")[:-1],
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG * 101,
    ],
)
def test_open_rejects_malformed_notes(message: str) -> None:
    with pytest.raises(MalformedNoteError):
        open_note(message, VerifierKey.parse(PETER_VKEY))


def test_open_rejects_invalid_utf8() -> None:
    with pytest.raises(MalformedNoteError):
        open_note(b"\xff" + (TEXT + "\n" + PETER_SIG).encode(), VerifierKey.parse(PETER_VKEY))


def test_verifier_key_manglings_are_rejected() -> None:
    # As in TestNewVerifier: every proper substring and every single-byte increment fails.
    bad = 0
    for i in range(len(PETER_VKEY)):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) != (0, len(PETER_VKEY)):
                with pytest.raises(NoteError):
                    VerifierKey.parse(PETER_VKEY[i:j])
                bad += 1
    for i in range(len(PETER_VKEY)):
        mangled = PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :]
        with pytest.raises(NoteError):
            VerifierKey.parse(mangled)
    with pytest.raises(NoteError):  # wrong length key, with adjusted key hash
        VerifierKey.parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
    with pytest.raises(NoteError):  # unknown algorithm, with adjusted key hash
        VerifierKey.parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    assert bad > 1000


def test_signing_key_manglings_are_rejected() -> None:
    for i in range(len(PETER_SKEY)):
        mangled = PETER_SKEY[:i] + chr(ord(PETER_SKEY[i]) + 1) + PETER_SKEY[i + 1 :]
        with pytest.raises(NoteError):
            SigningKey.parse(mangled)
    assert "AYEK" not in repr(SigningKey.parse(PETER_SKEY))


def test_generated_keys_round_trip() -> None:
    key = SigningKey.generate("erasure.example/audit")
    again = SigningKey.parse(key.to_text())
    assert again.public_key == key.public_key
    assert VerifierKey.parse(str(key.verifier())) == key.verifier()
    note = sign_note("hello\n", key)
    assert open_note(note, again.verifier()) == "hello\n"
    other = SigningKey.generate("erasure.example/audit")
    with pytest.raises(UnknownKeyError):
        open_note(note, other.verifier())


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\tname", "nbsp\u00a0name"])
def test_key_names_follow_the_spec(name: str) -> None:
    with pytest.raises(MalformedNoteError):
        SigningKey.generate(name)


def test_checkpoint_text_is_the_c2sp_format() -> None:
    root = hashlib.sha256(b"x").digest()
    checkpoint = Checkpoint("example.com/behind-the-sofa", 20852163, root)
    text = checkpoint.to_text()
    assert text.split("\n")[:2] == ["example.com/behind-the-sofa", "20852163"]
    assert Checkpoint.parse(text) == checkpoint
    with_ext = Checkpoint("o", 0, root, ("ext one",))
    assert Checkpoint.parse(with_ext.to_text()) == with_ext


def test_signed_checkpoints_open_with_the_verifier_key() -> None:
    key = SigningKey.generate("erasure.example/audit")
    checkpoint = Checkpoint("erasure.example/audit", 42, hashlib.sha256(b"r").digest())
    note = checkpoint.sign(key)
    assert open_checkpoint(note, key.verifier()) == checkpoint
    assert open_checkpoint(note, key.verifier(), origin="erasure.example/audit") == checkpoint
    assert read_checkpoint_unverified(note) == checkpoint
    with pytest.raises(MalformedNoteError):
        open_checkpoint(note, key.verifier(), origin="someone.else/log")
    forged = note.replace("\n42\n", "\n43\n")
    with pytest.raises(BadSignatureError):
        open_checkpoint(forged, key.verifier())


@pytest.mark.parametrize(
    "text",
    [
        "o\n1\n",
        "o\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n1\nAAAA\n",
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n",
        "\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "o\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n",
    ],
)
def test_malformed_checkpoints_are_rejected(text: str) -> None:
    with pytest.raises(MalformedNoteError):
        Checkpoint.parse(text)


@given(st.binary(min_size=1, max_size=200))
def test_arbitrary_bytes_never_open(blob: bytes) -> None:
    key = SigningKey.from_seed("k", b"\x01" * 32)
    with pytest.raises(NoteError):
        open_note(blob, key.verifier())
