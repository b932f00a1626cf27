"""Audit endpoints: the latest signed checkpoint, the public key, certificates of erasure, and
"was this subject erased?" lookups by pseudonym."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from erasure.accounts.models import Role
from erasure.api.auth import READERS, current_key, requires
from erasure.api.openapi import Documented, documented, query_param
from erasure.api.rendering import request_url
from erasure.api.schemas import ProblemOut
from erasure.api.v1 import bp
from erasure.audit import certify, store
from erasure.audit.certificate import dump_certificate
from erasure.audit.consistency import proof_document
from erasure.core.models import ErasureRequest, SubjectIdentifier
from erasure.errors import ConfigurationError
from erasure.identifiers import pseudonym
from erasure.web.inputs import Strict, SubjectIn
from erasure.web.problems import Problem, invalid_field
from erasure.web.resources import get_session, web_resources
from erasure.web.responses import parse_body, read_model

LOOKERS = (Role.OFFICER, Role.ADMIN)


class SubjectLookupIn(Strict):
    subject: SubjectIn


class SubjectLookupMatch(BaseModel):
    id: uuid.UUID
    status: str
    completed_at: str | None
    certificate: str | None = Field(description="Where to fetch the certificate, once completed.")


class SubjectLookupOut(BaseModel):
    pseudonyms: list[dict[str, str]] = Field(
        description="The subject's pseudonyms, as the audit log names them."
    )
    requests: list[SubjectLookupMatch]


class CertificateOut(BaseModel):
    """A signed certificate of erasure (see docs/audit.md for the format)."""

    type: str
    version: int
    signature: dict[str, Any]


def _signing_key() -> Any:
    key = web_resources().signing_key
    if key is None:
        raise ConfigurationError(
            "no audit signing key is configured (ERASURE_AUDIT_SIGNING_KEY_FILE)"
        )
    return key


def _text(body: str) -> Response:
    return Response(body, mimetype="text/plain")


@bp.get("/audit/checkpoint")
@requires(*READERS)
@documented(
    Documented(
        summary="The latest signed checkpoint (C2SP tlog-checkpoint signed note, text/plain)",
        tag="audit",
        responses={200: ("The signed note.", None), 404: ("No checkpoint yet.", ProblemOut)},
    )
)
def latest_checkpoint() -> Response:
    checkpoint = store.latest_checkpoint(get_session())
    if checkpoint is None:
        raise Problem(
            404, "No checkpoint yet", "the log has not been checkpointed yet", code="not_found"
        )
    return _text(checkpoint.note)


#: Tree sizes are bigints in the database; a larger number cannot be a size of this log.
MAX_TREE_SIZE = 2**63 - 1


class ConsistencyQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    first: int = Field(ge=1, le=MAX_TREE_SIZE)
    second: int = Field(ge=1, le=MAX_TREE_SIZE)


class ConsistencyOut(BaseModel):
    """An RFC 9162 consistency proof (field names as RFC 6962's get-sth-consistency)."""

    first: int
    second: int
    consistency: list[str] = Field(
        description="The proof's hashes, base64, in RFC 9162 order; empty when first == second."
    )


@bp.get("/audit/consistency")
@requires(*READERS)
@documented(
    Documented(
        summary="Proof that the log at tree size `second` extends the log at size `first`",
        tag="audit",
        query=[
            {**query_param(name, description, {"type": "integer", "minimum": 1}), "required": True}
            for name, description in (
                ("first", "The older tree size (a checkpoint you hold), at least 1."),
                ("second", "The newer tree size, at most the latest checkpoint's."),
            )
        ],
        responses={
            200: ("The proof; check it with `erasure audit verify --proof`.", ConsistencyOut),
            404: ("No checkpoint yet.", ProblemOut),
            422: ("A size is missing, not a number, out of order or beyond the log.", ProblemOut),
        },
    )
)
def consistency() -> Response:
    params: dict[str, Any] = {}
    for name, values in request.args.lists():
        if len(values) != 1:
            # Only our own parameter names are repeated back: any other key could be an identifier.
            known = name in ConsistencyQuery.model_fields
            raise invalid_field(name if known else "(query)", "give each parameter once")
        params[name] = values[0]
    query = parse_body(ConsistencyQuery, params, root="(query)")
    if query.first > query.second:
        raise invalid_field("first", "must not be larger than second")
    session = get_session()
    latest = store.latest_checkpoint(session)
    if latest is None:
        raise Problem(
            404, "No checkpoint yet", "the log has not been checkpointed yet", code="not_found"
        )
    if query.second > latest.size:
        raise invalid_field(
            "second", f"beyond the log: its latest checkpoint is at size {latest.size}"
        )
    proof = store.consistency_proof(session, query.first, query.second)
    return jsonify(proof_document(query.first, query.second, proof))


@bp.get("/audit/public-key")
@documented(
    Documented(
        summary="The verifier key of checkpoints and certificates (signed-note format, text/plain)",
        tag="audit",
        responses={
            200: ("The verifier key.", None),
            503: ("No signing key configured.", ProblemOut),
        },
    )
)
def public_key() -> Response:
    return _text(str(_signing_key().verifier()) + "\n")


@bp.get("/erasure-requests/<uuid:request_id>/certificate")
@requires(*READERS)
@documented(
    Documented(
        summary="The signed certificate of erasure of a completed request",
        tag="audit",
        responses={
            200: ("The certificate; verify it with `erasure audit verify`.", CertificateOut),
            404: ("No such request.", ProblemOut),
            409: ("Not completed yet, or not yet checkpointed (see Retry-After).", ProblemOut),
        },
    )
)
def certificate(request_id: uuid.UUID) -> Response:
    key = current_key()
    document = certify.certificate_for(
        get_session(),
        request_id,
        signing_key=_signing_key(),
        api_key_id=key.id if key.role == Role.INTEGRATION else None,
    )
    response = Response(dump_certificate(document), mimetype="application/json")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="erasure-certificate-{request_id}.json"'
    )
    return response


@bp.post("/subject-lookups")
@requires(*LOOKERS)
@documented(
    Documented(
        summary="Was this subject erased? Finds requests by pseudonym; the identifier is not stored",
        tag="audit",
        body=SubjectLookupIn,
        responses={200: ("The subject's requests.", SubjectLookupOut)},
    )
)
def subject_lookup() -> Response:
    settings = web_resources().settings
    body = read_model(SubjectLookupIn)
    indexes = [
        (kind, pseudonym(settings.pseudonym_key_bytes, kind, value))
        for kind, value in body.subject.identifier_pairs()
    ]
    rows = (
        get_session()
        .scalars(
            select(ErasureRequest)
            .where(
                ErasureRequest.id.in_(
                    select(SubjectIdentifier.request_id).where(
                        SubjectIdentifier.blind_index.in_([b for _, b in indexes])
                    )
                )
            )
            .order_by(ErasureRequest.created_at)
        )
        .all()
    )
    out = SubjectLookupOut(
        pseudonyms=[{"kind": kind.value, "pseudonym": blind.hex()} for kind, blind in indexes],
        requests=[
            SubjectLookupMatch(
                id=row.id,
                status=row.status.value,
                completed_at=row.completed_at.isoformat() if row.completed_at else None,
                certificate=f"{request_url(row.id)}/certificate"
                if row.status in certify.CERTIFIABLE
                else None,
            )
            for row in rows
        ],
    )
    return jsonify(out.model_dump(mode="json"))
