"""The tables of access requests: the request, its sealed identifiers, the conversations it reads
(each read sealed until the export is built) and the entries calls spent per execution user.

Personal data lives only in the `*_ciphertext` columns and in Salesforce record ids (which
retention clears, as it does for erasure targets).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from erasure.core.models import IdentifierKind, Regulation, Source
from erasure.db import UUID_PK, Base, now_column, str_enum


class AccessStatus(StrEnum):
    RECEIVED = "received"
    RETRIEVING = "retrieving"
    READY = "ready"
    COMPLETED_NO_DATA = "completed_no_data"
    FAILED = "failed"
    #: The export reached its retention date and was destroyed (its hash stays in the audit log).
    DESTROYED = "destroyed"
    #: Cancelled before its export was built: what was read so far is discarded.
    CANCELLED = "cancelled"


OPEN_ACCESS_STATUSES = frozenset({AccessStatus.RECEIVED, AccessStatus.RETRIEVING})


class ReadStatus(StrEnum):
    PENDING = "pending"
    READ = "read"
    #: Deleted by an erasure before it could be read: nothing left to disclose.
    ERASED = "erased"


class AccessRequest(Base):
    """One data subject's access request: same subject, regulation, reference and deadline
    rules as an erasure request."""

    __tablename__ = "access_requests"

    id: Mapped[uuid.UUID] = mapped_column(**UUID_PK)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id"), index=True)
    source: Mapped[Source] = mapped_column(str_enum(Source, "source"))
    reference_system: Mapped[str | None] = mapped_column(String(64))
    reference_id: Mapped[str | None] = mapped_column(String(255))
    reference_url: Mapped[str | None] = mapped_column(String(2048))
    regulation: Mapped[Regulation] = mapped_column(str_enum(Regulation, "regulation"))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    status: Mapped[AccessStatus] = mapped_column(
        str_enum(AccessStatus, "access_status"), default=AccessStatus.RECEIVED
    )
    outcome: Mapped[str | None] = mapped_column(Text, comment="a fixed phrase; no personal data")
    notes_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    notes_key_id: Mapped[str | None] = mapped_column(String(32))
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_keys.id"))
    attempt: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="retrieval waits until then (entries budget, erasure)"
    )
    end_users: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    conversations: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    entries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    export_ciphertext: Mapped[bytes | None] = mapped_column(
        LargeBinary, comment="the export (JSON and HTML), AES-256-GCM; NULL once destroyed"
    )
    export_key_id: Mapped[str | None] = mapped_column(String(32))
    export_sha256: Mapped[str | None] = mapped_column(
        String(64), comment="SHA-256 of the JSON export, as the audit log records it"
    )
    ready_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="the export's retention date: destroyed then"
    )
    destroyed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancel_reason_ciphertext: Mapped[bytes | None] = mapped_column(
        LargeBinary, comment="why it was cancelled (free text), AES-256-GCM; NULL at retention"
    )
    cancel_reason_key_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = now_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    __table_args__ = (Index("ix_access_requests_status_next", "status", "next_attempt_at"),)


class AccessIdentifier(Base):
    """One identifier of the subject, sealed and blind-indexed as erasure's are."""

    __tablename__ = "access_identifiers"

    id: Mapped[uuid.UUID] = mapped_column(**UUID_PK)
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("access_requests.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[IdentifierKind] = mapped_column(str_enum(IdentifierKind, "identifier_kind"))
    blind_index: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_id: Mapped[str | None] = mapped_column(String(32))
    shredded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AccessRead(Base):
    """One conversation of the subject to read: its entries are sealed here until the export."""

    __tablename__ = "access_reads"

    id: Mapped[uuid.UUID] = mapped_column(**UUID_PK)
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("access_requests.id", ondelete="CASCADE"), index=True
    )
    end_user_id: Mapped[str | None] = mapped_column(String(18))
    conversation_id: Mapped[str | None] = mapped_column(String(18))
    conversation_identifier: Mapped[str | None] = mapped_column(
        String(64), comment="the ConversationIdentifier (a UUID) entries are read by"
    )
    status: Mapped[ReadStatus] = mapped_column(
        str_enum(ReadStatus, "access_read_status"), default=ReadStatus.PENDING
    )
    entries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    entries_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_id: Mapped[str | None] = mapped_column(String(32))
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("request_id", "conversation_id", name="access_read_once"),)


class EntryCall(Base):
    """One `GET conversation-entries` spent by an execution user: the entries window (90 per
    minute) is counted from this table, as delete quota is from `delete_calls`."""

    __tablename__ = "entry_calls"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    credential_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("credentials.id", ondelete="CASCADE")
    )
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_entry_calls_credential_sent_at", "credential_id", "sent_at"),)
