"""POST /v1/erasure-requests/{id}/approve|retry|extend: officers and approvers acting on a request
in flight. Declared on the /v1 blueprint (erasure.api.v1); the operations are erasure.lifecycle.operations."""

from __future__ import annotations

import uuid

from flask import Response
from pydantic import AwareDatetime, Field

from erasure.api.auth import APPROVERS, OPERATORS, actor, integration_scope, requires
from erasure.api.openapi import Documented, documented
from erasure.api.rendering import render
from erasure.api.schemas import ErasureRequestOut, ProblemOut
from erasure.api.v1 import bp
from erasure.lifecycle import operations
from erasure.pipeline.context import utcnow
from erasure.web.inputs import Strict
from erasure.web.relay import kick_relay
from erasure.web.resources import get_session, web_resources
from erasure.web.responses import json_response, read_model


class ApproveIn(Strict):
    note: str | None = Field(None, max_length=500, description="Optional; not stored in the log.")


class RetryIn(Strict):
    targets: list[uuid.UUID] = Field(
        default_factory=list, max_length=1000, description="Failed targets to retry; empty = all."
    )


class ExtendIn(Strict):
    reason: str = Field(min_length=1, max_length=500, description="Why more time is needed.")
    until: AwareDatetime | None = Field(
        None, description="The new deadline; default: the furthest the regulation allows."
    )


def _respond(request_id: uuid.UUID) -> Response:
    from erasure import workflow

    session = get_session()
    session.commit()
    kick_relay()
    return json_response(200, render(workflow.get_request(session, request_id)))


_ERRORS = {404: ("No such request.", ProblemOut), 409: ("Not possible in this state.", ProblemOut)}


@bp.post("/erasure-requests/<uuid:request_id>/approve")
@requires(*APPROVERS)
@documented(
    Documented(
        summary="Approve a request (orgs that require approval)",
        tag="erasure-requests",
        body=ApproveIn,
        responses={200: ("Approved; it will now be carried out.", ErasureRequestOut), **_ERRORS},
    )
)
def approve_erasure_request(request_id: uuid.UUID) -> Response:
    read_model(ApproveIn)
    operations.approve(get_session(), request_id, by=actor(), at=utcnow())
    return _respond(request_id)


@bp.post("/erasure-requests/<uuid:request_id>/retry")
@requires(*OPERATORS)
@documented(
    Documented(
        summary="Retry failed targets (or a stalled request)",
        tag="erasure-requests",
        body=RetryIn,
        responses={200: ("Queued again.", ErasureRequestOut), **_ERRORS},
    )
)
def retry_erasure_request(request_id: uuid.UUID) -> Response:
    body = read_model(RetryIn)
    operations.retry(
        get_session(),
        request_id,
        target_ids=body.targets,
        api_key_id=integration_scope(),
        by=actor(),
        at=utcnow(),
    )
    return _respond(request_id)


@bp.post("/erasure-requests/<uuid:request_id>/extend")
@requires(*OPERATORS)
@documented(
    Documented(
        summary="Extend the deadline, with a reason, within what the regulation allows",
        tag="erasure-requests",
        body=ExtendIn,
        responses={200: ("Extended.", ErasureRequestOut), **_ERRORS},
    )
)
def extend_erasure_request(request_id: uuid.UUID) -> Response:
    body = read_model(ExtendIn)
    operations.extend(
        get_session(),
        request_id,
        reason=body.reason,
        until=body.until,
        vault=web_resources().protection.vault,
        api_key_id=integration_scope(),
        by=actor(),
        at=utcnow(),
    )
    return _respond(request_id)
