"""The notices' tables: the templates admins edit, and each notice produced for a request."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from erasure.db import UUID_PK, Base, now_column, str_enum


class NoticeKind(StrEnum):
    ACKNOWLEDGEMENT = "acknowledgement"
    EXTENSION = "extension"
    COMPLETION = "completion"


class NoticeDelivery(StrEnum):
    #: Waiting for the mail worker.
    QUEUED = "queued"
    #: Accepted by the SMTP server.
    SENT = "sent"
    #: The SMTP server refused it for good, or every retry failed.
    FAILED = "failed"
    #: Never mailed: the request has no email address, or no SMTP server is configured.
    DOWNLOAD_ONLY = "download_only"


class NoticeTemplate(Base):
    """An admin's version of one kind's template. Without a row, the shipped default is used."""

    __tablename__ = "notice_templates"

    kind: Mapped[NoticeKind] = mapped_column(str_enum(NoticeKind, "notice_kind"), primary_key=True)
    subject: Mapped[str] = mapped_column(
        String(200), comment="Jinja2 (sandboxed): the mail subject"
    )
    body: Mapped[str] = mapped_column(Text, comment="Jinja2 (sandboxed): the plain-text letter")
    version: Mapped[str] = mapped_column(
        String(64), comment="SHA-256 of subject and body: what a notice's audit leaf names"
    )
    updated_by: Mapped[str | None] = mapped_column(
        String(64), comment="user:<id> or api-key:<prefix>"
    )
    updated_at: Mapped[datetime] = now_column()


class Notice(Base):
    """One notice produced for a request. Its text may quote an extension reason (free text that
    may name people), so it is sealed like notes and destroyed with them at retention."""

    __tablename__ = "notices"

    id: Mapped[uuid.UUID] = mapped_column(**UUID_PK)
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("erasure_requests.id", ondelete="CASCADE")
    )
    kind: Mapped[NoticeKind] = mapped_column(str_enum(NoticeKind, "notice_kind"))
    template_version: Mapped[str] = mapped_column(
        String(64), comment="the template's version (SHA-256) it was rendered from"
    )
    text_ciphertext: Mapped[bytes | None] = mapped_column(
        LargeBinary, comment="AES-256-GCM of the rendered subject and body; NULL once shredded"
    )
    text_key_id: Mapped[str | None] = mapped_column(String(32))
    delivery: Mapped[NoticeDelivery] = mapped_column(
        str_enum(NoticeDelivery, "notice_delivery"), default=NoticeDelivery.QUEUED
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True),
        comment="queued: when the mail worker should try; the sweep publishes it again well after",
    )
    last_error: Mapped[str | None] = mapped_column(
        Text, comment="a fixed phrase and the SMTP code; never the address or the text"
    )
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = now_column()
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_notices_request_id_created_at", "request_id", "created_at"),
        Index(
            "ix_notices_queued_next_attempt_at",
            "next_attempt_at",
            postgresql_where=text("delivery = 'queued'"),
        ),
    )
