"""How the OpenDSR routes answer: signed JSON (§7.3, §8.3, §9.2) and OpenDSR's error object (§7.5,
§7.6) instead of the API's problem details.

A signed answer's body is its RFC 8785 (JCS) canonical JSON, sent as is; `X-OpenDSR-Signature`
signs exactly those bytes. `processor_signature`, which lives inside the body it signs, signs the
canonical JSON of the body without that member: a controller removes it and canonicalises the
rest to check it. Error bodies never carry a submitted value.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785
from flask import Blueprint, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from erasure.errors import ConfigurationError, ErasureError
from erasure.integrations import processor
from erasure.integrations.callbacks.sending import processor_headers
from erasure.web.problems import Problem
from erasure.web.resources import get_session, web_resources

#: Statuses kept as they are: authentication (out of OpenDSR's scope), rate limits and outages,
#: which a controller must tell apart from a bad request to retry. Every other error is 400.
KEPT_STATUSES = frozenset({401, 403, 429})

OPENGDPR_PREFIX = "/opengdpr/"


def identity() -> processor.Identity:
    """The processor identity (in development, the self-signed one is made on first use and
    committed here). Raises ConfigurationError when production has no certificate."""
    resources = web_resources()
    session = get_session()
    found = processor.identity(
        session,
        vault=resources.protection.vault,
        config=processor.ProcessorConfig.from_settings(resources.settings),
    )
    session.commit()
    return found


def canonical(document: dict[str, Any]) -> bytes:
    return rfc8785.dumps(document)


def signed(status: int, document: dict[str, Any], *, processor_signature: bool) -> Response:
    """`document` as a signed OpenDSR answer; with `processor_signature` in the body too."""
    signer = identity()
    if processor_signature:
        document = {**document, "processor_signature": signer.sign(canonical(document))}
    body = canonical(document)
    response = Response(body, status=status, mimetype="application/json")
    headers = processor_headers(signer, body)
    if not request.path.startswith(OPENGDPR_PREFIX):
        # The OpenGDPR names are for the routes of that name; callbacks carry both.
        headers = {name: value for name, value in headers.items() if "OpenDSR" in name}
    response.headers.update(headers)
    return response


def error_response(
    status: int,
    reason: str,
    message: str,
    *,
    domain: str = "Request",
    details: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if status not in KEPT_STATUSES and status < 500:
        status = 400
    errors = details or [{"domain": domain, "reason": reason, "message": message}]
    body = {"error": {"code": status, "message": message, "errors": errors}}
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers.update(headers or {})
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _from_problem(problem: Problem) -> Response:
    message = problem.detail or problem.title
    details = [
        {
            "domain": "Validation",
            "reason": problem.code,
            "message": f"{error['field']}: {error['detail']}",
            "location": error["field"],
        }
        for error in problem.errors
    ]
    domain = "Validation" if details else "Request"
    return error_response(
        problem.status,
        problem.code,
        message,
        domain=domain,
        details=details or None,
        headers=problem.headers,
    )


def _from_domain(exc: ErasureError) -> Response:
    status = 503 if isinstance(exc, ConfigurationError) else 400
    return error_response(status, exc.code, str(exc))


def _from_http(exc: HTTPException) -> Response:
    message = (
        "the request body is larger than this service accepts"
        if isinstance(exc, RequestEntityTooLarge)
        else exc.name or "error"
    )
    return error_response(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"), message)


def register_error_handlers(bp: Blueprint) -> None:
    """Errors of the blueprint's views in OpenDSR's shape (the app's handlers serve the rest)."""
    bp.register_error_handler(Problem, _from_problem)
    bp.register_error_handler(ErasureError, _from_domain)
    bp.register_error_handler(HTTPException, _from_http)
