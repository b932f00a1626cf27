"""How every view takes a JSON body (size- and depth-limited, validated, errors as problems)
and answers with one."""

from __future__ import annotations

from typing import Any, TypeVar

from flask import Response, jsonify
from pydantic import BaseModel, ValidationError

from erasure.web.body import read_json_object
from erasure.web.inputs import validation_errors
from erasure.web.problems import Problem
from erasure.web.resources import web_resources

M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M], document: dict[str, Any], *, root: str = "(body)") -> M:
    """`document` validated as `model`, or a 422 problem naming every field at fault (`root`
    names the document itself: the body, or the query string)."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        errors = validation_errors(exc.errors(include_input=False), root=root)
        raise Problem(
            422,
            "Invalid request",
            "; ".join(f"{e['field']}: {e['detail']}" for e in errors),
            code="validation_error",
            errors=errors,
        ) from None


def read_model(model: type[M]) -> M:
    """The request's JSON body, read within the configured size and depth limits, validated as
    `model`: the one way every view takes a body."""
    settings = web_resources().settings
    return parse_body(
        model,
        read_json_object(max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth),
    )


def json_response(
    status: int, body: dict[str, Any], *, location: str | None = None, replayed: bool = False
) -> Response:
    response = jsonify(body)
    response.status_code = status
    if location:
        response.headers["Location"] = location
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response
