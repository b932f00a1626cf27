"""The web composition root: `create_app` builds the Flask app from settings.

Also the WSGI entry point for gunicorn: `gunicorn 'erasure.app:create_app()'`.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from sqlalchemy.orm import Session

from erasure.audit.checkpoint import load_signing_key
from erasure.config import Settings
from erasure.db import make_engine, make_sessionmaker
from erasure.identifiers import Vault
from erasure.observability.logs import configure_logging
from erasure.salesforce_clients import client_builder
from erasure.workflow import Protection


def create_app(
    settings: Settings | None = None, *, session_factory: Callable[[], Session] | None = None
) -> Flask:
    if settings is None:  # the production entry point (gunicorn): configure the process too
        settings = Settings.from_env()
        configure_logging(settings.log_level)
    app = Flask("erasure")
    # Werkzeug stops reading a body past this even when no Content-Length was sent.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the documented field order

    from erasure.intake.resources import WebResources

    app.extensions["erasure"] = WebResources(
        settings=settings,
        session_factory=session_factory or make_sessionmaker(make_engine(settings.database_url)),
        owns_sessions=session_factory is None,
        signing_key=load_signing_key(settings.audit_signing_key_file),
        salesforce_clients=client_builder(settings),
        protection=Protection(
            vault=Vault(settings.encryption_key_bytes), pseudonym_key=settings.pseudonym_key_bytes
        ),
    )

    from erasure import intake

    intake.init_app(app)
    from erasure import ui

    ui.init_app(app, settings)
    from erasure.observability import web as observability

    observability.init_app(app)
    return app
