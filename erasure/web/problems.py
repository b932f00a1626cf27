"""RFC 9457 problem details: the one place errors become HTTP responses.

Every error body is `application/problem+json` with a stable `type`, the `status`, a `detail` that
never repeats submitted values, the fields at fault, and the correlation id of the request.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, json, request
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from erasure.db import database_unavailable
from erasure.errors import (
    ConfigurationError,
    ErasureError,
    InvalidTransition,
    NotFound,
    NotReady,
    UnknownOrg,
)

logger = logging.getLogger(__name__)

#: How long a client should wait before trying again while our database is unavailable: about
#: what a restart or a failover takes.
DATABASE_RETRY_AFTER_S = 5

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """An error to answer with; raise it from a view."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        code: str,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.code = code
        self.errors = errors or []
        self.headers = headers or {}


def field_error(status: int, field: str, detail: str, *, code: str = "invalid_field") -> Problem:
    return Problem(
        status,
        "Invalid request",
        f"{field}: {detail}",
        code=code,
        errors=[{"field": field, "detail": detail}],
    )


def invalid_field(field: str, detail: str) -> Problem:
    """A 422 naming one field at fault, like a failed body validation."""
    return field_error(422, field, detail, code="validation_error")


def problem_response(problem: Problem) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:erasure:problem:{problem.code}",
        "title": problem.title,
        "status": problem.status,
        "code": problem.code,
        "correlation_id": g.get("correlation_id"),
    }
    if problem.detail:
        body["detail"] = problem.detail
    if problem.errors:
        body["errors"] = problem.errors
    response = Response(json.dumps(body), status=problem.status, mimetype=PROBLEM_JSON)
    response.headers.update(problem.headers)
    return response


_STATUS_BY_ERROR: dict[type[ErasureError], int] = {
    NotFound: 404,
    InvalidTransition: 409,
    NotReady: 409,
    UnknownOrg: 422,
    ConfigurationError: 503,
}


def _from_domain(exc: ErasureError) -> Problem:
    status = _STATUS_BY_ERROR.get(type(exc), 400)
    errors = [{"field": exc.field, "detail": str(exc)}] if isinstance(exc, UnknownOrg) else None
    headers = {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, NotReady) else None
    return Problem(status, str(exc), str(exc), code=exc.code, errors=errors, headers=headers)


def _route() -> str:
    return request.url_rule.rule if request.url_rule else "(no route)"


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        return problem_response(exc)

    @app.errorhandler(ErasureError)
    def _domain(exc: ErasureError) -> Response:
        return problem_response(_from_domain(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        headers = dict(exc.get_headers()) if status == 405 else {}
        headers.pop("Content-Type", None)
        detail = (
            "the request body is larger than this service accepts"
            if isinstance(exc, RequestEntityTooLarge)
            else None
        )
        code = (exc.name or "error").lower().replace(" ", "_")
        return problem_response(
            Problem(status, exc.name or "Error", detail, code=code, headers=headers)
        )

    @app.errorhandler(DBAPIError)
    def _database(exc: DBAPIError) -> Response:
        if not database_unavailable(exc):
            return _unexpected(exc)
        logger.warning(
            "database unavailable on %s %s (%s)", request.method, _route(), type(exc).__name__
        )
        return problem_response(
            Problem(
                503,
                "Service unavailable",
                "the database is unavailable; try again shortly",
                code="database_unavailable",
                headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
            )
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # The outermost edge: log with the traceback for operators, answer with nothing internal.
        logger.error("unhandled error on %s %s", request.method, _route(), exc_info=exc)
        return problem_response(
            Problem(
                500,
                "Internal error",
                "the error was logged under this correlation id",
                code="internal_error",
            )
        )
