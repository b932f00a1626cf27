"""Who may act: API keys (their role and scope) and the console's users."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    DateTime,
    Integer,
    LargeBinary,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from erasure.db import UUID_PK, Base, now_column, str_enum


class Role(StrEnum):
    OFFICER = "officer"
    APPROVER = "approver"
    AUDITOR = "auditor"
    INTEGRATION = "integration"
    ADMIN = "admin"


class ApiKey(Base):
    """An API key: random, shown once, stored as SHA-256 (keys have 256 bits of entropy)."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(**UUID_PK)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"))
    prefix: Mapped[str] = mapped_column(String(16), unique=True, comment="public part, for lookup")
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = now_column()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# --- People who use the console (erasure.ui) ---
class User(Base):
    """A person who signs in to the console, with the same roles as API keys. The password is
    stored only as an argon2id hash; repeated failures lock the account for a while."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(**UUID_PK)
    email: Mapped[str] = mapped_column(
        String(320), unique=True, comment="sign-in name, lower case (staff, not a data subject)"
    )
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[Role] = mapped_column(str_enum(Role, "user_role"))
    password_hash: Mapped[str] = mapped_column(String(255), comment="argon2id PHC string")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    session_version: Mapped[int] = mapped_column(
        Integer,
        default=0,
        server_default="0",
        comment="bumped on sign-out: old cookies stop working",
    )
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = now_column()
