"""The OpenDSR processor identity: an RSA key pair (private key sealed with the Vault) and a
self-signed certificate published at discovery, with which callbacks are signed
(`X-OpenDSR-Signature`: base64 RSASSA-PKCS1-v1_5 SHA-256 over the body). Nothing here commits."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.identifiers import Sealed, Vault
from erasure.integrations.models import ProcessorKey

_CONTEXT = "opendsr-processor-key"
_LOCK = 0x6F647372  # "odsr"


def current(session: Session, *, vault: Vault, common_name: str) -> ProcessorKey:
    """The processor key, created on first use (under a lock, so only one is ever made)."""
    row = session.scalar(select(ProcessorKey).order_by(ProcessorKey.id.desc()).limit(1))
    if row is not None:
        return row
    session.execute(select(func.pg_advisory_xact_lock(_LOCK)))
    row = session.scalar(select(ProcessorKey).order_by(ProcessorKey.id.desc()).limit(1))
    if row is not None:
        return row
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    sealed = vault.seal(pem, context=_CONTEXT)
    row = ProcessorKey(
        private_key_ciphertext=sealed.ciphertext,
        key_id=sealed.key_id,
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
    )
    session.add(row)
    session.flush()
    return row


def sign(row: ProcessorKey, body: bytes, *, vault: Vault) -> str:
    pem = vault.open(Sealed(row.key_id, row.private_key_ciphertext), context=_CONTEXT)
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("the processor key is not RSA")
    return base64.b64encode(key.sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(certificate_pem: str, body: bytes, signature: str) -> bool:
    """What a controller does with the published certificate."""
    public_key = x509.load_pem_x509_certificate(certificate_pem.encode()).public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        return False
    try:
        public_key.verify(base64.b64decode(signature), body, padding.PKCS1v15(), hashes.SHA256())
    except (ValueError, InvalidSignature):
        return False
    return True
