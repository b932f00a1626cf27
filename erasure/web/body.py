"""Reading a JSON request body safely: content type, size and nesting are checked before parsing,
so bad input is a clear 4xx and never a 500."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import g, request

from erasure.web.problems import Problem

# Strings are removed before counting brackets, so "[[[" inside a string does not count.
_READ_SIZE = 65536
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _depth(text: str) -> int:
    depth = deepest = 0
    for char in _JSON_STRING.sub("", text):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _is_json_mimetype(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def read_body(*, max_bytes: int) -> bytes:
    """The raw body, read at most once per request and never past `max_bytes` (413).

    A chunked upload has no Content-Length, and a WSGI server may hand it over a chunk per
    read, so it is read in a loop and counted here.
    """
    if "raw_body" in g:
        raw: bytes = g.raw_body
        return raw
    chunks: list[bytes] = []
    total = 0
    while chunk := request.stream.read(_READ_SIZE):
        total += len(chunk)
        if total > max_bytes:
            raise Problem(
                413,
                "Content too large",
                f"the body may be at most {max_bytes} bytes",
                code="content_too_large",
            )
        chunks.append(chunk)
    g.raw_body = b"".join(chunks)
    return g.raw_body  # type: ignore[no-any-return]  # flask.g is untyped


def read_json_object(*, max_bytes: int, max_depth: int) -> dict[str, Any]:
    """The request body as a JSON object, or a Problem (415, 413, 400)."""
    if not _is_json_mimetype(request.mimetype):
        raise Problem(
            415,
            "Unsupported media type",
            "send the body as application/json",
            code="unsupported_media_type",
            headers={"Accept-Post": "application/json"},
        )
    if request.content_length is not None and request.content_length > max_bytes:
        # Refused on the header alone: the body is never read.
        raise Problem(
            413,
            "Content too large",
            f"the body may be at most {max_bytes} bytes",
            code="content_too_large",
        )
    raw = read_body(max_bytes=max_bytes)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Problem(
            400, "Malformed JSON", "the body is not UTF-8", code="malformed_json"
        ) from exc
    if "\x00" in text or "\\u0000" in text:
        # Postgres text cannot hold NUL; refuse it here rather than fail on the way in.
        raise Problem(
            400, "Malformed JSON", "strings may not contain NUL characters", code="malformed_json"
        )
    if _depth(text) > max_depth:
        raise Problem(
            400,
            "JSON nested too deep",
            f"nesting deeper than {max_depth} levels is refused",
            code="json_too_deep",
        )
    try:
        document = json.loads(text)
    except ValueError as exc:
        # JSONDecodeError's position is safe to echo; its message never quotes the document.
        position = getattr(exc, "pos", None)
        raise Problem(
            400,
            "Malformed JSON",
            f"the body is not valid JSON (at character {position})",
            code="malformed_json",
        ) from exc
    if not isinstance(document, dict):
        raise Problem(
            400, "Malformed JSON", "the body must be a JSON object", code="malformed_json"
        )
    return document


def guard_body() -> None:
    """A before_request hook: every JSON body, and every webhook body whatever its type, is held
    to the size and nesting limits before any view (or signature check) sees it, so a deeply
    nested document can never reach a JSON parser's recursion limit."""
    if request.method not in {"POST", "PUT", "PATCH", "DELETE"} or request.path.startswith("/ui"):
        return
    webhook = request.path.startswith("/v1/webhooks/")
    if not webhook and not _is_json_mimetype(request.mimetype):
        return
    from erasure.web.resources import web_resources

    settings = web_resources().settings
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        raise Problem(
            413,
            "Content too large",
            f"the body may be at most {settings.max_body_bytes} bytes",
            code="content_too_large",
        )
    raw = read_body(max_bytes=settings.max_body_bytes)
    limit = settings.max_webhook_json_depth if webhook else settings.max_json_depth
    if raw and _depth(raw.decode("utf-8", errors="replace")) > limit:
        raise Problem(
            400,
            "JSON nested too deep",
            f"nesting deeper than {limit} levels is refused",
            code="json_too_deep",
        )
