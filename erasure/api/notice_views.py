"""/v1 notices to data subjects: a request's notices (list, make one, download one) and the
templates they are rendered from (read; admins edit and reset them). Declared on the /v1
blueprint (erasure.api.v1); the domain is erasure.notices."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from flask import Response
from pydantic import BaseModel, Field

from erasure.accounts.models import Role
from erasure.api.auth import OPERATORS, READERS, actor, integration_scope, requires
from erasure.api.openapi import Documented, documented
from erasure.api.rendering import request_url
from erasure.api.schemas import ProblemOut
from erasure.api.v1 import bp
from erasure.errors import NotFound
from erasure.notices import issuing, templates
from erasure.notices.models import Notice, NoticeKind
from erasure.pipeline.context import utcnow
from erasure.web.inputs import Strict
from erasure.web.problems import Problem, invalid_field
from erasure.web.relay import kick_relay
from erasure.web.resources import get_session, web_resources
from erasure.web.responses import json_response, read_model


class NoticeOut(BaseModel):
    """A notice as the API shows it: its kind and delivery, never its text or the address."""

    id: uuid.UUID
    request_id: uuid.UUID
    kind: NoticeKind
    template_version: str = Field(description="SHA-256 of the template it was rendered from.")
    delivery: str = Field(description="queued, sent, failed or download_only.")
    attempts: int
    last_error: str | None = Field(description="Why the last mail attempt failed; no data.")
    created_at: datetime
    sent_at: datetime | None
    text: str | None = Field(description="Where to download its text (officers and admins).")


class NoticeListOut(BaseModel):
    notices: list[NoticeOut]


class NoticeIn(Strict):
    kind: Literal["acknowledgement", "completion"] = Field(
        description="Extension notices are made by the extension itself."
    )


class TemplateIn(Strict):
    subject: str = Field(min_length=1, max_length=templates.MAX_SUBJECT_CHARS)
    body: str = Field(min_length=1, max_length=templates.MAX_BODY_CHARS)


class TemplateOut(BaseModel):
    kind: NoticeKind
    subject: str
    body: str
    version: str = Field(description="SHA-256 of subject and body; notices' leaves name it.")
    is_default: bool
    updated_by: str | None
    updated_at: datetime | None


class TemplateListOut(BaseModel):
    templates: list[TemplateOut]
    variables: dict[str, str] = Field(description="The values a template may use.")


def _notice_out(notice: Notice) -> dict[str, object]:
    base = f"{request_url(notice.request_id)}/notices/{notice.id}"
    return NoticeOut(
        id=notice.id,
        request_id=notice.request_id,
        kind=notice.kind,
        template_version=notice.template_version,
        delivery=notice.delivery.value,
        attempts=notice.attempts,
        last_error=notice.last_error,
        created_at=notice.created_at,
        sent_at=notice.sent_at,
        text=f"{base}/text" if notice.text_ciphertext is not None else None,
    ).model_dump(mode="json")


def _template_out(template: templates.Template) -> dict[str, object]:
    return TemplateOut(
        kind=template.kind,
        subject=template.subject,
        body=template.body,
        version=template.version,
        is_default=template.is_default,
        updated_by=template.updated_by,
        updated_at=template.updated_at,
    ).model_dump(mode="json")


def _kind(text: str) -> NoticeKind:
    try:
        return NoticeKind(text)
    except ValueError:
        raise NotFound("no such notice template") from None


_NOT_FOUND = {404: ("No such request.", ProblemOut)}


@bp.get("/erasure-requests/<uuid:request_id>/notices")
@requires(*READERS)
@documented(
    Documented(
        summary="The notices made for a request, newest first",
        tag="notices",
        responses={200: ("The notices.", NoticeListOut), **_NOT_FOUND},
    )
)
def list_notices(request_id: uuid.UUID) -> Response:
    from erasure import workflow

    session = get_session()
    workflow.get_request(session, request_id, api_key_id=integration_scope())
    notices = issuing.for_request(session, request_id)
    return json_response(200, {"notices": [_notice_out(n) for n in notices]})


@bp.post("/erasure-requests/<uuid:request_id>/notices")
@requires(*OPERATORS)
@documented(
    Documented(
        summary="Make an acknowledgement or a completion letter (mailed if the subject gave an email)",
        tag="notices",
        body=NoticeIn,
        responses={
            201: ("Made; queued for mail, or download-only.", NoticeOut),
            409: ("A completion letter before the request completed.", ProblemOut),
            **_NOT_FOUND,
        },
    )
)
def create_notice(request_id: uuid.UUID) -> Response:
    body = read_model(NoticeIn)
    session = get_session()
    notice = issuing.issue_on_demand(
        session,
        request_id,
        NoticeKind(body.kind),
        vault=web_resources().protection.vault,
        at=utcnow(),
        by=actor(),
    )
    session.commit()
    kick_relay()
    return json_response(201, _notice_out(notice))


@bp.get("/erasure-requests/<uuid:request_id>/notices/<uuid:notice_id>/text")
@requires(*OPERATORS)
@documented(
    Documented(
        summary="A notice's text (text/plain: a Subject line, a blank line, the letter)",
        tag="notices",
        responses={
            200: ("The text.", None),
            404: ("No such notice.", ProblemOut),
            410: ("Destroyed with the request's other personal data at retention.", ProblemOut),
        },
    )
)
def notice_text(request_id: uuid.UUID, notice_id: uuid.UUID) -> Response:
    notice = issuing.get(get_session(), request_id, notice_id)
    rendered = issuing.open_text(web_resources().protection.vault, notice)
    if rendered is None:
        raise Problem(410, "Gone", "destroyed at retention", code="gone")
    response = Response(rendered.to_text(), mimetype="text/plain")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="notice-{notice.kind.value}-{notice.id}.txt"'
    )
    return response


@bp.get("/notice-templates")
@requires(*OPERATORS)
@documented(
    Documented(
        summary="The templates notices are rendered from, and the values they may use",
        tag="notices",
        responses={200: ("The templates.", TemplateListOut)},
    )
)
def list_templates() -> Response:
    session = get_session()
    return json_response(
        200,
        {
            "templates": [_template_out(templates.current(session, k)) for k in NoticeKind],
            "variables": templates.VARIABLES,
        },
    )


@bp.put("/notice-templates/<kind>")
@requires(Role.ADMIN)
@documented(
    Documented(
        summary="Replace a notice template (Jinja2, sandboxed; tried on sample values first)",
        tag="notices",
        body=TemplateIn,
        responses={
            200: ("Saved; new notices use it.", TemplateOut),
            404: ("No such template.", ProblemOut),
        },
    )
)
def save_template(kind: str) -> Response:
    notice_kind = _kind(kind)
    body = read_model(TemplateIn)
    session = get_session()
    try:
        template = templates.save(
            session, notice_kind, subject=body.subject, body=body.body, by=actor()
        )
    except templates.TemplateProblem as problem:
        raise invalid_field(problem.part, str(problem)) from None
    session.commit()
    return json_response(200, _template_out(template))


@bp.delete("/notice-templates/<kind>")
@requires(Role.ADMIN)
@documented(
    Documented(
        summary="Go back to the shipped default template",
        tag="notices",
        responses={
            200: ("The default, now in use.", TemplateOut),
            404: ("No such template.", ProblemOut),
        },
    )
)
def reset_template(kind: str) -> Response:
    notice_kind = _kind(kind)
    session = get_session()
    template = templates.reset(session, notice_kind)
    session.commit()
    return json_response(200, _template_out(template))
