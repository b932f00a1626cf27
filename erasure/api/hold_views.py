"""/v1/holds: legal holds, placed and released by approvers and admins, and the override of a
request's holds. Declared on the /v1 blueprint (erasure.api.v1); the operations are
erasure.lifecycle.holds. A hold's subject is never echoed back (only its kind); its reason is
shown to the approvers and admins who may manage holds."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from flask import Response, request
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from erasure import workflow
from erasure.api.auth import APPROVERS, actor, requires
from erasure.api.openapi import Documented, documented, query_param
from erasure.api.rendering import render
from erasure.api.schemas import ErasureRequestOut, ProblemOut
from erasure.api.v1 import bp
from erasure.core.models import IdentifierKind, Org
from erasure.lifecycle import holds
from erasure.pipeline.context import utcnow
from erasure.pipeline.models import HoldScope, LegalHold
from erasure.web.inputs import ContactId, Email, EndUserId, Phone, PlatformKey, Strict
from erasure.web.problems import invalid_field
from erasure.web.relay import kick_relay
from erasure.web.resources import get_session, web_resources
from erasure.web.responses import json_response, read_model


class HoldSubjectIn(Strict):
    """The held subject: exactly one identifier. It is stored only as its pseudonym, the one
    requests for the same identifier carry, so they are found without keeping the value."""

    phone: Phone | None = Field(None, description="Phone number in E.164 form.")
    email: Email | None = None
    messaging_platform_key: PlatformKey | None = None
    contact_id: ContactId | None = None
    messaging_end_user_id: EndUserId | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> HoldSubjectIn:
        if len(self.pairs()) != 1:
            raise ValueError("give exactly one identifier")
        return self

    def pairs(self) -> list[tuple[IdentifierKind, str]]:
        return [
            (IdentifierKind(name), value)
            for name, value in self.model_dump().items()
            if value is not None
        ]


class HoldIn(Strict):
    scope: Literal["subject", "org"] = Field(
        description="`subject`: one subject's requests; `org`: every request of the org (an "
        "org-wide matter)."
    )
    subject: HoldSubjectIn | None = Field(None, description="Required for a subject hold.")
    org: str | None = Field(
        None, max_length=64, description="The org's name; optional when one org is configured."
    )
    reason: str = Field(
        min_length=1, max_length=1000, description="The matter; stored encrypted, logged as a hash."
    )
    ends_at: AwareDatetime = Field(description="When the hold ends by itself; in the future.")

    @model_validator(mode="after")
    def _subject_matches_scope(self) -> HoldIn:
        if (self.scope == "subject") != (self.subject is not None):
            raise ValueError("a subject hold needs `subject`; an org hold takes none")
        return self


class OverrideIn(Strict):
    reason: str = Field(
        min_length=1,
        max_length=1000,
        description="Why this request may go on despite its holds; stored encrypted.",
    )


class HoldOut(BaseModel):
    id: uuid.UUID
    org: str
    scope: HoldScope
    subject_kind: IdentifierKind | None = Field(description="The kind of the held identifier.")
    state: Literal["active", "released", "ended"]
    reason: str | None = Field(
        description="The matter, decrypted; null once retention destroyed it (a retention "
        "period after the hold ended)."
    )
    ends_at: datetime
    placed_by: str
    created_at: datetime
    released_at: datetime | None
    released_by: str | None
    held_requests: list[uuid.UUID] | None = Field(
        None, description="The requests waiting on it now (when one hold is read)."
    )
    links: dict[str, str]


class HoldPage(BaseModel):
    items: list[HoldOut]


def hold_url(hold_id: uuid.UUID) -> str:
    return f"{web_resources().settings.public_url.rstrip('/')}/v1/holds/{hold_id}"


def _render(legal_hold: LegalHold, *, with_requests: bool = False) -> dict[str, Any]:
    session = get_session()
    url = hold_url(legal_hold.id)
    out = HoldOut(
        id=legal_hold.id,
        org=legal_hold_org(legal_hold),
        scope=legal_hold.scope,
        subject_kind=legal_hold.identifier_kind,
        state=holds.state(legal_hold, utcnow()),  # type: ignore[arg-type]  # one of the three
        reason=holds.open_reason(web_resources().protection.vault, legal_hold),
        ends_at=legal_hold.ends_at,
        placed_by=legal_hold.placed_by,
        created_at=legal_hold.created_at,
        released_at=legal_hold.released_at,
        released_by=legal_hold.released_by,
        held_requests=holds.held_requests(session, legal_hold.id) if with_requests else None,
        links={"self": url, "release": f"{url}/release"},
    )
    return out.model_dump(mode="json")


def legal_hold_org(legal_hold: LegalHold) -> str:
    org = get_session().get(Org, legal_hold.org_id)
    return org.name if org else ""


_ERRORS = {404: ("No such hold.", ProblemOut), 409: ("Not possible in this state.", ProblemOut)}


@bp.post("/holds")
@requires(*APPROVERS)
@documented(
    Documented(
        summary="Place a legal hold on a subject or an org-wide matter",
        tag="holds",
        body=HoldIn,
        responses={201: ("Placed.", HoldOut), 409: ("Not possible.", ProblemOut)},
    )
)
def create_hold() -> Response:
    body = read_model(HoldIn)
    now = utcnow()
    if body.ends_at <= now:
        raise invalid_field("ends_at", "must be in the future")
    resources = web_resources()
    legal_hold = holds.place(
        get_session(),
        holds.Placement(
            reason=body.reason,
            ends_at=body.ends_at,
            org=body.org,
            subject=body.subject.pairs()[0] if body.subject else None,
        ),
        protection=resources.protection,
        default_org=resources.settings.default_org,
        by=actor(),
        at=now,
    )
    rendered = _render(legal_hold, with_requests=True)
    get_session().commit()
    kick_relay()
    return json_response(201, rendered, location=hold_url(legal_hold.id))


@bp.get("/holds")
@requires(*APPROVERS)
@documented(
    Documented(
        summary="List legal holds, newest first",
        tag="holds",
        query=[
            query_param(
                "active", "Only holds in force now (true) or all (false).", {"type": "boolean"}
            )
        ],
        responses={200: ("The holds.", HoldPage), 422: ("Invalid query.", ProblemOut)},
    )
)
def list_holds() -> Response:
    raw = request.args.get("active", "false").lower()
    if raw not in ("true", "false"):
        raise invalid_field("active", "must be true or false")
    rows = holds.list_holds(get_session(), active_only=raw == "true", at=utcnow())
    return json_response(200, {"items": [_render(row) for row in rows]})


@bp.get("/holds/<uuid:hold_id>")
@requires(*APPROVERS)
@documented(
    Documented(
        summary="Get one legal hold, with the requests waiting on it",
        tag="holds",
        responses={200: ("The hold.", HoldOut), 404: ("No such hold.", ProblemOut)},
    )
)
def get_hold(hold_id: uuid.UUID) -> Response:
    return json_response(200, _render(holds.get(get_session(), hold_id), with_requests=True))


@bp.post("/holds/<uuid:hold_id>/release")
@requires(*APPROVERS)
@documented(
    Documented(
        summary="Release a legal hold now; the requests only it held go on",
        tag="holds",
        responses={200: ("Released.", HoldOut), **_ERRORS},
    )
)
def release_hold(hold_id: uuid.UUID) -> Response:
    legal_hold = holds.release(get_session(), hold_id, by=actor(), at=utcnow())
    rendered = _render(legal_hold)
    get_session().commit()
    kick_relay()
    return json_response(200, rendered)


@bp.post("/erasure-requests/<uuid:request_id>/override-hold")
@requires(*APPROVERS)
@documented(
    Documented(
        summary="Let a request waiting on legal holds go on, with a reason",
        tag="holds",
        body=OverrideIn,
        responses={
            200: ("It goes on to deletion.", ErasureRequestOut),
            404: ("No such request.", ProblemOut),
            409: ("Not on hold.", ProblemOut),
        },
    )
)
def override_hold(request_id: uuid.UUID) -> Response:
    body = read_model(OverrideIn)
    session = get_session()
    holds.override(
        session,
        request_id,
        reason=body.reason,
        vault=web_resources().protection.vault,
        by=actor(),
        at=utcnow(),
    )
    session.commit()
    kick_relay()
    return json_response(200, render(workflow.get_request(session, request_id)))
