"""The integrations' tables: webhook sources and their secrets and deliveries, callback
subscriptions and deliveries, delivery circuits, cursors and the OpenDSR processor key.
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
from sqlalchemy.orm import Mapped, mapped_column

from erasure.core.models import Source
from erasure.db import UUID_PK, Base, now_column, str_enum


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

    id: Mapped[uuid.UUID] = mapped_column(**UUID_PK)
    name: Mapped[str] = mapped_column(String(64), unique=True, comment="slug in the webhook URL")
    system: Mapped[Source] = mapped_column(str_enum(Source, "webhook_system"))
    scheme: Mapped[WebhookScheme] = mapped_column(str_enum(WebhookScheme, "webhook_scheme"))
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
    created_at: Mapped[datetime] = now_column()


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
    created_at: Mapped[datetime] = now_column()
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
    outcome: Mapped[DeliveryOutcome] = mapped_column(str_enum(DeliveryOutcome, "delivery_outcome"))
    reason: Mapped[str | None] = mapped_column(Text, comment="why it was ignored; no personal data")
    ticket_id: Mapped[str | None] = mapped_column(String(255))
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("erasure_requests.id", ondelete="SET NULL"), index=True
    )
    received_at: Mapped[datetime] = now_column()

    __table_args__ = (
        UniqueConstraint("source_id", "delivery_id", name="uq_webhook_deliveries_source_delivery"),
        UniqueConstraint("source_id", "digest", name="uq_webhook_deliveries_source_digest"),
    )


class CallbackSubscription(Base):
    """Where to POST a request's state changes: for the requests of an API key, of a webhook
    source, or (OpenDSR `status_callback_urls`) of one request."""

    __tablename__ = "callback_subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(**UUID_PK)
    channel: Mapped[CallbackChannel] = mapped_column(str_enum(CallbackChannel, "callback_channel"))
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
    created_at: Mapped[datetime] = now_column()


class CallbackDelivery(Base):
    """One outbound message (a signed callback or a ticket comment), delivered from the database
    with retries; `id` is its webhook-id, the same on every attempt."""

    __tablename__ = "callback_deliveries"

    id: Mapped[uuid.UUID] = mapped_column(**UUID_PK)
    channel: Mapped[CallbackChannel] = mapped_column(str_enum(CallbackChannel, "callback_channel"))
    subscription_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("callback_subscriptions.id", ondelete="CASCADE")
    )
    webhook_source_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("webhook_sources.id", ondelete="CASCADE"), comment="ticket comments"
    )
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("erasure_requests.id", ondelete="CASCADE"), index=True
    )
    access_request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("access_requests.id", ondelete="CASCADE"),
        index=True,
        comment="an access request's event (then request_id is NULL)",
    )
    leaf_id: Mapped[int] = mapped_column(BigInteger, comment="the audit leaf it reports")
    event: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text, comment="the exact bytes sent on every attempt; no PII")
    status: Mapped[CallbackStatus] = mapped_column(
        str_enum(CallbackStatus, "callback_status"), default=CallbackStatus.PENDING
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
    created_at: Mapped[datetime] = now_column()

    __table_args__ = (
        UniqueConstraint(
            "subscription_id", "leaf_id", name="uq_callback_deliveries_subscription_leaf"
        ),
        UniqueConstraint("webhook_source_id", "leaf_id", name="uq_callback_deliveries_source_leaf"),
        CheckConstraint("(request_id IS NULL) <> (access_request_id IS NULL)", name="one_request"),
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
    updated_at: Mapped[datetime] = now_column()


class ProcessorKey(Base):
    """The OpenDSR processor key pair: the private key sealed, the certificate public."""

    __tablename__ = "processor_keys"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    private_key_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(32))
    certificate_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = now_column()
