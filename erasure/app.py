"""The web composition root: `create_app` builds the Flask app from settings.

Also the WSGI entry point for gunicorn: `gunicorn 'erasure.app:create_app()'`.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from erasure.audit import store as audit_store
from erasure.audit.checkpoint import SigningKey, load_signing_key
from erasure.audit.origin import LogIdentityError
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

    owns_sessions = session_factory is None
    engine = None
    if session_factory is None:
        engine = make_engine(settings.database_url)
        session_factory = make_sessionmaker(engine)
    signing_key = load_signing_key(settings.audit_signing_key_file)
    if signing_key is not None:
        _refuse_a_split_log(settings, signing_key, session_factory, engine)
    app.extensions["erasure"] = WebResources(
        settings=settings,
        session_factory=session_factory,
        owns_sessions=owns_sessions,
        signing_key=signing_key,
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


def _refuse_a_split_log(
    settings: Settings,
    key: SigningKey,
    session_factory: Callable[[], Session],
    engine: Engine | None,
) -> None:
    """Refuse to start with a key or ERASURE_AUDIT_ORIGIN that would split the audit log.

    A database that cannot be read yet is no reason to refuse: the same check runs again
    before any checkpoint is signed. `engine` is ours to dispose when we refuse (None: the
    session is lent, by a test, and stays open).
    """
    try:
        session = session_factory()
    except SQLAlchemyError:
        return
    try:
        audit_store.check_log_identity(session, key, origin=settings.audit_origin)
    except LogIdentityError:
        if engine is not None:
            session.close()
            engine.dispose()
        raise
    if engine is not None:
        session.close()
