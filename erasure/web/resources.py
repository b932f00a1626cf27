"""What the web edge holds per app (settings, session factory, Celery) and per request (session)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from flask import current_app, g
from sqlalchemy.orm import Session

from erasure.api_keys import KeyCache
from erasure.audit.checkpoint import SigningKey
from erasure.config import Settings
from erasure.salesforce import CredentialSettings, OrgSettings, SalesforceClient
from erasure.workflow import Protection


@dataclass(frozen=True)
class WebResources:
    settings: Settings
    session_factory: Callable[[], Session]
    owns_sessions: bool  # a session lent by a test is never closed by the app
    protection: Protection
    signing_key: SigningKey | None = None
    # Builds a SalesforceClient for an org's credential (the console's token check).
    salesforce_clients: Callable[[OrgSettings, CredentialSettings], SalesforceClient] | None = None
    publish: Callable[[str, list[object]], None] | None = None
    # API keys read by this process (revocation bound: settings.api_key_cache_s).
    key_cache: KeyCache = field(default_factory=lambda: KeyCache(0))


def web_resources() -> WebResources:
    resources: WebResources = current_app.extensions["erasure"]
    return resources


def get_session() -> Session:
    """The request's session, created on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = web_resources().session_factory()
    session: Session = g.db_session
    return session


def close_session(_exc: BaseException | None = None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None and web_resources().owns_sessions:
        session.close()


def stream_session() -> AbstractContextManager[Session]:
    """A session of its own for a streamed response's generator (`with stream_session() as s`
    inside it), closed when the generator ends or is closed: by the WSGI server when the client
    hangs up, so an abandoned download gives its connection back at once.

    Call it in the view, not in the generator. The request's session (get_session) must not be
    used after the view returns: Flask runs the teardown that closes it when the view's response
    is handed to the server, before the body streams, and a closed session that is used again
    checks out a new connection that nothing closes. A session lent by a test is used as is."""
    resources = web_resources()
    lent = None if resources.owns_sessions else get_session()

    @contextmanager
    def scope() -> Iterator[Session]:
        if lent is not None:
            yield lent
            return
        session = resources.session_factory()
        try:
            yield session
        finally:
            session.close()  # rolls back what is still open and returns the connection

    return scope()
