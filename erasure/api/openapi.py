"""OpenAPI 3.1, generated from the code: routes from Flask's URL map, bodies from the pydantic
models each view declares with `@documented`, roles from `@requires`."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, current_app, jsonify
from pydantic import BaseModel

from erasure import __version__

F = TypeVar("F", bound=Callable[..., Any])

_REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


@dataclass(frozen=True)
class Documented:
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    responses: dict[int, tuple[str, type[BaseModel] | None]] = field(default_factory=dict)
    query: list[dict[str, Any]] = field(default_factory=list)
    idempotent_key: bool = False
    #: The model of error bodies when they are not problem details (OpenDSR's error object,
    #: application/json, where every request error is a 400).
    errors: type[BaseModel] | None = None


def documented(doc: Documented) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        view.openapi = doc  # type: ignore[attr-defined]  # read back by build_document
        return view

    return decorate


def query_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _schema_of(model: type[BaseModel], components: dict[str, Any], mode: str) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=_REF, mode=mode)  # type: ignore[arg-type]
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault(model.__name__, schema)
    return {"$ref": _REF.format(model=model.__name__)}


def build_document(app: Flask, *, title: str = "erasure") -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions[rule.endpoint]
        doc: Documented | None = getattr(view, "openapi", None)
        if doc is None:
            continue
        path = _PATH_PARAM.sub(r"{\2}", rule.rule)
        parameters: list[dict[str, Any]] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "format": "uuid"}
                if converter == "uuid"
                else {"type": "string"},
            }
            for converter, name in _PATH_PARAM.findall(rule.rule)
        ]
        parameters += doc.query
        if doc.idempotent_key:
            parameters.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "Retry safely: the same key and body replay the first response.",
                    "schema": {"type": "string", "maxLength": 255},
                }
            )
        roles = sorted(role.value for role in getattr(view, "required_roles", ()))
        operation: dict[str, Any] = {
            "summary": doc.summary,
            "tags": [doc.tag],
            "operationId": rule.endpoint.replace(".", "_"),
            "parameters": parameters,
            "responses": {},
        }
        if roles:
            operation["security"] = [{"apiKey": []}]
            operation["description"] = "Roles: " + ", ".join(roles) + "."
        if doc.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": _schema_of(doc.body, components, "validation")}
                },
            }
        operation["responses"] = _responses(doc, components, authenticated=bool(roles))
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        for method in methods:
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": __version__},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "An API key."}
            },
        },
    }


def _responses(
    doc: Documented, components: dict[str, Any], *, authenticated: bool
) -> dict[str, Any]:
    """The operation's documented answers, then the errors any such operation can give."""
    error_media = "application/json" if doc.errors else "application/problem+json"
    error_schema = _schema_of(doc.errors or _problem_model(), components, "serialization")
    responses: dict[str, Any] = {}
    for status, (description, model) in sorted(doc.responses.items()):
        response: dict[str, Any] = {"description": description}
        if model is not None:
            media = error_media if status >= 400 else "application/json"
            response["content"] = {
                media: {"schema": _schema_of(model, components, "serialization")}
            }
        responses[str(status)] = response
    common_errors = _common_errors(authenticated, doc.body is not None)
    if doc.errors:
        # Every request error is a 400; authentication, rate limits and outages keep theirs.
        common_errors = {
            status: description
            for status, description in common_errors.items()
            if status in {400, 401, 403, 429}
        } | {503: "Not configured (OpenDSR: no processor certificate)."}
    for status, description in common_errors.items():
        common: dict[str, Any] = {
            "description": description,
            "content": {error_media: {"schema": error_schema}},
        }
        if status == 429:
            common["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before trying again.",
                    "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]+$"},
                }
            }
        responses.setdefault(str(status), common)
    return responses


def _problem_model() -> type[BaseModel]:
    from erasure.api.schemas import ProblemOut

    return ProblemOut


def _common_errors(authenticated: bool, has_body: bool) -> dict[int, str]:
    # Any request can be malformed (a NUL in the path or query, for one).
    errors: dict[int, str] = {400: "Malformed request."}
    if authenticated:
        errors |= {
            401: "No valid API key.",
            403: "The key's role may not use this endpoint.",
            429: "Too many requests with this key, or too many failed authentications from this "
            "key prefix or address; retry after `Retry-After` seconds.",
        }
    if has_body:
        errors |= {
            400: "Malformed or too deeply nested JSON.",
            413: "Body too large.",
            415: "Body is not JSON.",
            422: "A field is invalid; `errors` names it.",
        }
    return errors


#: GET /openapi.json: the document of every route the app has registered.
document_bp = Blueprint("openapi", __name__)


@document_bp.get("/openapi.json")
def openapi_document() -> Response:
    return jsonify(build_document(current_app))
