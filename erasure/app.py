"""The web composition root: `create_app` builds the Flask app from settings.

Also the WSGI entry point for gunicorn: `gunicorn 'erasure.app:create_app()'`.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from erasure.api_keys import KeyCache
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
    settings: Settings | None = None,
    *,
    session_factory: Callable[[], Session] | None = None,
    owns_sessions: bool | None = None,
) -> Flask:
    """The WSGI app. A test may lend a `session_factory`; the app closes the sessions it makes
    only when it owns them (by default when it made the factory itself). A factory of fresh
    sessions should be owned (`owns_sessions=True`): otherwise each request's connection stays
    checked out until garbage collection, and a busy run drains the pool."""
    if settings is None:  # the production entry point (gunicorn): configure the process too
        settings = Settings.from_env()
        configure_logging(settings.log_level)
    app = Flask("erasure")
    # Werkzeug stops reading a body past this even when no Content-Length was sent.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the documented field order

    from erasure.web.resources import WebResources

    if owns_sessions is None:
        owns_sessions = session_factory is None
    engine = None
    if session_factory is None:
        engine = make_engine(settings.database_url, ping_idle_after_s=settings.database_ping_idle_s)
        session_factory = make_sessionmaker(engine)
    signing_key = load_signing_key(settings.audit_signing_key_file)
    if signing_key is not None:
        _refuse_a_split_log(settings, signing_key, session_factory, engine, owns_sessions)
    app.extensions["erasure"] = WebResources(
        settings=settings,
        session_factory=session_factory,
        owns_sessions=owns_sessions,
        signing_key=signing_key,
        salesforce_clients=client_builder(settings),
        protection=Protection(
            vault=Vault(settings.encryption_key_bytes), pseudonym_key=settings.pseudonym_key_bytes
        ),
        key_cache=KeyCache(settings.api_key_cache_s),
    )

    _register_edges(app, settings)
    return app


def _register_edges(app: Flask, settings: Settings) -> None:
    """The web layer's hooks, then the edges that stand on it: the JSON API, the console and the
    operational endpoints. Hooks run in the order they are installed here."""
    from erasure.api import (
        access_views,
        audit_views,
        callback_views,
        hold_views,
        notice_views,
        opendsr_views,
        request_actions,
        request_views,
        v1,
        webhook_views,
    )
    from erasure.api.openapi import document_bp
    from erasure.observability import web as observability
    from erasure.ui import (
        access_pages,
        admin,
        auditor,
        bulk,
        bulk_progress,
        console,
        dashboard,
        notice_pages,
        request_detail,
        request_export,
        request_form,
        request_list,
        request_selection,
        security,
        user_admin,
    )
    from erasure.ui import holds as hold_pages
    from erasure.ui import request_actions as console_request_actions
    from erasure.ui.blueprint import bp as console_bp
    from erasure.web import correlation, problems
    from erasure.web.resources import close_session

    correlation.install(app)
    problems.register_error_handlers(app)
    app.teardown_appcontext(close_session)
    # request_views, request_actions, hold_views, notice_views, access_views and audit_views
    # declare their routes on the one /v1 blueprint; each is imported above so its routes exist
    # before it is registered.
    del access_views, audit_views, hold_views, notice_views, request_actions, request_views
    app.register_blueprint(v1.bp)
    app.register_blueprint(webhook_views.bp)
    app.register_blueprint(callback_views.bp)
    app.register_blueprint(opendsr_views.bp)
    app.register_blueprint(document_bp)
    # The console's page modules and security's hooks are declared on its blueprint likewise.
    del (
        access_pages,
        admin,
        auditor,
        bulk,
        bulk_progress,
        dashboard,
        hold_pages,
        notice_pages,
        security,
    )
    del user_admin
    del console_request_actions, request_detail, request_export, request_form, request_list
    del request_selection
    console.configure_sessions(app, settings)
    app.register_blueprint(console_bp)
    observability.init_app(app)


def _refuse_a_split_log(
    settings: Settings,
    key: SigningKey,
    session_factory: Callable[[], Session],
    engine: Engine | None,
    owns_sessions: bool,
) -> None:
    """Refuse to start with a key or ERASURE_AUDIT_ORIGIN that would split the audit log.

    A database that cannot be read yet is no reason to refuse: the same check runs again
    before any checkpoint is signed. `engine` is ours to dispose when we refuse; a session we
    do not own (lent by a test) stays open.
    """
    try:
        session = session_factory()
    except SQLAlchemyError:
        return
    try:
        audit_store.check_log_identity(session, key, origin=settings.audit_origin)
    except LogIdentityError:
        if owns_sessions:
            session.close()
        if engine is not None:
            engine.dispose()
        raise
    if owns_sessions:
        session.close()
