"""People who sign in to the console: argon2id password hashes, and a lockout after repeated
failures. Framework-free; nothing here commits.

Sign-in answers the same way for an unknown email, a wrong password, a locked or a disabled
account (and spends the same hashing time), so the form tells an attacker nothing about accounts.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from erasure.accounts.models import Role, User

#: Consecutive failures before an account is locked, and for how long.
MAX_FAILED_ATTEMPTS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters
# Verified against when the email is unknown, so both answers take the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class WeakPassword(ValueError):
    pass


class DuplicateUser(ValueError):
    pass


def normalize_email(email: str) -> str:
    return email.strip().lower()


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def create_user(session: Session, *, email: str, name: str, role: Role, password: str) -> User:
    """Add a user (flushes; does not commit). Raises WeakPassword, DuplicateUser."""
    email = normalize_email(email)
    if not email or "@" not in email:
        raise ValueError("an email address is required")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise DuplicateUser("a user with this email already exists")
    user = User(
        email=email,
        name=name.strip() or email,
        role=role,
        password_hash=hash_password(password),
    )
    session.add(user)
    session.flush()
    return user


@dataclass(frozen=True)
class SignIn:
    user: User | None
    locked: bool = False  # for the log line only; the person sees one message for every failure


def authenticate(
    session: Session, email: str, password: str, *, now: datetime | None = None
) -> SignIn:
    """Check a password and update the failure count / lockout in the caller's transaction.

    The caller commits whatever the outcome, so failures are counted even when sign-in fails.
    """
    now = now or datetime.now(UTC)
    user = session.scalar(
        select(User).where(User.email == normalize_email(email)).with_for_update()
    )
    if user is None:
        _verify(_DUMMY_HASH, password)
        return SignIn(None)
    if user.locked_until is not None and user.locked_until > now:
        _verify(_DUMMY_HASH, password)
        return SignIn(None, locked=True)
    if not _verify(user.password_hash, password) or not user.is_active:
        user.failed_attempts += 1
        if user.failed_attempts >= MAX_FAILED_ATTEMPTS:
            user.locked_until = now + LOCKOUT
            user.failed_attempts = 0
        return SignIn(None, locked=user.locked_until is not None and user.locked_until > now)
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.failed_attempts = 0
    user.locked_until = None
    user.last_sign_in_at = now
    return SignIn(user)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.session_version += 1  # every existing session of this user ends
