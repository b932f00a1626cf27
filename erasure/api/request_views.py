"""The /v1 erasure-request endpoints. Views translate HTTP to workflow calls and commit once."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import psycopg
from flask import Response, request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from erasure import workflow
from erasure.api import intake
from erasure.api.auth import (
    CANCELLERS,
    READERS,
    SUBMITTERS,
    actor,
    integration_scope,
    requires,
)
from erasure.api.openapi import Documented, documented, query_param
from erasure.api.rendering import render, request_url
from erasure.api.schemas import (
    ErasureRequestOut,
    ErasureRequestPage,
    ProblemOut,
)
from erasure.api.v1 import bp
from erasure.core.models import ErasureRequest, RequestStatus, Source
from erasure.db import Insert, Send
from erasure.lifecycle import operations
from erasure.web.inputs import (
    UNTIL_END_OF_NOTE,
    UNTIL_END_OF_SCHEMA,
    CancelIn,
    ErasureSubmissionIn,
    UntilEndOf,
)
from erasure.web.problems import field_error
from erasure.web.resources import get_session, web_resources
from erasure.web.responses import json_response, parse_body, read_model


@bp.post("/erasure-requests")
@requires(*SUBMITTERS, overlaps_limiter=True)
@documented(
    Documented(
        summary="Submit an erasure request",
        tag="erasure-requests",
        body=ErasureSubmissionIn,
        idempotent_key=True,
        responses={
            202: ("Accepted; the request will be carried out.", ErasureRequestOut),
            409: ("A request with the same Idempotency-Key is in progress.", ProblemOut),
        },
    )
)
def create_erasure_request() -> Response:
    body = read_model(ErasureSubmissionIn)
    wanted = intake.submission(body, body.identifier_pairs(), scope=body.effective_scope())
    return intake.accept(wanted, _PendingErasure)


class _PendingErasure:
    """An erasure's submission (`workflow.PendingSubmission`: the org, the subject locks and the
    duplicate lookup go with the key's claim), answered as the API renders it."""

    def __init__(
        self,
        session: Session,
        connection: psycopg.Connection[Any],
        wanted: workflow.Submission,
        send: Send,
    ) -> None:
        resources = web_resources()
        self._pending = workflow.PendingSubmission(
            session,
            connection,
            wanted,
            protection=resources.protection,
            default_org=resources.settings.default_org,
            send=send,
        )

    def prepare(self) -> tuple[intake.Accepted, list[Insert]]:
        new, inserts = self._pending.prepare()
        rendered = render(new, link_owner=self._pending.linked_owner)
        return intake.Accepted(rendered, request_url(new.id)), inserts


@bp.get("/erasure-requests/<uuid:request_id>")
@requires(*READERS)
@documented(
    Documented(
        summary="Get one erasure request",
        tag="erasure-requests",
        responses={200: ("The request.", ErasureRequestOut), 404: ("No such request.", ProblemOut)},
    )
)
def get_erasure_request(request_id: uuid.UUID) -> Response:
    erasure_request = workflow.get_request(
        get_session(), request_id, api_key_id=integration_scope()
    )
    return json_response(200, render(erasure_request, reveal_free_text=True))


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: list[RequestStatus] = Field(default_factory=list)
    due_before: UntilEndOf | None = None
    source: Source | None = None
    reference_system: str | None = Field(None, max_length=64)
    reference_id: str | None = Field(None, max_length=255)
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=200)

    @field_validator("status", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, list):
            return [part for item in value for part in str(item).split(",") if part]
        return value


def _encode_cursor(erasure_request: ErasureRequest) -> str:
    raw = json.dumps([erasure_request.created_at.isoformat(), str(erasure_request.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, request_id = json.loads(raw)
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment, uuid.UUID(request_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise field_error(
            400, "cursor", "is not a cursor this API returned", code="invalid_cursor"
        ) from exc


@bp.get("/erasure-requests")
@requires(*READERS)
@documented(
    Documented(
        summary="List erasure requests, newest first",
        tag="erasure-requests",
        query=[
            query_param(
                "status", "Only these states (repeat, or comma-separate).", {"type": "string"}
            ),
            query_param(
                "due_before",
                f"Only requests due before this instant. {UNTIL_END_OF_NOTE}",
                UNTIL_END_OF_SCHEMA,
            ),
            query_param(
                "source",
                "Only requests from this source.",
                {"type": "string", "enum": [s.value for s in Source]},
            ),
            query_param(
                "reference_system",
                "Ticket system of the reference.",
                {"type": "string", "maxLength": 64},
            ),
            query_param(
                "reference_id", "Ticket id of the reference.", {"type": "string", "maxLength": 255}
            ),
            query_param(
                "limit",
                "Page size (1-200, default 50).",
                {"type": "integer", "minimum": 1, "maximum": 200},
            ),
            query_param(
                "cursor",
                "The `next_cursor` of the previous page.",
                {"type": "string", "maxLength": 200},
            ),
        ],
        responses={
            200: ("A page of requests.", ErasureRequestPage),
            400: ("Bad cursor.", ProblemOut),
            422: ("A filter is invalid.", ProblemOut),
        },
    )
)
def list_erasure_requests() -> Response:
    params: dict[str, Any] = {key: request.args.getlist(key) for key in request.args}
    params = {key: (values if key == "status" else values[-1]) for key, values in params.items()}
    query: ListQuery = parse_body(ListQuery, params, root="(query)")
    filters = workflow.ListFilter(
        statuses=query.status,
        due_before=query.due_before,
        source=query.source,
        reference_system=query.reference_system,
        reference_id=query.reference_id,
        api_key_id=integration_scope(),
        after=_decode_cursor(query.cursor) if query.cursor else None,
        limit=query.limit,
    )
    rows = workflow.list_requests(get_session(), filters)
    next_cursor = _encode_cursor(rows[-1][0]) if len(rows) == query.limit else None
    links = {"self": request.url}
    if next_cursor:
        # Encoded, never pasted: a filter value holding `&`, `=`, `#` or `+` must come back as
        # the same filter, not as another one.
        args = request.args.to_dict(flat=False) | {"cursor": [next_cursor]}
        base = web_resources().settings.public_url.rstrip("/")
        links["next"] = f"{base}{request.path}?{urlencode(args, doseq=True)}"
    page = ErasureRequestPage(
        items=[
            ErasureRequestOut.model_validate(render(row, link_owner=owner)) for row, owner in rows
        ],
        next_cursor=next_cursor,
        links=links,
    )
    return json_response(200, page.model_dump(mode="json", by_alias=True))


@bp.post("/erasure-requests/<uuid:request_id>/cancel")
@requires(*CANCELLERS)
@documented(
    Documented(
        summary="Cancel an erasure request",
        tag="erasure-requests",
        body=CancelIn,
        responses={
            200: (
                "Cancelled. Deletions already sent to Salesforce cannot be stopped; `outcome` says so.",
                ErasureRequestOut,
            ),
            404: ("No such request.", ProblemOut),
            409: ("The request has already ended.", ProblemOut),
        },
    )
)
def cancel_erasure_request(request_id: uuid.UUID) -> Response:
    body = read_model(CancelIn)
    session = get_session()
    erasure_request = operations.cancel(
        session,
        request_id,
        reason=body.reason,
        vault=web_resources().protection.vault,
        api_key_id=integration_scope(),
        by=actor(),
    )
    rendered = render(erasure_request)
    session.commit()
    return json_response(200, rendered)
