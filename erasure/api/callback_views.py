"""Callback subscriptions, and the officers' view of deliveries: the dead letters, and redelivery."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from erasure.accounts.models import Role
from erasure.api.auth import current_key, requires
from erasure.api.openapi import Documented, documented, query_param
from erasure.api.schemas import ProblemOut
from erasure.integrations import callbacks
from erasure.integrations.models import (
    CallbackChannel,
    CallbackDelivery,
    CallbackStatus,
    CallbackSubscription,
    WebhookSource,
)
from erasure.integrations.transport import AddressGuard
from erasure.web.problems import invalid_field
from erasure.web.resources import get_session, web_resources
from erasure.web.responses import json_response, read_model

bp = Blueprint("callbacks", __name__, url_prefix="/v1")

SUBSCRIBERS = (Role.INTEGRATION, Role.ADMIN)
OFFICERS = (Role.OFFICER, Role.ADMIN)
ADMINS = (Role.ADMIN,)


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, description="https (http only to a loopback address)")
    api_key_id: uuid.UUID | None = Field(
        None, description="Admins: the key whose requests to report. Integrations: their own."
    )
    webhook_source: str | None = Field(
        None, max_length=64, description="Admins: report the requests of this webhook source."
    )


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    url: str
    channel: CallbackChannel
    api_key_id: uuid.UUID | None
    webhook_source_id: uuid.UUID | None
    is_active: bool
    previous_secret_expires_at: datetime | None = Field(
        None, description="During a rotation: when the previous secret stops signing."
    )
    secret: str | None = Field(
        None, description="The Standard Webhooks secret (`whsec_...`), shown once."
    )


class RotateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    previous_valid_for_s: int = Field(
        86400,
        ge=0,
        le=30 * 86400,
        description="How long callbacks keep a second signature with the current secret.",
    )


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut]


class DeliveryOut(BaseModel):
    id: uuid.UUID
    webhook_id: str
    channel: CallbackChannel
    request_id: uuid.UUID | None = Field(description="The erasure request (else NULL).")
    access_request_id: uuid.UUID | None = Field(None, description="The access request.")
    event: str
    status: CallbackStatus
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None


class DeliveryList(BaseModel):
    items: list[DeliveryOut]


def _render_subscription(row: CallbackSubscription, secret: str | None = None) -> dict[str, Any]:
    return SubscriptionOut(
        id=row.id,
        url=row.url,
        channel=row.channel,
        api_key_id=row.api_key_id,
        webhook_source_id=row.webhook_source_id,
        is_active=row.is_active,
        previous_secret_expires_at=row.previous_secret_expires_at,
        secret=secret,
    ).model_dump(mode="json")


def _render_delivery(row: CallbackDelivery) -> dict[str, Any]:
    return DeliveryOut(
        id=row.id,
        webhook_id=f"msg_{row.id.hex}",
        channel=row.channel,
        request_id=row.request_id,
        access_request_id=row.access_request_id,
        event=row.event,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    ).model_dump(mode="json")


@bp.post("/callback-subscriptions")
@requires(*SUBSCRIBERS)
@documented(
    Documented(
        summary="Subscribe to signed status callbacks (Standard Webhooks)",
        tag="callbacks",
        body=SubscriptionIn,
        responses={201: ("Subscribed; the secret is shown once.", SubscriptionOut)},
    )
)
def create_subscription() -> Response:
    body = read_model(SubscriptionIn)
    session = get_session()
    key = current_key()
    api_key_id, source_id = body.api_key_id, None
    if key.role is Role.INTEGRATION:
        if body.webhook_source or (api_key_id and api_key_id != key.id):
            raise invalid_field("api_key_id", "an integration key subscribes to its own requests")
        api_key_id = key.id
    elif body.webhook_source:
        source = session.scalar(
            select(WebhookSource).where(WebhookSource.name == body.webhook_source)
        )
        if source is None:
            raise invalid_field("webhook_source", "no such webhook source")
        source_id = source.id
    if api_key_id is not None and source_id is not None:
        raise invalid_field("api_key_id", "name at most one of api_key_id and webhook_source")
    if api_key_id is None and source_id is None:
        api_key_id = key.id  # the caller's own requests
    try:
        subscription, secret = callbacks.subscribe(
            session,
            url=body.url,
            vault=web_resources().protection.vault,
            guard=AddressGuard.allowing(web_resources().settings.callback_allowed_networks),
            api_key_id=api_key_id,
            webhook_source_id=source_id,
        )
    except callbacks.InvalidCallbackUrl as exc:
        raise invalid_field("url", str(exc)) from None
    rendered = _render_subscription(subscription, secret)
    session.commit()
    return json_response(201, rendered)


@bp.get("/callback-subscriptions")
@requires(*SUBSCRIBERS)
@documented(
    Documented(
        summary="List callback subscriptions (integrations see their own)",
        tag="callbacks",
        responses={200: ("The subscriptions.", SubscriptionList)},
    )
)
def list_subscriptions() -> Response:
    key = current_key()
    query = select(CallbackSubscription).where(CallbackSubscription.request_id.is_(None))
    if key.role is Role.INTEGRATION:
        query = query.where(CallbackSubscription.api_key_id == key.id)
    rows = get_session().scalars(query.order_by(CallbackSubscription.created_at)).all()
    return json_response(200, {"items": [_render_subscription(row) for row in rows]})


@bp.post("/callback-subscriptions/<uuid:subscription_id>/secrets")
@requires(*ADMINS)
@documented(
    Documented(
        summary="Rotate a subscription's signing secret: the new one is shown once; callbacks "
        "carry a signature with each secret for `previous_valid_for_s`",
        tag="callbacks",
        body=RotateIn,
        responses={
            201: ("Rotated; the new secret is shown once.", SubscriptionOut),
            404: ("No such subscription.", ProblemOut),
            409: ("Deleted, or not a Standard Webhooks subscription.", ProblemOut),
        },
    )
)
def rotate_subscription_secret(subscription_id: uuid.UUID) -> Response:
    body = read_model(RotateIn)
    session = get_session()
    subscription, secret = callbacks.rotate_secret(
        session,
        subscription_id,
        vault=web_resources().protection.vault,
        previous_valid_for=timedelta(seconds=body.previous_valid_for_s),
    )
    rendered = _render_subscription(subscription, secret)
    session.commit()
    return json_response(201, rendered)


@bp.delete("/callback-subscriptions/<uuid:subscription_id>")
@requires(*ADMINS)
@documented(
    Documented(
        summary="Delete (deactivate) a subscription: no more callbacks, its pending deliveries "
        "are dead-lettered, its secrets destroyed; the delivery record stays",
        tag="callbacks",
        responses={
            200: ("Deactivated.", SubscriptionOut),
            404: ("No such subscription.", ProblemOut),
        },
    )
)
def delete_subscription(subscription_id: uuid.UUID) -> Response:
    session = get_session()
    subscription = callbacks.deactivate(session, subscription_id)
    rendered = _render_subscription(subscription)
    session.commit()
    return json_response(200, rendered)


@bp.get("/callback-deliveries")
@requires(*OFFICERS)
@documented(
    Documented(
        summary="Callback and ticket-comment deliveries by status (default: the dead letters)",
        tag="callbacks",
        query=[
            query_param(
                "status",
                "pending, delivered or dead (default dead).",
                {"type": "string", "enum": [s.value for s in CallbackStatus]},
            )
        ],
        responses={
            200: ("Deliveries, newest first.", DeliveryList),
            422: ("Bad status.", ProblemOut),
        },
    )
)
def list_deliveries() -> Response:
    raw = request.args.get("status", CallbackStatus.DEAD.value)
    try:
        status = CallbackStatus(raw)
    except ValueError:
        raise invalid_field("status", "must be pending, delivered or dead") from None
    rows = callbacks.list_deliveries(get_session(), statuses=[status])
    return json_response(200, {"items": [_render_delivery(row) for row in rows]})


@bp.post("/callback-deliveries/<uuid:delivery_id>/redeliver")
@requires(*OFFICERS)
@documented(
    Documented(
        summary="Send a dead (or pending) delivery again now, with a fresh retry budget",
        tag="callbacks",
        responses={
            200: ("Queued again.", DeliveryOut),
            404: ("No such delivery.", ProblemOut),
            409: ("Already delivered.", ProblemOut),
        },
    )
)
def redeliver(delivery_id: uuid.UUID) -> Response:
    session = get_session()
    delivery = callbacks.redeliver(session, delivery_id)
    rendered = _render_delivery(delivery)
    session.commit()
    return json_response(200, rendered)
