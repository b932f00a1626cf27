"""The tables every domain shares: orgs and their credential pools, erasure requests, their
subject identifiers, targets and delete calls, with their statuses.

No I/O and no commits here. Personal data lives only in the columns named `*_ciphertext`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from erasure.db import UUID_PK, Base, now_column, str_enum
from erasure.salesforce.config import DeleteIdsIn


class RequestStatus(StrEnum):
    RECEIVED = "received"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    RESOLVING = "resolving"
    DELETING = "deleting"
    CONFIRMING = "confirming"
    #: Stopped before deletion by a legal hold on its subject or org (erasure.pipeline.holds).
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    COMPLETED_NO_DATA = "completed_no_data"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_REQUEST_STATUSES


TERMINAL_REQUEST_STATUSES = frozenset(
    {
        RequestStatus.COMPLETED,
        RequestStatus.COMPLETED_NO_DATA,
        RequestStatus.FAILED,
        RequestStatus.CANCELLED,
        RequestStatus.REJECTED,
    }
)


class TargetStatus(StrEnum):
    PENDING = "pending"
    BLOCKED_OPEN_SESSION = "blocked_open_session"
    BATCHED = "batched"
    REQUESTED = "requested"
    IN_PROGRESS = "in_progress"
    DELETED = "deleted"
    FAILED = "failed"
    WITHDRAWN = "withdrawn"


class TargetKind(StrEnum):
    MESSAGING_END_USER = "messaging_end_user"
    CONVERSATION = "conversation"


class Regulation(StrEnum):
    GDPR = "gdpr"
    UK_GDPR = "uk_gdpr"
    CCPA = "ccpa"
    LGPD = "lgpd"


class Source(StrEnum):
    API = "api"
    UI = "ui"
    BULK = "bulk"  # the console's CSV upload
    JIRA = "jira"
    ZENDESK = "zendesk"
    SERVICENOW = "servicenow"
    STANDARD_WEBHOOKS = "standard_webhooks"
    OPENDSR = "opendsr"


class IdentifierKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    MESSAGING_PLATFORM_KEY = "messaging_platform_key"
    CONTACT_ID = "contact_id"
    MESSAGING_END_USER_ID = "messaging_end_user_id"
    CONVERSATION_ID = "conversation_id"  # a Conversation (0dw...) to erase, end user kept


class ErasureScope(StrEnum):
    """What an erasure deletes: the subject's Messaging end users (and with them every
    conversation), or conversations only, the end users kept."""

    SUBJECT = "subject"
    CONVERSATIONS = "conversations"


class DeleteRoute(StrEnum):
    PARTICIPANTS = "participants"
    CONVERSATIONS = "conversations"


class DeleteCallStatus(StrEnum):
    SENDING = "sending"
    ACCEPTED = "accepted"
    AMBIGUOUS = "ambiguous"
    REJECTED = "rejected"
    RECONCILED = "reconciled"


class Org(Base):
    """A Salesforce org with Enhanced Messaging, and how erasure talks to it."""

    __tablename__ = "orgs"

    id: Mapped[uuid.UUID] = mapped_column(**UUID_PK)
    name: Mapped[str] = mapped_column(String(64), unique=True, comment="short slug used in the API")
    my_domain_url: Mapped[str] = mapped_column(
        String(255), comment="https://{MyDomain}.my.salesforce.com"
    )
    api_version: Mapped[str] = mapped_column(String(8), default="63.0", server_default="63.0")
    requires_approval: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    max_ids_per_call: Mapped[int] = mapped_column(Integer, default=200, server_default="200")
    delete_calls_per_window: Mapped[int] = mapped_column(Integer, default=10, server_default="10")
    window_s: Mapped[int] = mapped_column(
        Integer, default=3600, server_default="3600", comment="length of the quota window, seconds"
    )
    delete_ids_in: Mapped[DeleteIdsIn] = mapped_column(
        str_enum(DeleteIdsIn, "delete_ids_in"),
        default=DeleteIdsIn.BODY,
        server_default=DeleteIdsIn.BODY.value,
        comment="where DELETE calls put the ids: a JSON body or the query string "
        "(undocumented by Salesforce; `erasure salesforce check` finds out)",
    )
    participants_body_field: Mapped[str] = mapped_column(
        String(64), default="participantEntityIds", server_default="participantEntityIds"
    )
    conversations_body_field: Mapped[str] = mapped_column(
        String(64), default="conversationIds", server_default="conversationIds"
    )
    ca_bundle_path: Mapped[str | None] = mapped_column(
        String(1024), comment="CA bundle to trust for this org (the sandbox's self-signed cert)"
    )
    paused_until: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="no delete calls before this (404 from the engagement API)"
    )
    paused_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = now_column()

    credentials: Mapped[list[Credential]] = relationship(
        back_populates="org", order_by="Credential.name"
    )

    __table_args__ = (
        CheckConstraint("max_ids_per_call BETWEEN 1 AND 2000", name="max_ids_per_call_range"),
        CheckConstraint("delete_calls_per_window >= 1", name="calls_per_window_positive"),
        CheckConstraint("window_s >= 1", name="window_positive"),
    )


class Credential(Base):
    """One execution user (External Client App) of an org: each has its own delete quota."""

    __tablename__ = "credentials"

    id: Mapped[uuid.UUID] = mapped_column(**UUID_PK)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str] = mapped_column(String(255), comment="consumer key: not a secret")
    client_secret_ciphertext: Mapped[bytes] = mapped_column(
        LargeBinary, comment="AES-256-GCM under key `key_id`; never stored in plain text"
    )
    key_id: Mapped[str] = mapped_column(String(32))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    paused_until: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="set from a 429's Retry-After, for every worker"
    )
    created_at: Mapped[datetime] = now_column()

    org: Mapped[Org] = relationship(back_populates="credentials")

    __table_args__ = (UniqueConstraint("org_id", "name", name="org_name"),)


class ErasureRequest(Base):
    """One data subject's erasure request, from whichever source it came."""

    __tablename__ = "erasure_requests"

    id: Mapped[uuid.UUID] = mapped_column(**UUID_PK)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id"), index=True)
    source: Mapped[Source] = mapped_column(str_enum(Source, "source"))
    reference_system: Mapped[str | None] = mapped_column(
        String(64), comment="e.g. jira, servicenow"
    )
    reference_id: Mapped[str | None] = mapped_column(String(255), comment="ticket or controller id")
    reference_url: Mapped[str | None] = mapped_column(String(2048))
    regulation: Mapped[Regulation] = mapped_column(str_enum(Regulation, "regulation"))
    scope: Mapped[ErasureScope] = mapped_column(
        str_enum(ErasureScope, "erasure_scope"),
        default=ErasureScope.SUBJECT,
        server_default=ErasureScope.SUBJECT.value,
    )
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), comment="when the subject asked: the deadline runs from here"
    )
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    status: Mapped[RequestStatus] = mapped_column(
        str_enum(RequestStatus, "request_status"), default=RequestStatus.RECEIVED
    )
    outcome: Mapped[str | None] = mapped_column(
        Text, comment="why it ended as it did; no personal data"
    )
    notes_ciphertext: Mapped[bytes | None] = mapped_column(
        LargeBinary, comment="free text may hold personal data, so it is encrypted like identifiers"
    )
    notes_key_id: Mapped[str | None] = mapped_column(String(32))
    cancel_reason_ciphertext: Mapped[bytes | None] = mapped_column(
        LargeBinary, comment="why it was cancelled: free text, encrypted like the notes"
    )
    cancel_reason_key_id: Mapped[str | None] = mapped_column(String(32))
    duplicate_of_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("erasure_requests.id"),
        comment="the first request of the group of requests for the same subject this one "
        "joined (linked through any shared identifier)",
    )
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_keys.id"))
    attempt: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0", comment="fencing number: bumped on every claim"
    )
    predicted_completion_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_at_risk: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = now_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    identifiers: Mapped[list[SubjectIdentifier]] = relationship(
        back_populates="erasure_request", order_by="SubjectIdentifier.kind"
    )
    targets: Mapped[list[Target]] = relationship(back_populates="erasure_request")
    org: Mapped[Org] = relationship()

    __table_args__ = (
        # Keyset pagination runs on (created_at, id); each list filter has an index that starts
        # with its equality column and continues in that order, so a filtered page is an
        # ordered index scan that stops after the page (erasure.core.request_pages).
        Index("ix_erasure_requests_created_at_id", "created_at", "id"),
        # is_at_risk and due_at ride along so the console's at-risk count reads only the index.
        Index(
            "ix_erasure_requests_status_created_at_id",
            "status",
            "created_at",
            "id",
            postgresql_include=["is_at_risk", "due_at"],
        ),
        Index("ix_erasure_requests_source_created_at_id", "source", "created_at", "id"),
        Index("ix_erasure_requests_api_key_created_at_id", "api_key_id", "created_at", "id"),
        Index(
            "ix_erasure_requests_reference_system_created_at_id",
            "reference_system",
            "created_at",
            "id",
        ),
        Index("ix_erasure_requests_reference_id_created_at_id", "reference_id", "created_at", "id"),
        Index("ix_erasure_requests_reference", "reference_system", "reference_id"),
        # The smallest lead (due_at - created_at) bounds a deadline filter's scan on created_at
        # (erasure.core.request_pages.due_before); this index reads it in O(log n).
        Index("ix_erasure_requests_due_lead", text("(due_at - created_at)")),
    )


