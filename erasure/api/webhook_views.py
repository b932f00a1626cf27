"""Inbound ticketing webhooks (`POST /v1/webhooks/<source>`) and their admin endpoints.

A delivery is verified, deduplicated, mapped and acted on in one transaction, then answered 202:
the work is a few inserts, so there is nothing to hand off and nothing accepted can be lost.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, request
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from erasure.access.tickets import TicketAccess
from erasure.accounts.models import ApiKey, Role
from erasure.api.auth import requires
from erasure.api.openapi import Documented, documented
from erasure.api.schemas import ProblemOut
from erasure.core.models import Source
from erasure.errors import NotFound
from erasure.integrations import callbacks, deliveries, mapping, sources
from erasure.integrations.models import WebhookScheme, WebhookSource
from erasure.integrations.signatures import SignatureRejected
from erasure.integrations.transport import AddressGuard
from erasure.web.body import read_body
from erasure.web.problems import Problem, invalid_field
from erasure.web.resources import get_session, web_resources
from erasure.web.responses import json_response, read_model

bp = Blueprint("webhooks", __name__, url_prefix="/v1")

ADMINS = (Role.ADMIN,)
NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,63}$"


class DeliveryOut(BaseModel):
    delivery: int
    outcome: str = Field(
        description="`created`, `ignored`, or `duplicate` (a replay: nothing done)"
    )
    reason: str | None = None
    request_id: uuid.UUID | None = Field(default=None, description="The erasure request created.")
    access_request_id: uuid.UUID | None = Field(
        default=None, description="The access request created (a ticket labelled for access)."
    )


class CommentBackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: HttpUrl = Field(
        description="The ticket system's REST base, e.g. https://x.atlassian.net"
    )
    user: str | None = Field(None, max_length=255, description="API user (Jira: account email)")
    token: str = Field(min_length=1, max_length=2048, description="API token; stored encrypted")


class WebhookSourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="The slug in `/v1/webhooks/<name>`.")
    system: Source = Field(description="jira, zendesk, servicenow or standard_webhooks")
    scheme: WebhookScheme | None = Field(None, description="Defaults to the system's own.")
    secret: str | None = Field(
        None,
        min_length=16,
        max_length=512,
        description="The signing secret, when the sender generates it (Zendesk). Else generated.",
    )
    mapping: dict[str, Any] | None = Field(None, description="Overrides of the mapping preset.")
    org: str | None = Field(None, max_length=64)
    api_key_id: uuid.UUID | None = Field(
        None, description="Requests are attributed to this API key (and visible to it)."
    )
    comment_back: CommentBackIn | None = None


class WebhookSourceOut(BaseModel):
    id: uuid.UUID
    name: str
    system: Source
    scheme: WebhookScheme
    url: str
    mapping: dict[str, Any]
    org: str | None
    api_key_id: uuid.UUID | None
    comment_back: bool
    secret: str | None = Field(None, description="Shown once, when created or rotated.")


class WebhookSourceList(BaseModel):
    items: list[WebhookSourceOut]


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    secret: str | None = Field(None, min_length=16, max_length=512)
    previous_valid_for_s: int = Field(
        86400, ge=0, le=30 * 86400, description="How long the current secrets keep verifying."
    )


def _render(source: WebhookSource, secret: str | None = None) -> dict[str, Any]:
    base = web_resources().settings.public_url.rstrip("/")
    return WebhookSourceOut(
        id=source.id,
        name=source.name,
        system=source.system,
        scheme=source.scheme,
        url=f"{base}/v1/webhooks/{source.name}",
        mapping=mapping.mapping_for(source.system, source.mapping).model_dump(mode="json"),
        org=source.org,
        api_key_id=source.api_key_id,
        comment_back=source.comment_token_ciphertext is not None,
        secret=secret,
    ).model_dump(mode="json")


@bp.post("/webhooks/<source_name>")
@documented(
    Documented(
        summary="Receive a ticketing webhook (Jira, Zendesk, ServiceNow, Standard Webhooks)",
        tag="webhooks",
        responses={
            200: ("A replay of a delivery already acted on: nothing was done.", DeliveryOut),
            202: (
                "Accepted: a request was created, or the ticket was ignored (see reason).",
                DeliveryOut,
            ),
            400: ("The authentic body is not a JSON object.", ProblemOut),
            401: ("Missing, stale or wrong signature.", ProblemOut),
            404: ("No such source.", ProblemOut),
            503: ("Our side is misconfigured; retry later.", ProblemOut),
        },
    )
)
def receive_webhook(source_name: str) -> Response:
    resources = web_resources()
    settings = resources.settings
    session = get_session()
    source = session.scalar(sources.select_source(source_name))
    if source is None or not source.is_active:
        raise Problem(404, "Not found", "no such webhook source", code="not_found")
    body = read_body(max_bytes=settings.max_body_bytes)
    try:
        receipt = deliveries.receive(
            session,
            source,
            headers=request.headers,
            body=body,
            protection=resources.protection,
            default_org=settings.default_org,
            access=TicketAccess(),
        )
    except SignatureRejected as exc:
        session.rollback()
        raise Problem(401, "Invalid signature", exc.reason, code="invalid_signature") from None
    except deliveries.NotJson as exc:
        session.rollback()
        raise Problem(400, "Malformed JSON", str(exc), code="malformed_json") from None
    delivery = receipt.delivery
    if receipt.is_replay:
        session.rollback()
        return json_response(
            200, DeliveryOut(delivery=delivery.id, outcome="duplicate").model_dump(mode="json")
        )
    out = DeliveryOut(
        delivery=delivery.id,
        outcome=delivery.outcome.value,
        reason=delivery.reason,
        request_id=delivery.request_id,
        access_request_id=receipt.access_request_id,
    ).model_dump(mode="json")
    session.commit()
    return json_response(202, out)


@bp.post("/webhook-sources")
@requires(*ADMINS)
@documented(
    Documented(
        summary="Add a webhook source; its secret is shown once",
        tag="webhooks",
        body=WebhookSourceIn,
        responses={201: ("Created.", WebhookSourceOut), 409: ("The name is taken.", ProblemOut)},
    )
)
def create_webhook_source() -> Response:
    body: WebhookSourceIn = read_model(WebhookSourceIn)
    session = get_session()
    if body.api_key_id is not None and session.get(ApiKey, body.api_key_id) is None:
        raise invalid_field("api_key_id", "no such API key")
    comment = body.comment_back
    comment_base_url = str(comment.base_url).rstrip("/") if comment else None
    if comment_base_url is not None:
        # The rules of callback subscriptions, checked now (SSRF): https, no credentials, and a
        # public address unless ERASURE_CALLBACK_ALLOWED_NETWORKS allows it. Delivery checks the
        # address it connects to again.
        guard = AddressGuard.allowing(web_resources().settings.callback_allowed_networks)
        try:
            callbacks.check_url(comment_base_url, guard=guard)
        except callbacks.InvalidCallbackUrl as exc:
            raise invalid_field("comment_back.base_url", str(exc)) from None
    try:
        source, secret = sources.create_source(
            session,
            name=body.name,
            system=body.system,
            vault=web_resources().protection.vault,
            scheme=body.scheme,
            secret=body.secret,
            mapping=body.mapping,
            org=body.org,
            api_key_id=body.api_key_id,
            comment_base_url=comment_base_url,
            comment_user=comment.user if comment else None,
            comment_token=comment.token if comment else None,
        )
    except mapping.InvalidMapping as exc:
        raise invalid_field("mapping", str(exc)) from None
    except ValueError as exc:
        raise invalid_field("secret" if "secret" in str(exc) else "scheme", str(exc)) from None
    rendered = _render(source, secret)
    session.commit()
    response = json_response(201, rendered)
    response.headers["Location"] = rendered["url"]
    return response


@bp.get("/webhook-sources")
@requires(*ADMINS)
@documented(
    Documented(
        summary="List webhook sources (no secrets)",
        tag="webhooks",
        responses={200: ("The sources.", WebhookSourceList)},
    )
)
def list_webhook_sources() -> Response:
    rows = get_session().scalars(sources.select_sources()).all()
    return json_response(200, {"items": [_render(row) for row in rows]})


@bp.post("/webhook-sources/<source_name>/secrets")
@requires(*ADMINS)
@documented(
    Documented(
        summary="Rotate a source's secret: the new one is shown once, the old ones keep verifying "
        "for `previous_valid_for_s`",
        tag="webhooks",
        body=RotateIn,
        responses={201: ("Rotated.", WebhookSourceOut), 404: ("No such source.", ProblemOut)},
    )
)
def rotate_webhook_secret(source_name: str) -> Response:
    body: RotateIn = read_model(RotateIn)
    session = get_session()
    try:
        source = sources.get_source(session, source_name)
    except NotFound:
        raise Problem(404, "Not found", "no such webhook source", code="not_found") from None
    try:
        secret = sources.rotate_secret(
            session,
            source,
            vault=web_resources().protection.vault,
            secret=body.secret,
            previous_valid_for=timedelta(seconds=body.previous_valid_for_s),
        )
    except ValueError as exc:
        raise invalid_field("secret", str(exc)) from None
    rendered = _render(source, secret)
    session.commit()
    return json_response(201, rendered)
