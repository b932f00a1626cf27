"""Every request gets a correlation id (a caller's short opaque X-Request-Id, or a new one),
echoed on the response; and no path or query value with a NUL reaches a view."""

from __future__ import annotations

import secrets

from flask import Flask, Response, g, request

from erasure.web.problems import Problem

FORMS = frozenset({"application/x-www-form-urlencoded"})  # multipart uploads set their own limits


def install(app: Flask) -> None:
    @app.before_request
    def _correlation_id() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        # Only a short opaque token is adopted: a header must not smuggle data into our logs.
        ok = 8 <= len(incoming) <= 64 and incoming.replace("-", "").isalnum()
        g.correlation_id = incoming if ok else secrets.token_hex(8)
        values = [
            *request.args.values(),
            *(request.form.values() if request.mimetype in FORMS else ()),
        ]
        if "\x00" in request.path or any("\x00" in value for value in values):
            # No path or query value can be stored or matched with a NUL in it (Postgres text).
            raise Problem(400, "Bad request", "NUL characters are not accepted", code="bad_request")

    @app.after_request
    def _echo_correlation_id(response: Response) -> Response:
        response.headers["X-Request-Id"] = g.get("correlation_id", "")
        return response
