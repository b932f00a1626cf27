"""The data model: orgs and their credential pools, erasure requests, subjects, targets, delete
calls, the outbox, API keys, idempotency records and the append-only audit leaves.

No I/O and no commits here. Personal data lives only in the columns named `*_ciphertext`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from erasure.db import Base
from erasure.salesforce.config import DeleteIdsIn


def _enum(enum_cls: type[StrEnum], name: str) -> Enum:
    """A StrEnum stored by value as VARCHAR with a named CHECK (no native PG enum to migrate)."""
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
        create_constraint=True,
    )


class RequestStatus(StrEnum):
    RECEIVED = "received"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    RESOLVING = "resolving"
    DELETING = "deleting"
    CONFIRMING = "confirming"
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


class Role(StrEnum):
    OFFICER = "officer"
    APPROVER = "approver"
    AUDITOR = "auditor"
    INTEGRATION = "integration"
    ADMIN = "admin"


class DeleteRoute(StrEnum):
    PARTICIPANTS = "participants"
    CONVERSATIONS = "conversations"


class DeleteCallStatus(StrEnum):
    SENDING = "sending"
    ACCEPTED = "accepted"
    AMBIGUOUS = "ambiguous"
    REJECTED = "rejected"
    RECONCILED = "reconciled"


_uuid_pk: dict[str, Any] = {"primary_key": True, "server_default": func.gen_random_uuid()}


def _now_column(*, comment: str | None = None) -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), comment=comment)


class Org(Base):
    """A Salesforce org with Enhanced Messaging, and how erasure talks to it."""

    __tablename__ = "orgs"

    id: Mapped[uuid.UUID] = mapped_column(**_uuid_pk)
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
        _enum(DeleteIdsIn, "delete_ids_in"),
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
    created_at: Mapped[datetime] = _now_column()

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

    id: Mapped[uuid.UUID] = mapped_column(**_uuid_pk)
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
    created_at: Mapped[datetime] = _now_column()

    org: Mapped[Org] = relationship(back_populates="credentials")

    __table_args__ = (UniqueConstraint("org_id", "name", name="org_name"),)


class ApiKey(Base):
    """An API key: random, shown once, stored as SHA-256 (keys have 256 bits of entropy)."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(**_uuid_pk)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    prefix: Mapped[str] = mapped_column(String(16), unique=True, comment="public part, for lookup")
    key_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_at: Mapped[datetime] = _now_column()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ErasureRequest(Base):
    """One data subject's erasure request, from whichever source it came."""

    __tablename__ = "erasure_requests"

    id: Mapped[uuid.UUID] = mapped_column(**_uuid_pk)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id"), index=True)
    source: Mapped[Source] = mapped_column(_enum(Source, "source"))
    reference_system: Mapped[str | None] = mapped_column(
        String(64), comment="e.g. jira, servicenow"
    )
    reference_id: Mapped[str | None] = mapped_column(String(255), comment="ticket or controller id")
    reference_url: Mapped[str | None] = mapped_column(String(2048))
    regulation: Mapped[Regulation] = mapped_column(_enum(Regulation, "regulation"))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), comment="when the subject asked: the deadline runs from here"
    )
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    status: Mapped[RequestStatus] = mapped_column(
        _enum(RequestStatus, "request_status"), default=RequestStatus.RECEIVED
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
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_keys.id"), index=True)
    attempt: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0", comment="fencing number: bumped on every claim"
    )
    predicted_completion_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    is_at_risk: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    created_at: Mapped[datetime] = _now_column()
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
        # Keyset pagination runs on (created_at, id).
        Index("ix_erasure_requests_created_at_id", "created_at", "id"),
        Index("ix_erasure_requests_status", "status"),
        Index("ix_erasure_requests_reference", "reference_system", "reference_id"),
    )


