"""OpenDSR 2.0 endpoints under /opendsr/v2 (the major version in the path, §3.4): discovery and the
processor certificate (public), and create, status and cancel of erasure subject requests, and
create and status of access subject requests (integration keys). Every answer is signed and every error is OpenDSR's (erasure.api.
opendsr_responses). The same views answer at the unversioned /opendsr paths of earlier releases
and at OpenDSR's prior name, /opengdpr/v1 (§10.1), as undocumented aliases."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from flask import Blueprint, Response
from pydantic import BaseModel, ConfigDict, Field

from erasure.access.models import AccessRequest
from erasure.access.opendsr_intake import opendsr_status as access_status
from erasure.accounts.models import Role
from erasure.api.auth import current_key, requires
from erasure.api.openapi import Documented, documented
from erasure.api.opendsr_responses import identity, register_error_handlers, signed
from erasure.api.opendsr_subjects import conversation_extension, create_any, find_any
from erasure.core.models import ErasureRequest, ErasureScope
from erasure.errors import InvalidTransition
from erasure.identifiers import InvalidIdentifier, normalize
from erasure.integrations import callbacks, opendsr
from erasure.integrations.callbacks.payloads import iso
from erasure.integrations.transport import AddressGuard
from erasure.lifecycle import operations
from erasure.web.body import read_body
from erasure.web.inputs import ReceivedAt
from erasure.web.problems import invalid_field
from erasure.web.resources import get_session, web_resources
from erasure.web.responses import read_model
from erasure.workflow import Identifier

bp = Blueprint("opendsr", __name__)
register_error_handlers(bp)

PREFIX = "/opendsr/v2"
#: Where the same views answer too: (prefix, requests collection) of the unversioned routes of
#: earlier releases and of OpenGDPR, OpenDSR's prior name.
ALIASES = (("/opendsr", "requests"), ("/opengdpr/v1", "opengdpr_requests"))

CONTROLLERS = (Role.INTEGRATION, Role.ADMIN)


class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    identity_type: Literal["email", "phone_number"]
    identity_value: str = Field(min_length=1, max_length=320)
    identity_format: Literal["raw"] = "raw"


class SubjectRequestIn(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenDSR allows extensions we do not use

    subject_request_id: str = Field(min_length=1, max_length=255)
    subject_request_type: Literal["erasure", "access"]
    regulation: Literal["gdpr", "ccpa", "lgpd"] = "gdpr"
    submitted_time: ReceivedAt | None = Field(
        None, description="When the subject asked; not in the future, not before 2000."
    )
    subject_identities: list[IdentityIn] = Field(min_length=1, max_length=20)
    status_callback_urls: list[str] = Field(default_factory=list, max_length=5)
    api_version: str | None = Field(None, max_length=16)
    extensions: dict[str, Any] | None = Field(
        None,
        description="Processor extensions keyed by processor domain. Ours (the host of this "
        "service's public URL), on an erasure: `scope` and `conversations` as the intake API "
        "takes them, to erase conversations only. Others' are ignored.",
    )


class SubjectRequestOut(BaseModel):
    """Create (201), status (200) and cancel (202) answers: what §7.3, §8.3 and §9.2 require of
    each, and a little more (all of it signed)."""

    api_version: str
    controller_id: str
    subject_request_id: str
    subject_request_type: str = "erasure"
    request_status: str
    received_time: str
    expected_completion_time: str
    processor_request_id: str
    results_url: str | None = Field(None, description="The erasure certificate, once completed.")
    encoded_request: str | None = Field(None, description="Create: the request body, base64.")
    processor_signature: str | None = Field(
        None,
        description="Create and cancel: base64 signature of the RFC 8785 canonical JSON of this "
        "body without this member.",
    )


class ErrorDetailOut(BaseModel):
    domain: str
    reason: str
    message: str
    location: str | None = None


class ErrorObjectOut(BaseModel):
    code: int
    message: str
    errors: list[ErrorDetailOut]


class ErrorOut(BaseModel):
    error: ErrorObjectOut


class DiscoveryOut(BaseModel):
    api_version: str
    supported_identities: list[dict[str, str]]
    supported_subject_request_types: list[str]
    processor_certificate: str
    processor_certificate_self_signed: bool = Field(
        description="True only in development mode (`erasure standalone`): OpenDSR requires a "
        "CA-issued certificate, which production is configured with."
    )


def _base() -> str:
    return web_resources().settings.public_url.rstrip("/")


def _render(subject_request: ErasureRequest | AccessRequest, **extra: str) -> dict[str, Any]:
    if isinstance(subject_request, AccessRequest):
        kind, status = "access", access_status(subject_request.status)
        expected = subject_request.due_at
    else:
        kind, status = "erasure", callbacks.opendsr_status(subject_request.status)
        expected = subject_request.predicted_completion_at or subject_request.due_at
    document = {
        "api_version": opendsr.API_VERSION,
        "controller_id": str(subject_request.api_key_id or ""),
        "subject_request_id": subject_request.reference_id or "",
        "subject_request_type": kind,
        "request_status": status,
        # When we received it (§7.3), not when the subject asked (`submitted_time`).
        "received_time": iso(subject_request.created_at),
        "expected_completion_time": iso(expected),
        "processor_request_id": str(subject_request.id),
    }
    if status == "completed":
        # The certificate of erasure, or of disclosure (the export itself is the officer's).
        document["results_url"] = f"{_base()}/v1/{kind}-requests/{subject_request.id}/certificate"
    return document | extra


def _alias(view: Callable[..., Response], rule: str, endpoint: str) -> None:
    """`view` at `rule` too, out of the API description (one operation per view there), with its
    roles on record for the checks that every protected route is covered."""

    def alias(**kwargs: Any) -> Response:
        return view(**kwargs)

    alias.required_roles = getattr(view, "required_roles", None)  # type: ignore[attr-defined]
    methods = [method for method in ("GET", "POST", "DELETE") if endpoint.startswith(method)]
    bp.add_url_rule(rule, endpoint=endpoint, view_func=alias, methods=methods)


ERRORS = {400: ("Invalid, unknown, conflicting or not cancellable.", ErrorOut)}


@bp.get(f"{PREFIX}/discovery")
@documented(
    Documented(
        summary="OpenDSR discovery",
        tag="opendsr",
        responses={200: ("Capabilities.", DiscoveryOut)},
        errors=ErrorOut,
    )
)
def discovery() -> Response:
    signer = identity()
    document = DiscoveryOut(
        api_version=opendsr.API_VERSION,
        supported_identities=[
            {"identity_type": kind, "identity_format": "raw"} for kind in opendsr.IDENTITY_KINDS
        ],
        supported_subject_request_types=["erasure", "access"],
        processor_certificate=f"{_base()}{PREFIX}/processor-certificate.pem",
        processor_certificate_self_signed=signer.self_signed,
    ).model_dump(mode="json")
    return signed(200, document, processor_signature=False)


@bp.get(f"{PREFIX}/processor-certificate.pem")
def processor_certificate() -> Response:
    return Response(identity().certificate_pem, mimetype="application/x-pem-file")


@bp.post(f"{PREFIX}/requests")
@requires(*CONTROLLERS)
@documented(
    Documented(
        summary="Create an OpenDSR erasure or access request (subject_request_id is the "
        "idempotency key; status callbacks are sent for erasures only)",
        errors=ErrorOut,
        tag="opendsr",
        body=SubjectRequestIn,
        responses={
            201: ("Created.", SubjectRequestOut),
            200: ("A retry of a request already created, answered as it was.", SubjectRequestOut),
            **ERRORS,
        },
    )
)
def create_subject_request() -> Response:
    identity()  # nothing is created that could not be answered (503 without a certificate)
    resources = web_resources()
    settings = resources.settings
    body = read_model(SubjectRequestIn)
    identifiers: list[Identifier] = []
    for index, identity_in in enumerate(body.subject_identities):
        kind = opendsr.IDENTITY_KINDS[identity_in.identity_type]
        try:
            identifiers.append(Identifier(kind, normalize(kind, identity_in.identity_value)))
        except InvalidIdentifier as exc:
            raise invalid_field(f"subject_identities.{index}.identity_value", str(exc)) from None
    if body.subject_request_type == "access" and body.status_callback_urls:
        raise invalid_field(
            "status_callback_urls", "status callbacks are sent for erasure requests only"
        )
    extension = conversation_extension(body.extensions, public_url=settings.public_url)
    scope = ErasureScope.SUBJECT
    if extension is not None:
        if body.subject_request_type == "access":
            raise invalid_field(
                f"extensions.{urlsplit(settings.public_url).hostname}",
                "conversation scope is for erasure requests only",
            )
        identifiers += [Identifier(kind, value) for kind, value in extension.conversation_pairs()]
        scope = extension.effective_scope()
    session = get_session()
    try:
        subject_request, created = create_any(
            session,
            opendsr.OpenDsrRequest(
                subject_request_id=body.subject_request_id,
                regulation=opendsr.REGULATIONS[body.regulation],
                identifiers=identifiers,
                submitted_time=body.submitted_time,
                status_callback_urls=body.status_callback_urls,
                request_type=body.subject_request_type,
                scope=scope,
            ),
            api_key_id=current_key().id,
            protection=resources.protection,
            default_org=settings.default_org,
            guard=AddressGuard.allowing(settings.callback_allowed_networks),
        )
    except callbacks.InvalidCallbackUrl as exc:
        raise invalid_field("status_callback_urls", str(exc)) from None
    document = _render(
        subject_request,
        encoded_request=base64.b64encode(
            read_body(max_bytes=settings.max_body_bytes)  # the bytes read_model read
        ).decode(),
    )
    if created:
        session.commit()
    else:
        session.rollback()
    return signed(201 if created else 200, document, processor_signature=True)


@bp.get(f"{PREFIX}/requests/<subject_request_id>")
@requires(*CONTROLLERS)
@documented(
    Documented(
        summary="Status of an OpenDSR request",
        errors=ErrorOut,
        tag="opendsr",
        responses={200: ("The status.", SubjectRequestOut), **ERRORS},
    )
)
def get_subject_request(subject_request_id: str) -> Response:
    subject_request = find_any(
        get_session(), api_key_id=current_key().id, subject_request_id=subject_request_id
    )
    return signed(200, _render(subject_request), processor_signature=False)


@bp.delete(f"{PREFIX}/requests/<subject_request_id>")
@requires(*CONTROLLERS)
@documented(
    Documented(
        summary="Cancel an OpenDSR erasure request while it is pending",
        errors=ErrorOut,
        tag="opendsr",
        responses={202: ("Cancelled.", SubjectRequestOut), **ERRORS},
    )
)
def cancel_subject_request(subject_request_id: str) -> Response:
    identity()  # nothing is cancelled that could not be answered
    session = get_session()
    api_key_id = current_key().id
    if isinstance(
        find_any(session, api_key_id=api_key_id, subject_request_id=subject_request_id),
        AccessRequest,
    ):
        raise InvalidTransition("only an erasure request can be cancelled")
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
    # received_time here is when the cancellation was received (§9.2).
    document = _render(erasure_request, received_time=iso(datetime.now(UTC)) or "")
    session.commit()
    return signed(202, document, processor_signature=True)


for _prefix, _collection in ALIASES:
    _name = _prefix.strip("/").replace("/", "_")
    _alias(discovery, f"{_prefix}/discovery", f"GET_{_name}_discovery")
    _alias(create_subject_request, f"{_prefix}/{_collection}", f"POST_{_name}_create")
    _alias(
        get_subject_request, f"{_prefix}/{_collection}/<subject_request_id>", f"GET_{_name}_status"
    )
    _alias(
        cancel_subject_request,
        f"{_prefix}/{_collection}/<subject_request_id>",
        f"DELETE_{_name}_cancel",
    )
_alias(processor_certificate, "/opendsr/processor-certificate.pem", "GET_opendsr_certificate")
# §3.1 names a `/status` endpoint beside `/requests`; §8.2 reads status at /requests/<id>.
_alias(get_subject_request, f"{PREFIX}/status/<subject_request_id>", "GET_opendsr_v2_status")
