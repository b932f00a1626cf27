import os

import pytest
from cryptography.exceptions import InvalidTag

from erasure.core.models import IdentifierKind
from erasure.identifiers import InvalidIdentifier, Sealed, Vault, normalize, pseudonym


@pytest.mark.parametrize(
    ("kind", "raw", "normalized"),
    [
        (IdentifierKind.PHONE, "+14155552671", "+14155552671"),
        (IdentifierKind.PHONE, "+44 20 7946 0958", "+442079460958"),
        (IdentifierKind.EMAIL, "Ana.Silva@Example.COM", "ana.silva@example.com"),
        (IdentifierKind.MESSAGING_PLATFORM_KEY, "  whatsapp:123  ", "whatsapp:123"),
        (IdentifierKind.CONTACT_ID, "003000000000001AAA", "003000000000001AAA"),
        (IdentifierKind.MESSAGING_END_USER_ID, "0PA000000000001", "0PA000000000001"),
    ],
)
def test_normalize(kind: IdentifierKind, raw: str, normalized: str) -> None:
    assert normalize(kind, raw) == normalized


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        (IdentifierKind.PHONE, "4155552671"),  # not E.164
        (IdentifierKind.PHONE, "+1415555"),
        (IdentifierKind.PHONE, "+999999999999"),
        (IdentifierKind.EMAIL, "not-an-email"),
        (IdentifierKind.EMAIL, "a@b@example.com"),
        (IdentifierKind.CONTACT_ID, "0PA000000000001"),  # an end user id is not a contact id
        (IdentifierKind.MESSAGING_END_USER_ID, "0PA00000000000!"),
        (IdentifierKind.MESSAGING_PLATFORM_KEY, "   "),
    ],
)
def test_invalid_identifiers_are_refused_without_echoing_them(
    kind: IdentifierKind, raw: str
) -> None:
    with pytest.raises(InvalidIdentifier) as excinfo:
        normalize(kind, raw)
    assert raw.strip() not in str(excinfo.value) or not raw.strip()


def test_pseudonym_is_keyed_and_kind_separated() -> None:
    key, other = os.urandom(32), os.urandom(32)
    value = "+14155552671"
    assert pseudonym(key, IdentifierKind.PHONE, value) == pseudonym(
        key, IdentifierKind.PHONE, value
    )
    assert pseudonym(key, IdentifierKind.PHONE, value) != pseudonym(
        other, IdentifierKind.PHONE, value
    )
    assert pseudonym(key, IdentifierKind.PHONE, value) != pseudonym(
        key, IdentifierKind.MESSAGING_PLATFORM_KEY, value
    )


def test_vault_rotation_and_context_binding() -> None:
    old_key = os.urandom(32)
    sealed = Vault({"old": old_key}).seal("ana@example.com", context="row-1")
    assert b"ana@example.com" not in sealed.ciphertext
    rotated = Vault({"new": os.urandom(32), "old": old_key})
    assert rotated.active_key_id == "new"
    assert rotated.open(sealed, context="row-1") == "ana@example.com"  # the old key still opens
    assert rotated.seal("x", context="c").key_id == "new"
    with pytest.raises(InvalidTag):
        rotated.open(sealed, context="row-2")  # a ciphertext moved to another row does not open
    with pytest.raises(LookupError):
        Vault({"other": os.urandom(32)}).open(Sealed("old", sealed.ciphertext), context="row-1")