class SubjectIdentifier(Base):
    """One identifier of the subject: encrypted at rest, with an HMAC blind index for lookups."""

    __tablename__ = "subject_identifiers"

    id: Mapped[uuid.UUID] = mapped_column(**_uuid_pk)
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("erasure_requests.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[IdentifierKind] = mapped_column(_enum(IdentifierKind, "identifier_kind"))
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

    id: Mapped[uuid.UUID] = mapped_column(**_uuid_pk)
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("erasure_requests.id", ondelete="CASCADE"), index=True
    )
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id"))
    kind: Mapped[TargetKind] = mapped_column(_enum(TargetKind, "target_kind"))
    salesforce_id: Mapped[str | None] = mapped_column(
        String(18), comment="record id sent to Salesforce; NULLed by retention"
    )
    status: Mapped[TargetStatus] = mapped_column(
        _enum(TargetStatus, "target_status"), default=TargetStatus.PENDING
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
    created_at: Mapped[datetime] = _now_column()
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

    id: Mapped[uuid.UUID] = mapped_column(**_uuid_pk)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id"))
    credential_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("credentials.id"))
    route: Mapped[DeleteRoute] = mapped_column(_enum(DeleteRoute, "delete_route"))
    status: Mapped[DeleteCallStatus] = mapped_column(
        _enum(DeleteCallStatus, "delete_call_status"), default=DeleteCallStatus.SENDING
    )
    ids_count: Mapped[int] = mapped_column(Integer)
    http_status: Mapped[int | None] = mapped_column(Integer)
    sent_at: Mapped[datetime] = _now_column(comment="the quota window counts from here")
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_delete_calls_credential_id_sent_at", "credential_id", "sent_at"),)


class OutboxMessage(Base):
    """A task to publish once the transaction that wrote it has committed."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    task_name: Mapped[str] = mapped_column(String(128))
    args: Mapped[list[Any]] = mapped_column(JSONB, comment="ids only, never personal data")
    created_at: Mapped[datetime] = _now_column()
    available_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), comment="long waits live here"
    )
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    publish_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    correlation_id: Mapped[str | None] = mapped_column(
        String(64), comment="of the HTTP request or task that caused it, for the logs"
    )

    __table_args__ = (
        Index(
            "ix_outbox_unpublished",
            "available_at",
            postgresql_where=text("published_at IS NULL"),
        ),
    )


class IdempotencyRecord(Base):
    """The first response to an Idempotency-Key, replayed for a retry with the same body."""

    __tablename__ = "idempotency_records"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    api_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[bytes] = mapped_column(
        LargeBinary(32), comment="SHA-256 of method, path, body"
    )
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any]] = mapped_column(JSONB)
    response_location: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = _now_column()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)

    __table_args__ = (UniqueConstraint("api_key_id", "key", name="api_key_key"),)


class AuditLeaf(Base):
    """One event of the audit log. Append-only: the database refuses UPDATE (except the one-time
    assignment of a position), DELETE and TRUNCATE.

    Leaves are inserted "queued" (no position) in the business transaction; the sequencer assigns
    `leaf_index` in batches, so intake never waits on a global lock.
    """

    __tablename__ = "audit_leaves"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    leaf_index: Mapped[int | None] = mapped_column(
        BigInteger, unique=True, comment="position in the Merkle tree; NULL until sequenced"
    )
    kind: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    leaf: Mapped[bytes] = mapped_column(
        LargeBinary, comment="RFC 8785 canonical JSON: the hashed bytes"
    )
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32), comment="SHA-256(0x00 || leaf)")
    created_at: Mapped[datetime] = _now_column()
    sequenced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_audit_leaves_unsequenced", "id", postgresql_where=text("leaf_index IS NULL")),
    )


class AuditNode(Base):
    """A perfect subtree hash of the Merkle tree, stored once it is complete (insert-only), so an
    inclusion or consistency proof needs O(log n) rows, never a rehash of the tree."""

    __tablename__ = "audit_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, comment="0 = leaf hashes")
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditTreeHead(Base):
    """The tree after each sequencer batch: size, root, and the frontier to extend it from."""

    __tablename__ = "audit_tree_heads"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    frontier: Mapped[bytes] = mapped_column(
        LargeBinary, comment="erasure.audit.merkle.Frontier bytes"
    )
    created_at: Mapped[datetime] = _now_column()


class AuditCheckpoint(Base):
    """A signed checkpoint (C2SP tlog-checkpoint in a signed note) of one tree head."""

    __tablename__ = "audit_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text, comment="the signed note, exactly as published")
    key_name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = _now_column()


class Alert(Base):
    """Something a person must look at: an org paused by a 404, a parked poison message, a
    deadline at risk. No personal data: ids and short reasons only."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("erasure_requests.id", ondelete="CASCADE"), index=True
    )
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now_column()
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_alerts_open", "kind", postgresql_where=text("resolved_at IS NULL")),
    )


class TaskDelivery(Base):
    """How many times one task message (Celery task id) was delivered: bounds poison messages."""

    __tablename__ = "task_deliveries"

    task_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    task_name: Mapped[str] = mapped_column(String(128))
    deliveries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    parked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = _now_column()