class SubjectIdentifier(Base):
    """One identifier of the subject: encrypted at rest, with an HMAC blind index for lookups."""

    __tablename__ = "subject_identifiers"

    id: Mapped[uuid.UUID] = mapped_column(**UUID_PK)
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("erasure_requests.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[IdentifierKind] = mapped_column(str_enum(IdentifierKind, "identifier_kind"))
    blind_index: Mapped[bytes] = mapped_column(
        LargeBinary(32), index=True, comment="HMAC-SHA256(pseudonym key, kind:normalized value)"
    )
    ciphertext: Mapped[bytes | None] = mapped_column(
        LargeBinary, comment="AES-256-GCM; NULL once destroyed by retention (crypto-shredding)"
    )
    key_id: Mapped[str | None] = mapped_column(String(32))
    shredded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    erasure_request: Mapped[ErasureRequest] = relationship(back_populates="identifiers")


class Target(Base):
    """One Salesforce record to delete for a request: a MessagingEndUser or a conversation."""

    __tablename__ = "targets"

    id: Mapped[uuid.UUID] = mapped_column(**UUID_PK)
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("erasure_requests.id", ondelete="CASCADE"), index=True
    )
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id"))
    kind: Mapped[TargetKind] = mapped_column(str_enum(TargetKind, "target_kind"))
    salesforce_id: Mapped[str | None] = mapped_column(
        String(18), comment="record id sent to Salesforce; NULLed by retention"
    )
    status: Mapped[TargetStatus] = mapped_column(
        str_enum(TargetStatus, "target_status"), default=TargetStatus.PENDING
    )
    due_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), comment="copied from the request: the scheduler sorts on it"
    )
    attempt: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    delete_call_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("delete_calls.id"), index=True
    )
    leads_deletion: Mapped[bool] = mapped_column(
        Boolean,
        default=False,
        server_default=text("false"),
        comment="the target whose record id its delete call carries; other targets of the "
        "record attach to its deletion",
    )
    log_id: Mapped[str | None] = mapped_column(String(18), comment="ConversationApiLog id")
    log_status: Mapped[str | None] = mapped_column(String(32))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    next_check_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True),
        comment="sent: next log poll; blocked: next session check; pending: held until then",
    )
    created_at: Mapped[datetime] = now_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    erasure_request: Mapped[ErasureRequest] = relationship(back_populates="targets")

    __table_args__ = (
        UniqueConstraint("request_id", "kind", "salesforce_id", name="request_record"),
        Index("ix_targets_status_due_at", "status", "due_at"),
        # Every target of one Salesforce record, whichever request it belongs to.
        Index("ix_targets_record", "org_id", "kind", "salesforce_id"),
        # One deletion in flight per record: at most one leading target that is batched, sent
        # or withdrawn while its call was out (erasure/pipeline/deletions.py).
        Index(
            "uq_targets_one_deletion_in_flight",
            "org_id",
            "kind",
            "salesforce_id",
            unique=True,
            postgresql_where=text(
                "leads_deletion AND status IN ('batched', 'requested', 'in_progress', 'withdrawn')"
            ),
        ),
    )


