"""Settings, read from the environment (prefix ERASURE_). The only module that reads os.environ.

There are no insecure defaults: the database URL and every key must be given. `erasure standalone`
generates keys into its data directory; production supplies them from its secret store.
"""

from __future__ import annotations

import base64
import ipaddress
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from erasure.config_values import Mode, SmtpSecurity, decode_key

__all__ = ["Mode", "Settings", "SmtpSecurity"]


class Settings(BaseSettings):
    """Everything the service can be told. Field descriptions feed the README's table."""

    model_config = SettingsConfigDict(env_prefix="ERASURE_", extra="ignore", frozen=True)

    mode: Mode = Field(
        Mode.PRODUCTION,
        description="`production` or `development`. Production refuses a plain-http public URL "
        "other than loopback; `erasure standalone` runs in development mode.",
    )
    database_url: str = Field(
        repr=False,  # may carry a password
        description="SQLAlchemy URL of the Postgres database, e.g. "
        "`postgresql+psycopg://erasure@db/erasure`. Required.",
    )
    broker_url: str = Field(
        "redis://127.0.0.1:6379/0",
        repr=False,  # may carry a password
        description="Celery broker URL (Redis, or RabbitMQ with `amqp://`).",
    )
    encryption_keys: Annotated[dict[str, SecretStr], NoDecode] = Field(
        description="Keys that encrypt subject identifiers and client secrets at rest (AES-256-GCM), "
        "as `id:base64key,id2:base64key`; the first is used to encrypt, all are tried to decrypt, "
        "so a key can be rotated by putting a new one first. Required.",
    )
    pseudonym_key: SecretStr = Field(
        description="Base64 of 32 random bytes: the HMAC key that turns identifiers into "
        "pseudonyms (blind index and audit log). Never rotate it: old pseudonyms would stop "
        "matching. Required.",
    )
    public_url: str = Field(
        "http://127.0.0.1:8000",
        description="Base URL the API is reached at; used in links in responses.",
    )
    default_org: str | None = Field(
        None,
        description="Org used when a request names none. If unset and exactly one org exists, "
        "that org is used.",
    )
    max_body_bytes: int = Field(
        65536, ge=1024, description="Largest accepted request body, in bytes (413 above)."
    )
    max_json_depth: int = Field(
        8, ge=2, le=64, description="Deepest accepted JSON nesting of a request body (400 above)."
    )
    max_webhook_json_depth: int = Field(
        32,
        ge=2,
        le=256,
        description="Deepest accepted JSON nesting of an inbound ticketing webhook (their "
        "payloads nest deeper than API bodies; 400 above).",
    )
    rate_limit_requests: int = Field(
        1200,
        ge=0,
        description="Requests one API key may make per `rate_limit_window_s` (429 with "
        "Retry-After above; 0 turns the limit off). Counted in Redis, shared by all workers.",
    )
    rate_limit_window_s: int = Field(
        60, ge=1, description="The window of `rate_limit_requests`, in seconds."
    )
    auth_failure_limit: int = Field(
        20,
        ge=0,
        description="Failed authentications per key prefix and per client address after which "
        "that prefix or address is answered 429 until `auth_failure_window_s` ends (0: off).",
    )
    auth_failure_window_s: int = Field(
        300, ge=1, description="The window of `auth_failure_limit`, in seconds."
    )
    forwarded_hops: int = Field(
        0,
        ge=0,
        le=8,
        description="Trusted proxies in front of the API: the client address is taken that many "
        "entries from the right of X-Forwarded-For (0: the socket's address).",
    )
    api_key_cache_s: float = Field(
        5.0,
        ge=0,
        description="How long a process reuses an API key it has read (seconds): a revoked key "
        "is refused, and a changed role applies, everywhere within this time (0: read the key "
        "on every request).",
    )
    database_ping_idle_s: float = Field(
        10.0,
        ge=0,
        description="The API pings a pooled database connection before use only when it sat "
        "idle longer than this (seconds), not on every checkout; see erasure.db.make_engine.",
    )
    idempotency_ttl_s: int = Field(
        86400, ge=60, description="How long an Idempotency-Key is remembered, in seconds."
    )
    audit_signing_key_file: Path | None = Field(
        None,
        description="File holding the Ed25519 key that signs audit checkpoints and certificates "
        "(`erasure signing-keys generate`). Without it no checkpoint or certificate is issued.",
    )
    audit_origin: str | None = Field(
        None,
        description="The audit log's origin (the first line of every checkpoint). It is the "
        "signing key's name, fixed when the key is made (`erasure signing-keys generate --name`); set "
        "this only as a check: a value that contradicts the key or the log refuses to start.",
    )
    audit_checkpoint_interval_s: int = Field(
        60,
        ge=1,
        description="How often a new checkpoint is signed when the log has grown, in seconds.",
    )
    retention_days: int = Field(
        90,
        ge=0,
        description="Days after a request ends before its subject identifiers are destroyed "
        "(crypto-shredding); the audit log and certificates still verify afterwards.",
    )
    access_export_retention_days: int = Field(
        30,
        ge=0,
        description="Days an access request's export is kept after it is ready; then it is "
        "destroyed (its SHA-256 and counts stay in the audit log).",
    )
    access_link_ttl_s: int = Field(
        86400,
        ge=60,
        description="How long a download link of an access export works, seconds.",
    )
    access_entries_per_minute: int = Field(
        90,
        ge=1,
        description="Entries calls an access retrieval may spend per execution user per "
        "`access_entries_window_s` (Salesforce allows 90 per minute).",
    )
    access_entries_window_s: float = Field(
        60.0, gt=0, description="The entries rate window, seconds."
    )
    access_activity_s: float = Field(
        1800.0,
        ge=0,
        description="How long Salesforce keeps a conversation active after its entries are read "
        "(documented: about 30 minutes); an erasure's delete of it waits this long.",
    )
    log_level: str = Field("INFO", description="Python log level of the service's own loggers.")
    log_task_events: bool = Field(
        True,
        description="Log every Celery task received and finished, and every periodic task beat "
        "sends, at INFO (a line every second or two when idle). `erasure standalone` turns it "
        "off unless `--verbose`; warnings and errors are logged either way.",
    )
    heartbeat_interval_s: float = Field(
        5.0,
        gt=0,
        le=60,
        description="How often every worker and beat process records in the database that it is "
        "alive, seconds.",
    )
    heartbeat_timeout_s: float = Field(
        30.0,
        gt=0,
        description="`/readyz` fails while no worker consuming a queue, or no beat, has recorded "
        "a heartbeat for this long, seconds (at least twice `heartbeat_interval_s`).",
    )
    http_header_timeout_s: float = Field(
        10.0,
        gt=0,
        description="`erasure standalone`'s HTTP server: a client that has not sent a request's "
        "line and headers this many seconds after connecting is disconnected.",
    )
    http_body_timeout_s: float = Field(
        30.0,
        gt=0,
        description="`erasure standalone`'s HTTP server: a request body not received this many "
        "seconds after its headers is answered 408.",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Signs the console's session cookies (at least 32 characters, random). "
        "Required in production for the web console, which answers 503 without it; in "
        "development a random key is made per process. `erasure standalone` generates one.",
    )
    redis_url: str | None = Field(
        None,
        repr=False,  # may carry a password
        description="Redis for the Salesforce token cache and 429 holds shared by all workers. "
        "Unset: derived from `broker_url` when that is Redis (else per-process memory).",
    )
    dispatch_interval_s: float = Field(
        1.0, gt=0, description="How often the quota scheduler looks for targets to send, seconds."
    )
    confirm_interval_s: float = Field(
        2.0,
        gt=0,
        description="How often sent deletions are checked in ConversationApiLog, seconds.",
    )
    batch_linger_s: float = Field(
        2.0,
        ge=0,
        description="How long a not-yet-full delete call waits for more targets, seconds (calls "
        "are full under backlog; this only bounds latency at low load).",
    )
    stall_s: float = Field(
        120.0,
        gt=0,
        description="A request left without progress this long has its work published again, seconds.",
    )
    max_task_deliveries: int = Field(
        8,
        ge=2,
        description="A task message delivered (or retried) more often than this is parked for a "
        "person, with an alert.",
    )
    log_final_timeout_s: float = Field(
        86400.0,
        gt=0,
        description="A sent deletion whose ConversationApiLog is still not final (or shows a status "
        "erasure does not know) this many seconds after its call is flagged for a person; polling "
        "goes on.",
    )
    salesforce_read_timeout_s: float = Field(
        30.0, gt=0, description="Read timeout of every Salesforce call, seconds."
    )
    callback_allowed_networks: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Networks (CIDR, comma-separated, e.g. `10.20.0.0/16,127.0.0.1/32`) that "
        "callback and ticket-comment URLs may reach although not public. Unset: private, "
        "loopback, link-local and metadata addresses are refused when subscribing and when "
        "delivering (SSRF guard); set it for on-premise receivers.",
    )
    callback_connect_timeout_s: float = Field(
        3.0, gt=0, description="Connect timeout of every callback and ticket comment, seconds."
    )
    callback_read_timeout_s: float = Field(
        10.0,
        gt=0,
        description="Read timeout of every callback and ticket comment (waiting for the answer), "
        "seconds.",
    )
    delivery_threads: int = Field(
        4,
        ge=1,
        le=64,
        description="Deliveries one run of the deliveries worker makes at once (to several "
        "destinations); a deliveries worker runs up to `--concurrency` runs.",
    )
    delivery_per_destination: int = Field(
        2,
        ge=1,
        description="Deliveries in flight to one destination (scheme://host:port) at once; one "
        "while the destination is failing.",
    )
    delivery_circuit_failures: int = Field(
        5,
        ge=1,
        description="Consecutive failed attempts to one destination that open its circuit: no "
        "attempt for a while, then a single probe.",
    )
    delivery_circuit_open_s: float = Field(
        30.0,
        gt=0,
        description="How long an opened circuit stays open, seconds; doubled after each failed "
        "probe, up to 30 minutes.",
    )

    @field_validator("encryption_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: object) -> object:
        if isinstance(value, str):
            keys: dict[str, str] = {}
            for part in value.split(","):
                key_id, sep, material = part.strip().partition(":")
                if not sep or not key_id or not material:
                    raise ValueError("encryption_keys must look like `id:base64key[,id:base64key]`")
                if key_id in keys:
                    raise ValueError(f"encryption key id {key_id!r} appears twice")
                keys[key_id] = material
            return keys
        return value

    @field_validator("callback_allowed_networks", mode="before")
    @classmethod
    def _parse_networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, (list, tuple)):
            try:
                return tuple(str(ipaddress.ip_network(str(n), strict=False)) for n in value)
            except ValueError as exc:
                raise ValueError(
                    "callback_allowed_networks: CIDR networks, comma-separated"
                ) from exc
        return value

    @field_validator("encryption_keys")
    @classmethod
    def _check_keys(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        if not value:
            raise ValueError("at least one encryption key is required")
        for key_id, material in value.items():
            decode_key(material.get_secret_value(), what=f"encryption key {key_id!r}")
        return value

    opendsr_certificate_file: Path | None = Field(
        None,
        description="PEM file with the OpenDSR processor certificate (then any intermediates), "
        "issued by a trusted CA to the processor domain: it signs OpenDSR responses and "
        "callbacks and is published at discovery. Required for OpenDSR in production (the "
        "OpenDSR routes answer 503 without it); only development mode, which `erasure "
        "standalone` runs, makes a self-signed one instead.",
    )
    opendsr_private_key_file: Path | None = Field(
        None,
        description="PEM file with the unencrypted RSA or ECDSA private key of "
        "`opendsr_certificate_file`.",
    )
    opendsr_processor_domain: str | None = Field(
        None,
        description="The OpenDSR processor domain (`X-OpenDSR-Processor-Domain`), which the "
        "certificate must name. Unset: the host of `public_url`.",
    )

    smtp_host: str | None = Field(
        None,
        description="SMTP server that mails notices to data subjects. Unset: notices are "
        "download-only.",
    )
    smtp_port: int = Field(587, ge=1, le=65535, description="Port of the SMTP server.")
    smtp_security: SmtpSecurity = Field(
        SmtpSecurity.STARTTLS,
        description="`starttls`, `tls` (implicit TLS, usually port 465), "
        "or `none` (plain; production allows it only to a loopback server).",
    )
    smtp_username: str | None = Field(None, description="SMTP login; unset: no login.")
    smtp_password: SecretStr | None = Field(None, description="SMTP password; never logged.")
    smtp_from: str | None = Field(
        None, description="The notices' From address. Required with `smtp_host`."
    )
    smtp_timeout_s: float = Field(15.0, gt=0, description="Timeout of each SMTP operation.")
    notice_retry_s: float = Field(
        60.0,
        gt=0,
        description="Wait before a failed notice mail is tried again; doubles each "
        "time (up to 4 minutes), six tries in all.",
    )

    @field_validator("pseudonym_key")
    @classmethod
    def _check_pseudonym_key(cls, value: SecretStr) -> SecretStr:
        decode_key(value.get_secret_value(), what="pseudonym_key")
        return value

    @field_validator("secret_key")
    @classmethod
    def _check_secret_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("secret_key must be at least 32 characters")
        return value

    @model_validator(mode="after")
    def _heartbeats_have_slack(self) -> Settings:
        if self.heartbeat_timeout_s < 2 * self.heartbeat_interval_s:
            raise ValueError("heartbeat_timeout_s must be at least twice heartbeat_interval_s")
        return self

    @model_validator(mode="after")
    def _opendsr_certificate_and_key_together(self) -> Settings:
        if (self.opendsr_certificate_file is None) != (self.opendsr_private_key_file is None):
            raise ValueError(
                "opendsr_certificate_file and opendsr_private_key_file go together: set both"
            )
        return self

    @model_validator(mode="after")
    def _production_is_strict(self) -> Settings:
        if self.smtp_host and not self.smtp_from:
            raise ValueError("smtp_from is required with smtp_host")
        if self.mode is Mode.PRODUCTION:
            url = urlsplit(self.public_url)
            loopback = {"localhost", "127.0.0.1", "::1"}
            if url.scheme != "https" and url.hostname not in loopback:
                raise ValueError("in production, public_url must be https (or loopback)")
            if self.smtp_security is SmtpSecurity.NONE and self.smtp_host not in {None, *loopback}:
                raise ValueError("in production, smtp_security none is for a loopback server")
        return self

    @property
    def encryption_key_bytes(self) -> dict[str, bytes]:
        """Key id -> raw key, the active (first) key first."""
        return {
            key_id: base64.b64decode(material.get_secret_value())
            for key_id, material in self.encryption_keys.items()
        }

    @property
    def shared_redis_url(self) -> str | None:
        """`redis_url`, or the broker's Redis in a form redis-py understands, or None."""
        if self.redis_url:
            return self.redis_url
        if self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        if self.broker_url.startswith("redis+socket://"):
            return "unix://" + self.broker_url.removeprefix("redis+socket://")
        return None

    @property
    def pseudonym_key_bytes(self) -> bytes:
        return base64.b64decode(self.pseudonym_key.get_secret_value())

    @classmethod
    def from_env(cls) -> Settings:
        """Read the environment; raises pydantic.ValidationError naming what is missing."""
        return cls()  # type: ignore[call-arg]  # required fields come from the environment


def database_url_from_env() -> str:
    """Only the database URL, for tools (Alembic) that need nothing else."""
    import os

    url = os.environ.get("ERASURE_DATABASE_URL")
    if not url:
        raise SystemExit("ERASURE_DATABASE_URL is not set")
    return url


def environment_configures_database() -> bool:
    """Whether ERASURE_DATABASE_URL is set: the commands then act on that (production) database
    rather than on a standalone data directory found nearby."""
    import os

    return bool(os.environ.get("ERASURE_DATABASE_URL"))
