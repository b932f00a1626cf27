"""OpenDSR 2.0 endpoints under /opendsr: discovery and the processor certificate (public), and
create, status and cancel of erasure subject requests (integration keys)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from flask import Blueprint, Response
from pydantic import BaseModel, ConfigDict, Field

from erasure.accounts.models import Role
from erasure.api.auth import current_key, requires
from erasure.api.openapi import Documented, documented
from erasure.api.schemas import ProblemOut
from erasure.core.models import ErasureRequest
from erasure.identifiers import InvalidIdentifier, normalize
from erasure.integrations import callbacks, opendsr, processor
from erasure.integrations.transport import AddressGuard
from erasure.lifecycle import operations
from erasure.web.inputs import ReceivedAt
from erasure.web.problems import Problem
from erasure.web.resources import get_session, web_resources
from erasure.web.responses import json_response, read_model
from erasure.workflow import Identifier

bp = Blueprint("opendsr", __name__, url_prefix="/opendsr")

CONTROLLERS = (Role.INTEGRATION, Role.ADMIN)


class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    identity_type: Literal["email", "phone_number"]
    identity_value: str = Field(min_length=1, max_length=320)
    identity_format: Literal["raw"] = "raw"


class SubjectRequestIn(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenDSR allows extensions we do not use

    subject_request_id: str = Field(min_length=1, max_length=255)
    subject_request_type: Literal["erasure"]
    regulation: Literal["gdpr", "ccpa", "lgpd"] = "gdpr"
    submitted_time: ReceivedAt | None = Field(
        None, description="When the subject asked; not in the future, not before 2000."
    )
    subject_identities: list[IdentityIn] = Field(min_length=1, max_length=20)
    status_callback_urls: list[str] = Field(default_factory=list, max_length=5)
    api_version: str | None = Field(None, max_length=16)


class SubjectRequestOut(BaseModel):
    api_version: str
    controller_id: str | None
    subject_request_id: str
    subject_request_type: str = "erasure"
    request_status: str
    received_time: datetime
    expected_completion_time: datetime
    processor_request_id: str


class DiscoveryOut(BaseModel):
    api_version: str
    supported_identities: list[dict[str, str]]
    supported_subject_request_types: list[str]
    processor_certificate: str


def _render(erasure_request: ErasureRequest) -> dict[str, Any]:
    return SubjectRequestOut(
        api_version=opendsr.API_VERSION,
        controller_id=str(erasure_request.api_key_id) if erasure_request.api_key_id else None,
        subject_request_id=erasure_request.reference_id or "",
        request_status=callbacks.opendsr_status(erasure_request.status),
        received_time=erasure_request.received_at,
        expected_completion_time=erasure_request.predicted_completion_at or erasure_request.due_at,
        processor_request_id=str(erasure_request.id),
    ).model_dump(mode="json")


def _common_name() -> str:
    return urlsplit(web_resources().settings.public_url).hostname or "localhost"


@bp.get("/discovery")
@documented(
    Documented(
        summary="OpenDSR discovery", tag="opendsr", responses={200: ("Capabilities.", DiscoveryOut)}
    )
)
def discovery() -> Response:
    session = get_session()
    processor.current(session, vault=web_resources().protection.vault, common_name=_common_name())
    session.commit()  # the key pair is made on first use
    base = web_resources().settings.public_url.rstrip("/")
    return json_response(
        200,
        DiscoveryOut(
            api_version=opendsr.API_VERSION,
            supported_identities=[
                {"identity_type": kind, "identity_format": "raw"} for kind in opendsr.IDENTITY_KINDS
            ],
            supported_subject_request_types=["erasure"],
            processor_certificate=f"{base}/opendsr/processor-certificate.pem",
        ).model_dump(mode="json"),
    )


@bp.get("/processor-certificate.pem")
def processor_certificate() -> Response:
    session = get_session()
    row = processor.current(
        session, vault=web_resources().protection.vault, common_name=_common_name()
    )
    session.commit()
    return Response(row.certificate_pem, mimetype="application/x-pem-file")


@bp.post("/requests")
@requires(*CONTROLLERS)
@documented(
    Documented(
        summary="Create an OpenDSR erasure request (subject_request_id is the idempotency key)",
        tag="opendsr",
        body=SubjectRequestIn,
        responses={
            201: ("Created.", SubjectRequestOut),
            200: ("A retry of a request already created.", SubjectRequestOut),
        },
    )
)
def create_subject_request() -> Response:
    resources = web_resources()
    settings = resources.settings
    body = read_model(SubjectRequestIn)
    identifiers: list[Identifier] = []
    for index, identity in enumerate(body.subject_identities):
        kind = opendsr.IDENTITY_KINDS[identity.identity_type]
        try:
            identifiers.append(Identifier(kind, normalize(kind, identity.identity_value)))
        except InvalidIdentifier as exc:
            field = f"subject_identities.{index}.identity_value"
            raise Problem(
                422,
                "Invalid request",
                f"{field}: {exc}",
                code="validation_error",
                errors=[{"field": field, "detail": str(exc)}],
            ) from None
    session = get_session()
    try:
        erasure_request, created = opendsr.create(
            session,
            opendsr.OpenDsrRequest(
                subject_request_id=body.subject_request_id,
                regulation=opendsr.REGULATIONS[body.regulation],
                identifiers=identifiers,
                submitted_time=body.submitted_time,
                status_callback_urls=body.status_callback_urls,
            ),
            api_key_id=current_key().id,
            protection=resources.protection,
            default_org=settings.default_org,
            guard=AddressGuard.allowing(settings.callback_allowed_networks),
        )
    except callbacks.InvalidCallbackUrl as exc:
        field = "status_callback_urls"
        raise Problem(
            422,
            "Invalid request",
            f"{field}: {exc}",
            code="validation_error",
            errors=[{"field": field, "detail": str(exc)}],
        ) from None
    rendered = _render(erasure_request)
    if created:
        session.commit()
    else:
        session.rollback()
    return json_response(201 if created else 200, rendered)


@bp.get("/requests/<subject_request_id>")
@requires(*CONTROLLERS)
@documented(
    Documented(
        summary="Status of an OpenDSR request",
        tag="opendsr",
        responses={200: ("The status.", SubjectRequestOut), 404: ("No such request.", ProblemOut)},
    )
)
def get_subject_request(subject_request_id: str) -> Response:
    erasure_request = opendsr.find(
        get_session(), api_key_id=current_key().id, subject_request_id=subject_request_id
    )
    return json_response(200, _render(erasure_request))


@bp.delete("/requests/<subject_request_id>")
@requires(*CONTROLLERS)
@documented(
    Documented(
        summary="Cancel an OpenDSR request while it is pending",
        tag="opendsr",
        responses={
            202: ("Cancelled.", SubjectRequestOut),
            404: ("No such request.", ProblemOut),
            409: ("No longer pending.", ProblemOut),
        },
    )
)
def cancel_subject_request(subject_request_id: str) -> Response:
    session = get_session()
    api_key_id = current_key().id
    pending = opendsr.cancellable(
        session, api_key_id=api_key_id, subject_request_id=subject_request_id
    )
    erasure_request = operations.cancel(
        session,
        pending.id,
        reason=opendsr.CANCEL_REASON,
        vault=web_resources().protection.vault,
        by=f"opendsr:{api_key_id}",
    )
    rendered = _render(erasure_request)
    session.commit()
    return json_response(202, rendered)