class DeleteCall(Base):
    """One delete call spent (or being spent) against an execution user's quota."""

    __tablename__ = "delete_calls"

    id: Mapped[uuid.UUID] = mapped_column(**UUID_PK)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id"))
    credential_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("credentials.id"))
    route: Mapped[DeleteRoute] = mapped_column(str_enum(DeleteRoute, "delete_route"))
    status: Mapped[DeleteCallStatus] = mapped_column(
        str_enum(DeleteCallStatus, "delete_call_status"), default=DeleteCallStatus.SENDING
    )
    ids_count: Mapped[int] = mapped_column(Integer)
    http_status: Mapped[int | None] = mapped_column(Integer)
    sent_at: Mapped[datetime] = now_column(comment="the quota window counts from here")
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_delete_calls_credential_id_sent_at", "credential_id", "sent_at"),)


class BulkUpload(Base):
    """One confirmed console CSV upload, so its requests can be followed together afterwards
    (the progress page): which requests it created, never the file or any identifier."""

    __tablename__ = "bulk_uploads"

    id: Mapped[uuid.UUID] = mapped_column(**UUID_PK)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, comment="who confirmed it"
    )
    rows: Mapped[int] = mapped_column(Integer, comment="valid rows in the confirmed file")
    created_at: Mapped[datetime] = now_column()


class BulkUploadRequest(Base):
    """A request a bulk upload created (rows already submitted earlier are not linked again)."""

    __tablename__ = "bulk_upload_requests"

    upload_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bulk_uploads.id", ondelete="CASCADE"), primary_key=True
    )
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("erasure_requests.id", ondelete="CASCADE"), primary_key=True, index=True
    )
