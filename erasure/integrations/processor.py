"""The OpenDSR processor identity: the certificate published at discovery and the private key that
signs every OpenDSR response and callback (`X-OpenDSR-Signature`: base64 of an RSASSA-PKCS1-v1_5
or ECDSA signature with SHA-256 over the raw body, as FIPS 186-4 describes).

OpenDSR (§4.1) requires a certificate issued by a trusted CA to the processor's domain, so in
production the certificate and key come from files (`opendsr_certificate_file`,
`opendsr_private_key_file`) and are checked when loaded: the key matches the certificate, the
certificate is not self-signed, it is in its validity period and names the processor domain. Only
in development mode (what `erasure standalone` runs) is a self-signed certificate made instead,
its private key sealed with the Vault and stored, so a demo works without a CA. Nothing here
commits.
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from erasure.errors import ConfigurationError
from erasure.identifiers import Sealed, Vault
from erasure.integrations.models import ProcessorKey

if TYPE_CHECKING:
    from erasure.config import Settings

_CONTEXT = "opendsr-processor-key"
_LOCK = 0x6F647372  # "odsr"

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

NOT_CONFIGURED = (
    "OpenDSR needs a CA-issued processor certificate: set ERASURE_OPENDSR_CERTIFICATE_FILE and "
    "ERASURE_OPENDSR_PRIVATE_KEY_FILE (a self-signed one is made only in development mode)"
)


@dataclass(frozen=True)
class ProcessorConfig:
    """Where the identity comes from. `domain` is the host OpenDSR requests are received on
    (`X-OpenDSR-Processor-Domain`); the certificate must be issued to it."""

    domain: str
    certificate_file: Path | None = None
    private_key_file: Path | None = None
    self_signed_allowed: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> ProcessorConfig:
        from erasure.config import Mode

        return cls(
            domain=settings.opendsr_processor_domain
            or urlsplit(settings.public_url).hostname
            or "localhost",
            certificate_file=settings.opendsr_certificate_file,
            private_key_file=settings.opendsr_private_key_file,
            self_signed_allowed=settings.mode is Mode.DEVELOPMENT,
        )


@dataclass(frozen=True)
class Identity:
    domain: str
    certificate_pem: str  # the processor certificate, then any intermediates
    self_signed: bool
    key: SigningKey = field(repr=False)

    def sign(self, body: bytes) -> str:
        if isinstance(self.key, rsa.RSAPrivateKey):
            signature = self.key.sign(body, padding.PKCS1v15(), hashes.SHA256())
        else:
            signature = self.key.sign(body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()


def identity(session: Session, *, vault: Vault, config: ProcessorConfig) -> Identity:
    """The configured CA-issued identity; else, in development only, the stored self-signed one.
    Raises ConfigurationError (not configured, or a certificate that does not qualify)."""
    if config.certificate_file is not None and config.private_key_file is not None:
        return _from_files(
            config.certificate_file,
            config.private_key_file,
            config.domain,
            _mtimes(config.certificate_file, config.private_key_file),
        )
    if not config.self_signed_allowed:
        raise ConfigurationError(NOT_CONFIGURED)
    row = _self_signed(session, vault=vault, domain=config.domain)
    pem = vault.open(Sealed(row.key_id, row.private_key_ciphertext), context=_CONTEXT)
    return Identity(config.domain, row.certificate_pem, True, _signing_key(pem.encode()))


def _mtimes(*paths: Path) -> tuple[float, ...]:
    try:
        return tuple(path.stat().st_mtime for path in paths)
    except OSError:
        raise ConfigurationError("the OpenDSR certificate or key file cannot be read") from None


@lru_cache(maxsize=4)
def _from_files(
    certificate_file: Path, private_key_file: Path, domain: str, _mtimes: tuple[float, ...]
) -> Identity:
    # Cached per file modification time: a renewed certificate is picked up without a restart.
    try:
        certificate_pem = certificate_file.read_text()
        key_pem = private_key_file.read_bytes()
    except OSError:
        raise ConfigurationError("the OpenDSR certificate or key file cannot be read") from None
    try:
        chain = x509.load_pem_x509_certificates(certificate_pem.encode())
    except ValueError:
        raise ConfigurationError("the OpenDSR certificate file holds no PEM certificate") from None
    key = _signing_key(key_pem)
    check_certificate(chain[0], key, domain, now=datetime.now(UTC))
    return Identity(domain, certificate_pem, False, key)


def _signing_key(pem: bytes) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ConfigurationError(
            "the OpenDSR private key file holds no unencrypted PEM private key"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ConfigurationError("the OpenDSR private key must be RSA or ECDSA")
    return key


def _public_bytes(key: object) -> bytes:
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return b""
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def names_of(certificate: x509.Certificate) -> set[str]:
    """The DNS names and IP addresses the certificate's SAN lists, lowercased."""
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names = {name.lower() for name in san.get_values_for_type(x509.DNSName)}
    return names | {str(address) for address in san.get_values_for_type(x509.IPAddress)}


def _is_self_signed(certificate: x509.Certificate) -> bool:
    if certificate.issuer != certificate.subject:
        return False
    try:
        certificate.verify_directly_issued_by(certificate)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def check_certificate(
    certificate: x509.Certificate, key: SigningKey, domain: str, *, now: datetime
) -> None:
    """The certificate qualifies as an OpenDSR processor certificate for `domain` signed by
    `key`; raises ConfigurationError naming what does not (never a key or certificate value)."""
    if _public_bytes(certificate.public_key()) != _public_bytes(key.public_key()):
        raise ConfigurationError("the OpenDSR private key does not match the certificate")
    if _is_self_signed(certificate):
        raise ConfigurationError(
            "the OpenDSR certificate is self-signed: OpenDSR requires one issued by a trusted CA"
        )
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise ConfigurationError("the OpenDSR certificate is outside its validity period")
    wanted = domain.lower()
    names = names_of(certificate)
    wildcard = "*." + wanted.split(".", 1)[1] if "." in wanted else None
    if wanted not in names and wildcard not in names:
        raise ConfigurationError(
            "the OpenDSR certificate's subject alternative names do not include the processor "
            "domain (ERASURE_OPENDSR_PROCESSOR_DOMAIN, or the host of ERASURE_PUBLIC_URL)"
        )


def _san_for(domain: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(domain))
    except ValueError:
        return x509.DNSName(domain)


def _self_signed(session: Session, *, vault: Vault, domain: str) -> ProcessorKey:
    """The stored development key pair, created on first use (under a lock: only one is made)."""
    row = session.scalar(select(ProcessorKey).order_by(ProcessorKey.id.desc()).limit(1))
    if row is not None:
        return row
    session.execute(select(func.pg_advisory_xact_lock(_LOCK)))
    row = session.scalar(select(ProcessorKey).order_by(ProcessorKey.id.desc()).limit(1))
    if row is not None:
        return row
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain[:64])])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([_san_for(domain)]), critical=False)
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


def verify(certificate_pem: str, body: bytes, signature: str) -> bool:
    """What a controller does with the published certificate (the first in the file)."""
    public_key = x509.load_pem_x509_certificates(certificate_pem.encode())[0].public_key()
    try:
        raw = base64.b64decode(signature, validate=True)
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(raw, body, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(raw, body, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except (ValueError, InvalidSignature):
        return False
    return True
