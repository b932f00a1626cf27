"""The /v1 access-request endpoints: submit (the erasure request's body, idempotency and roles,
through the same intake, `erasure.api.intake`), read, and download an export through an
expiring link."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from flask import Response, request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from erasure import free_text, workflow
from erasure.access import links
from erasure.access.cancel import cancel_access
from erasure.access.certify import disclosure_certificate_for
from erasure.access.disclose import open_export
from erasure.access.intake import PendingAccess, get_access
from erasure.access.models import OPEN_ACCESS_STATUSES, AccessRequest, AccessStatus
from erasure.api import intake
from erasure.api.auth import (
    CANCELLERS,
    READERS,
    SUBMITTERS,
    actor,
    current_key,
    integration_scope,
    requires,
)
from erasure.api.openapi import Documented, documented
from erasure.api.schemas import ProblemOut, ReferenceOut
from erasure.api.v1 import bp
from erasure.audit.certificate import dump_certificate
from erasure.core.models import Regulation, Source
from erasure.db import Insert, Send
from erasure.errors import ConfigurationError, NotFound
from erasure.web.inputs import CancelIn, ErasureRequestIn
from erasure.web.resources import get_session, web_resources
from erasure.web.responses import json_response, read_model


class AccessRequestOut(BaseModel):
    """An access request as the API shows it: never a subject identifier, never the export."""

    id: uuid.UUID
    status: AccessStatus
    source: Source
    regulation: Regulation
    received_at: datetime
    due_at: datetime
    reference: ReferenceOut | None
    outcome: str | None
    end_users: int
    conversations: int
    entries: int
    export_sha256: str | None = Field(description="SHA-256 of the JSON export, as audited.")
    ready_at: datetime | None
    expires_at: datetime | None = Field(description="The export is destroyed then.")
    links: dict[str, str | None] = Field(
        description="`self`; `cancel` while it can be cancelled; on a single read by an officer "
        "or admin of a ready request, `export_json` and `export_html`: download links that "
        "expire."
    )
    cancel_reason: str | None = Field(
        None,
        description="Why it was cancelled, decrypted: only on a single read (GET) by an officer "
        "or admin.",
    )


def _url(path: str) -> str:
    return f"{web_resources().settings.public_url.rstrip('/')}{path}"


def _download_links(access: AccessRequest) -> dict[str, str | None]:
    settings = web_resources().settings
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=settings.access_link_ttl_s)
    if access.expires_at is not None:
        expires = min(expires, access.expires_at)
    token = links.mint(web_resources().protection.pseudonym_key, access.id, expires)
    return {
        "export_json": _url(f"/v1/access-exports/{token}?format=json"),
        "export_html": _url(f"/v1/access-exports/{token}?format=html"),
    }


def render(access: AccessRequest, *, with_links: bool = False) -> dict[str, Any]:
    reference = None
    if access.reference_system or access.reference_id:
        reference = ReferenceOut(
            system=access.reference_system, id=access.reference_id, url=access.reference_url
        )
    out_links: dict[str, str | None] = {"self": _url(f"/v1/access-requests/{access.id}")}
    if access.status in OPEN_ACCESS_STATUSES:
        out_links["cancel"] = _url(f"/v1/access-requests/{access.id}/cancel")
    reader = with_links and current_key().role in free_text.NOTE_READERS
    if reader and access.status is AccessStatus.READY:
        out_links.update(_download_links(access))
    cancel_reason = None
    if reader:
        cancel_reason = free_text.open_cancel_reason(web_resources().protection.vault, access)
    return AccessRequestOut(
        id=access.id,
        status=access.status,
        source=access.source,
        regulation=access.regulation,
        received_at=access.received_at,
        due_at=access.due_at,
        reference=reference,
        outcome=access.outcome,
        end_users=access.end_users,
        conversations=access.conversations,
        entries=access.entries,
        export_sha256=access.export_sha256,
        ready_at=access.ready_at,
        expires_at=access.expires_at,
        links=out_links,
        cancel_reason=cancel_reason,
    ).model_dump(mode="json")


@bp.post("/access-requests")
@requires(*SUBMITTERS, overlaps_limiter=True)
@documented(
    Documented(
        summary="Submit an access request (GDPR Art. 15, CCPA right to know)",
        tag="access-requests",
        body=ErasureRequestIn,
        idempotent_key=True,
        responses={
            202: ("Accepted; the export will be prepared.", AccessRequestOut),
            409: ("A request with the same Idempotency-Key is in progress.", ProblemOut),
        },
    )
)
def create_access_request() -> Response:
    body = read_model(ErasureRequestIn)
    wanted = intake.submission(body, body.subject.identifier_pairs())
    # The fingerprint's domain keeps an access and an erasure with the same key and body apart.
    return intake.accept(wanted, _PendingAccessOut, domain=b"access:")


class _PendingAccessOut:
    """An access request's submission (`PendingAccess`: the org goes with the key's claim),
    answered as the API renders it."""

    def __init__(
        self,
        session: Session,
        connection: psycopg.Connection[Any],
        wanted: workflow.Submission,
        send: Send,
    ) -> None:
        resources = web_resources()
        self._pending = PendingAccess(
            session,
            connection,
            wanted,
            protection=resources.protection,
            default_org=resources.settings.default_org,
            send=send,
        )

    def prepare(self) -> tuple[intake.Accepted, list[Insert]]:
        access, inserts = self._pending.prepare()
        return intake.Accepted(render(access), _url(f"/v1/access-requests/{access.id}")), inserts


@bp.get("/access-requests/<uuid:request_id>")
@requires(*READERS)
@documented(
    Documented(
        summary="Get one access request (with download links when its export is ready)",
        tag="access-requests",
        responses={200: ("The request.", AccessRequestOut), 404: ("No such request.", ProblemOut)},
    )
)
def get_access_request(request_id: uuid.UUID) -> Response:
    access = get_access(get_session(), request_id, api_key_id=integration_scope())
    return json_response(200, render(access, with_links=True))


@bp.get("/access-exports/<token>")
@documented(
    Documented(
        summary="Download an access export through its expiring link (`format`: json or html)",
        tag="access-requests",
        responses={200: ("The export.", None), 404: ("Bad, expired or destroyed.", ProblemOut)},
    )
)
def download_export(token: str) -> Response:
    resources = web_resources()
    try:
        request_id = links.check(resources.protection.pseudonym_key, token)
    except links.BadLink as exc:
        raise NotFound("no such export") from exc
    session = get_session()
    access = session.get(AccessRequest, request_id)
    document = open_export(resources.protection.vault, access) if access else None
    if access is None or document is None:
        raise NotFound("no such export")
    as_html = request.args.get("format") == "html"
    response = Response(
        document.html_text if as_html else document.json_text,
        mimetype="text/html" if as_html else "application/json",
    )
    response.headers["Content-Disposition"] = (
        f'attachment; filename="access-{access.id}.{"html" if as_html else "json"}"'
    )
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.get("/access-requests/<uuid:request_id>/certificate")
@requires(*READERS)
@documented(
    Documented(
        summary="The signed certificate of disclosure of an access request whose export is ready",
        tag="audit",
        responses={
            200: ("The certificate; verify it with `erasure audit verify`.", None),
            404: ("No such request.", ProblemOut),
            409: ("No export yet, or not yet checkpointed (see Retry-After).", ProblemOut),
        },
    )
)
def disclosure_certificate(request_id: uuid.UUID) -> Response:
    session = get_session()
    access = get_access(session, request_id, api_key_id=integration_scope())
    signing_key = web_resources().signing_key
    if signing_key is None:
        raise ConfigurationError(
            "no audit signing key is configured (ERASURE_AUDIT_SIGNING_KEY_FILE)"
        )
    document = disclosure_certificate_for(session, access, signing_key=signing_key)
    response = Response(dump_certificate(document), mimetype="application/json")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="disclosure-certificate-{request_id}.json"'
    )
    return response


@bp.post("/access-requests/<uuid:request_id>/cancel")
@requires(*CANCELLERS)
@documented(
    Documented(
        summary="Cancel an access request before its export is built (what was read is discarded)",
        tag="access-requests",
        body=CancelIn,
        responses={
            200: ("Cancelled; nothing will be disclosed.", AccessRequestOut),
            404: ("No such request.", ProblemOut),
            409: ("Its export is already built, or it has ended.", ProblemOut),
        },
    )
)
def cancel_access_request(request_id: uuid.UUID) -> Response:
    body = read_model(CancelIn)
    session = get_session()
    settings = web_resources().settings
    access = cancel_access(
        session,
        request_id,
        reason=body.reason,
        vault=web_resources().protection.vault,
        retention=timedelta(days=settings.access_export_retention_days),
        api_key_id=integration_scope(),
        by=actor(),
    )
    rendered = render(access)
    session.commit()
    return json_response(200, rendered)