class Heartbeat(Base):
    """The last sign of life of each worker and beat process, stamped with the database's clock
    (so hosts whose clocks disagree still compare); `/readyz` reads it."""

    __tablename__ = "heartbeats"

    component: Mapped[str] = mapped_column(
        String(64), primary_key=True, comment="`worker:<queue>` for each queue consumed, or `beat`"
    )
    instance: Mapped[str] = mapped_column(
        String(255), primary_key=True, comment="the process: Celery node name, or host:pid"
    )
    beat_at: Mapped[datetime] = _now_column()


# --- Integrations: ticketing webhooks in, signed callbacks out, OpenDSR (erasure.integrations) ---


class WebhookScheme(StrEnum):
    """How an inbound webhook proves where it came from."""

    JIRA = "jira"  # X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>
    ZENDESK = "zendesk"  # base64 HMAC-SHA256 of timestamp + body
    STANDARD_WEBHOOKS = "standard_webhooks"  # webhook-id/-timestamp/-signature, v1
    SHARED_SECRET = "shared_secret"  # noqa: S105  # names a scheme (a secret header, no body integrity), holds no secret


class DeliveryOutcome(StrEnum):
    CREATED = "created"
    IGNORED = "ignored"


class CallbackChannel(StrEnum):
    STANDARD_WEBHOOKS = "standard_webhooks"
    OPENDSR = "opendsr"
    TICKET_COMMENT = "ticket_comment"


class CallbackStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class WebhookSource(Base):
    """A ticketing system that may send erasure requests to `/v1/webhooks/<name>`."""

    __tablename__ = "webhook_sources"

    id: Mapped[uuid.UUID] = mapped_column(**_uuid_pk)
    name: Mapped[str] = mapped_column(String(64), unique=True, comment="slug in the webhook URL")
    system: Mapped[Source] = mapped_column(_enum(Source, "webhook_system"))
    scheme: Mapped[WebhookScheme] = mapped_column(_enum(WebhookScheme, "webhook_scheme"))
    mapping: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, comment="overrides of the system's mapping preset"
    )
    org: Mapped[str | None] = mapped_column(String(64), comment="org name; NULL: the default")
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id"), comment="requests are attributed to this key (its scope)"
    )
    comment_base_url: Mapped[str | None] = mapped_column(
        String(2048), comment="REST API base of the ticket system, for comment-back"
    )
    comment_user: Mapped[str | None] = mapped_column(String(255))
    comment_token_ciphertext: Mapped[bytes | None] = mapped_column(
        LargeBinary, comment="API token for comment-back, AES-256-GCM under `comment_token_key_id`"
    )
    comment_token_key_id: Mapped[str | None] = mapped_column(String(32))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = _now_column()


class WebhookSecret(Base):
    """A verification secret of a source. Several may be valid at once during a rotation."""

    __tablename__ = "webhook_secrets"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_sources.id", ondelete="CASCADE"), index=True
    )
    ciphertext: Mapped[bytes | None] = mapped_column(
        LargeBinary, comment="HMAC key sealed with the Vault (an HMAC check needs the key back)"
    )
    key_id: Mapped[str | None] = mapped_column(String(32))
    secret_hash: Mapped[bytes | None] = mapped_column(
        LargeBinary(32), comment="SHA-256 of a shared secret (compared, never needed back)"
    )
    created_at: Mapped[datetime] = _now_column()
    expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="a rotated-out secret stops verifying after this"
    )

    __table_args__ = (
        CheckConstraint("(ciphertext IS NULL) <> (secret_hash IS NULL)", name="sealed_xor_hashed"),
    )


