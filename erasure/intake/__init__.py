"""The HTTP edge of intake: the /v1 API, its errors, and the OpenAPI document.

May import workflow and models; nothing below imports this package.
"""

from __future__ import annotations

import secrets

from flask import Flask, Response, g, jsonify, request

from erasure.intake.problems import Problem

FORMS = frozenset({"application/x-www-form-urlencoded"})  # multipart uploads set their own limits


def init_app(app: Flask) -> None:
    from erasure.intake import audit_views, problems, views
    from erasure.intake.openapi import build_document
    from erasure.intake.resources import close_session

    del audit_views  # imported for its routes on views.bp, which must exist before registration
    app.register_blueprint(views.bp)
    from erasure.intake.webhook_views import register as register_integrations

    register_integrations(app)  # webhooks, callbacks, OpenDSR: their own blueprints
    problems.register_error_handlers(app)
    app.teardown_appcontext(close_session)

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

    @app.get("/openapi.json")
    def openapi_document() -> Response:
        return jsonify(build_document(app))