class WebhookDelivery(Base):
    """An accepted (authentic) inbound delivery, recorded in the transaction that acts on it.
    Its two unique keys make a replay, with or without a fresh delivery id, create nothing."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    source_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_sources.id", ondelete="CASCADE")
    )
    delivery_id: Mapped[str] = mapped_column(String(255), comment="the sender's delivery id")
    digest: Mapped[bytes] = mapped_column(
        LargeBinary(32), comment="SHA-256 of the signed bytes: catches a replay under a new id"
    )
    outcome: Mapped[DeliveryOutcome] = mapped_column(_enum(DeliveryOutcome, "delivery_outcome"))
    reason: Mapped[str | None] = mapped_column(Text, comment="why it was ignored; no personal data")
    ticket_id: Mapped[str | None] = mapped_column(String(255))
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("erasure_requests.id", ondelete="SET NULL"), index=True
    )
    received_at: Mapped[datetime] = _now_column()

    __table_args__ = (
        UniqueConstraint("source_id", "delivery_id", name="uq_webhook_deliveries_source_delivery"),
        UniqueConstraint("source_id", "digest", name="uq_webhook_deliveries_source_digest"),
    )


class CallbackSubscription(Base):
    """Where to POST a request's state changes: for the requests of an API key, of a webhook
    source, or (OpenDSR `status_callback_urls`) of one request."""

    __tablename__ = "callback_subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(**_uuid_pk)
    channel: Mapped[CallbackChannel] = mapped_column(_enum(CallbackChannel, "callback_channel"))
    url: Mapped[str] = mapped_column(String(2048))
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    webhook_source_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhook_sources.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("erasure_requests.id", ondelete="CASCADE"), index=True
    )
    secret_ciphertext: Mapped[bytes | None] = mapped_column(
        LargeBinary, comment="Standard Webhooks signing secret, sealed; NULL for OpenDSR"
    )
    secret_key_id: Mapped[str | None] = mapped_column(String(32))
    previous_secret_ciphertext: Mapped[bytes | None] = mapped_column(
        LargeBinary,
        comment="the secret before the last rotation, sealed; also signs until it expires",
    )
    previous_secret_key_id: Mapped[str | None] = mapped_column(String(32))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="the previous secret stops signing after this"
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = _now_column()


class CallbackDelivery(Base):
    """One outbound message (a signed callback or a ticket comment), delivered from the database
    with retries; `id` is its webhook-id, the same on every attempt."""

    __tablename__ = "callback_deliveries"

    id: Mapped[uuid.UUID] = mapped_column(**_uuid_pk)
    channel: Mapped[CallbackChannel] = mapped_column(_enum(CallbackChannel, "callback_channel"))
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("callback_subscriptions.id", ondelete="CASCADE")
    )
    webhook_source_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhook_sources.id", ondelete="CASCADE"), comment="ticket comments"
    )
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("erasure_requests.id", ondelete="CASCADE"), index=True
    )
    leaf_id: Mapped[int] = mapped_column(BigInteger, comment="the audit leaf it reports")
    event: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text, comment="the exact bytes sent on every attempt; no PII")
    status: Mapped[CallbackStatus] = mapped_column(
        _enum(CallbackStatus, "callback_status"), default=CallbackStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    last_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(
        String(255), comment="HTTP status or error class; never a response body"
    )
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    destination: Mapped[str] = mapped_column(
        Text, server_default="", comment="scheme://host:port of the URL: its circuit breaker"
    )
    claim_id: Mapped[uuid.UUID | None] = mapped_column(
        comment="the attempt in flight; its lease ends at next_attempt_at"
    )
    created_at: Mapped[datetime] = _now_column()

    __table_args__ = (
        UniqueConstraint(
            "subscription_id", "leaf_id", name="uq_callback_deliveries_subscription_leaf"
        ),
        UniqueConstraint("webhook_source_id", "leaf_id", name="uq_callback_deliveries_source_leaf"),
        Index(
            "ix_callback_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_callback_deliveries_status", "status"),
        Index(
            "ix_callback_deliveries_pending_destination",
            "destination",
            postgresql_where=text("status = 'pending'"),
        ),
        # The few rows on the wire: a claim counts a destination's calls in flight with this.
        Index(
            "ix_callback_deliveries_leased",
            "destination",
            postgresql_where=text("claim_id IS NOT NULL"),
        ),
    )


class DeliveryCircuit(Base):
    """The circuit breaker of one delivery destination (scheme://host:port), shared by every
    worker process: consecutive failures open it (no attempt for a while), then one probe is let
    through (half-open), and a success closes it."""

    __tablename__ = "delivery_circuits"

    destination: Mapped[str] = mapped_column(Text, primary_key=True)
    failures: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0", comment="consecutive failed attempts"
    )
    opened_until: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="open (or probing) until then: no other attempt"
    )
    probe_claim_id: Mapped[uuid.UUID | None] = mapped_column(
        comment="the attempt probing the half-open circuit"
    )
    last_error: Mapped[str | None] = mapped_column(
        String(255), comment="HTTP status or error class; never a response body"
    )
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IntegrationCursor(Base):
    """How far a reader of the audit log (the callback dispatcher) has got."""

    __tablename__ = "integration_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    leaf_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime] = _now_column()


class ProcessorKey(Base):
    """The OpenDSR processor key pair: the private key sealed, the certificate public."""

    __tablename__ = "processor_keys"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    private_key_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(32))
    certificate_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now_column()


# --- People who use the console (erasure.ui) ---


class User(Base):
    """A person who signs in to the console, with the same roles as API keys. The password is
    stored only as an argon2id hash; repeated failures lock the account for a while."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(**_uuid_pk)
    email: Mapped[str] = mapped_column(
        String(320), unique=True, comment="sign-in name, lower case (staff, not a data subject)"
    )
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role"))
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
    created_at: Mapped[datetime] = _now_column()
