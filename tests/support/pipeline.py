"""Pipeline fixtures: committed data (workers use their own connections), a real HTTPS sandbox
org per test process, and an in-process `Pipeline` driven step by step (no Celery), so the domain
is tested against the real client, the real database and the sandbox."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from erasure import task_names, workflow
from erasure.access.models import AccessRequest
from erasure.config import Settings
from erasure.core.models import (
    Credential,
    DeleteCall,
    ErasureRequest,
    ErasureScope,
    IdentifierKind,
    Org,
    Regulation,
    RequestStatus,
    Source,
    Target,
)
from erasure.db import make_sessionmaker
from erasure.identifiers import Vault, normalize
from erasure.orgs import add_credential, add_org
from erasure.outbox import messages as outbox
from erasure.pipeline import confirm, resolve, scheduler, sweep
from erasure.pipeline.context import Pipeline, Tunables
from erasure.pipeline.models import Alert
from erasure.pipeline.salesforce_port import Clients, SalesforcePort
from erasure.salesforce import (
    CredentialSettings,
    InMemoryTokenStore,
    InMemoryUsageStore,
    OrgSettings,
    SalesforceClient,
    Timeouts,
)
from erasure.salesforce.sandbox import SandboxHandle, seed_demo
from tests.support.processes import RedisServer, Worker, worker_env
from tests.support.sandbox import reset_sandbox

APPS = [(f"pipeline-app-{n}", f"pipeline-secret-{n}-0123456789") for n in (1, 2, 3)]

FAST = Tunables(
    linger_s=0.0,
    poll_min_s=0.05,
    poll_max_s=0.5,
    open_session_recheck_s=0.5,
    org_fault_pause_s=1.0,
    stall_s=1.0,
    orphan_after_s=1.0,
    readback_grace_s=5.0,
)


@pytest.fixture
def sandbox(sandbox_server: SandboxHandle) -> SandboxHandle:
    org = reset_sandbox(sandbox_server, log_step_s=0.1, apps=APPS)
    with org.lock:
        seed_demo(org.data)
    return sandbox_server


def client_factory() -> Callable[[OrgSettings, CredentialSettings], SalesforcePort]:
    """Clients sharing one token and usage store (a single process drives the pipeline here),
    fresh per test so one test's 429 hold never leaks into the next."""
    tokens, usage = InMemoryTokenStore(), InMemoryUsageStore()

    def build(org: OrgSettings, credential: CredentialSettings) -> SalesforcePort:
        return SalesforceClient(
            org,
            credential,
            tokens=tokens,
            usage=usage,
            timeouts=Timeouts(connect_s=2.0, read_s=5.0),
        )

    return build


@dataclass
class Clock:
    """The pipeline's clock in these tests: real time plus an offset a test moves forward, or held
    still. Pauses and timeouts are passed by moving it, never by sleeping, so a busy machine cannot
    let one expire early or keep one from expiring."""

    offset: timedelta = timedelta(0)
    held: datetime | None = None

    def __call__(self) -> datetime:
        return self.held if self.held is not None else datetime.now(UTC) + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)
        if self.held is not None:
            self.held += timedelta(seconds=seconds)

    @contextmanager
    def hold(self) -> Iterator[None]:
        self.held = self()
        try:
            yield
        finally:
            self.held = None


@dataclass
class World:
    """One org (fresh per test) pointed at the sandbox, and a pipeline driven by hand."""

    ctx: Pipeline
    org_id: uuid.UUID
    org_name: str
    sandbox: SandboxHandle
    settings: Settings
    credential_ids: list[uuid.UUID]
    clock: Clock = field(default_factory=Clock)
    published: list[tuple[str, list[Any]]] = field(default_factory=list)

    def session(self) -> Session:
        return self.ctx.sessionmaker()

    def submit(
        self,
        value: str,
        *,
        kind: IdentifierKind = IdentifierKind.PHONE,
        regulation: Regulation = Regulation.GDPR,
        also: Sequence[tuple[IdentifierKind, str]] = (),
        scope: ErasureScope = ErasureScope.SUBJECT,
    ) -> uuid.UUID:
        """Submit a request for `value` (of `kind`), plus any further identifiers in `also`
        (conversation ids among them for scope `conversations`)."""
        with self.session() as session:
            request = workflow.submit_request(
                session,
                workflow.Submission(
                    identifiers=[
                        workflow.Identifier(k, normalize(k, v)) for k, v in [(kind, value), *also]
                    ],
                    regulation=regulation,
                    source=Source.API,
                    org=self.org_name,
                    scope=scope,
                ),
                protection=workflow.Protection(self.ctx.vault, self.ctx.pseudonym_key),
                default_org=None,
            )
            session.commit()
            return request.id

    def relay(self) -> int:
        """Publish the outbox by running resolve messages in this process."""
        messages: list[tuple[str, list[Any]]] = []
        with self.session() as session, session.begin():
            outbox.publish_due(
                session, lambda name, args, correlation_id=None: messages.append((name, list(args)))
            )
        for name, args in messages:
            self.published.append((name, args))
            if name == task_names.RESOLVE:
                resolve.resolve(self.ctx, uuid.UUID(args[0]), int(args[1]))
        return len(messages)

    def step(self) -> None:
        self.relay()
        scheduler.dispatch(self.ctx)
        confirm.confirm(self.ctx)
        sweep.sweep(self.ctx)
        self.relay()

    def status(self, request_id: uuid.UUID) -> RequestStatus:
        with self.session() as session:
            request = session.get(ErasureRequest, request_id)
            assert request is not None
            return request.status

    def wait_for(
        self,
        request_ids: Sequence[uuid.UUID],
        statuses: Sequence[RequestStatus] = (RequestStatus.COMPLETED,),
        *,
        timeout: float = 30.0,
        step: Callable[[], None] | None = None,
    ) -> dict[uuid.UUID, RequestStatus]:
        deadline = time.monotonic() + timeout
        while True:
            (step or self.step)()
            now = {rid: self.status(rid) for rid in request_ids}
            if all(s in statuses for s in now.values()):
                return now
            if time.monotonic() > deadline:
                raise AssertionError(f"not all reached {statuses}: {now}")
            time.sleep(0.05)

    def targets(self, request_id: uuid.UUID) -> list[Target]:
        with self.session() as session:
            return list(session.scalars(select(Target).where(Target.request_id == request_id)))

    def calls(self) -> list[DeleteCall]:
        with self.session() as session:
            return list(
                session.scalars(
                    select(DeleteCall)
                    .where(DeleteCall.org_id == self.org_id)
                    .order_by(DeleteCall.sent_at)
                )
            )

    def configure_org(self, **values: Any) -> None:
        with self.session() as session, session.begin():
            session.execute(update(Org).where(Org.id == self.org_id).values(**values))


def cleanup_org(maker: Callable[[], Session], org_id: uuid.UUID) -> None:
    """Leave the shared database as we found it (audit leaves stay: the log refuses deletes)."""
    with maker() as session, session.begin():
        request_ids = select(ErasureRequest.id).where(ErasureRequest.org_id == org_id)
        session.execute(delete(Alert).where(Alert.org_id == org_id))
        session.execute(delete(Alert).where(Alert.request_id.in_(request_ids)))
        session.execute(delete(Target).where(Target.org_id == org_id))
        session.execute(delete(DeleteCall).where(DeleteCall.org_id == org_id))
        session.execute(
            update(ErasureRequest)
            .where(ErasureRequest.org_id == org_id)
            .values(duplicate_of_id=None)
        )
        session.execute(delete(ErasureRequest).where(ErasureRequest.org_id == org_id))
        session.execute(delete(AccessRequest).where(AccessRequest.org_id == org_id))
        session.execute(delete(Credential).where(Credential.org_id == org_id))
        session.execute(delete(Org).where(Org.id == org_id))


def make_org(
    maker: Callable[[], Session],
    vault: Vault,
    sandbox: SandboxHandle,
    *,
    credentials: int = 1,
    **options: Any,
) -> tuple[uuid.UUID, str, list[uuid.UUID]]:
    with maker() as session, session.begin():
        org = add_org(
            session, name=f"pipe-{uuid.uuid4().hex[:8]}", my_domain_url=sandbox.url, **options
        )
        org.ca_bundle_path = sandbox.ca_path
        ids = [
            add_credential(
                session, vault, org, name=f"user-{n}", client_id=client_id, client_secret=secret
            ).id
            for n, (client_id, secret) in enumerate(APPS[:credentials], start=1)
        ]
        return org.id, org.name, ids


@pytest.fixture
def make_world(
    settings: Settings, engine: Engine, sandbox: SandboxHandle
) -> Iterator[Callable[..., World]]:
    maker = make_sessionmaker(engine)
    vault = Vault(settings.encryption_key_bytes)
    made: list[World] = []

    def make(*, credentials: int = 1, tunables: Tunables = FAST, **options: Any) -> World:
        org_id, name, cred_ids = make_org(maker, vault, sandbox, credentials=credentials, **options)
        clock = Clock()
        ctx = Pipeline(
            sessionmaker=maker,
            clients=Clients(client_factory(), vault),
            vault=vault,
            pseudonym_key=settings.pseudonym_key_bytes,
            tunables=tunables,
            clock=clock,
        )
        world = World(ctx, org_id, name, sandbox, settings, cred_ids, clock)
        made.append(world)
        return world

    yield make
    for world in made:
        world.ctx.clients.close()
        cleanup_org(maker, world.org_id)


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_worker(
    settings: Settings, database_url: str, redis_server: RedisServer, tmp_path: Path
) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def make(*, extra_env: dict[str, str] | None = None, **options: object) -> Worker:
        env = worker_env(settings, database_url=database_url, broker_url=redis_server.url)
        env.update(extra_env or {})
        worker = Worker(env, tmp_path, **options)  # type: ignore[arg-type]
        worker.start()
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.kill_all()


def _progress(
    world: World, request_ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, RequestStatus], tuple[tuple[str, int], ...]]:
    """What moving on looks like, read in one session: the requests' statuses and their
    targets' statuses (a deletion going from requested to in progress to deleted is progress
    even while its request stays `confirming`)."""
    with world.session() as session:
        statuses = dict(
            session.execute(
                select(ErasureRequest.id, ErasureRequest.status).where(
                    ErasureRequest.id.in_(request_ids)
                )
            ).all()
        )
        targets = sorted(
            (str(status), int(count))
            for status, count in session.execute(
                select(Target.status, func.count())
                .where(Target.request_id.in_(request_ids))
                .group_by(Target.status)
            ).all()
        )
    return statuses, tuple(targets)


def wait_final(
    world: World,
    request_ids: list[uuid.UUID],
    timeout: float,
    *,
    at_most: float | None = None,
) -> dict[uuid.UUID, RequestStatus]:
    """Wait until every request is final, at most `timeout` seconds; with `at_most`, the wait
    goes on past `timeout` while the requests or their targets move, up to `at_most` in all,
    and gives up once nothing has moved for `timeout` seconds. A loaded machine slows real
    workers without stopping them: such a wait fails only when the pipeline is stuck. Two queries
    per poll, so the wait takes little of the CPU the sandbox (a thread of this process)
    needs to answer the workers."""
    start = time.monotonic()
    moved_at, last = start, None
    limit = max(timeout, at_most or timeout)
    while True:
        now = time.monotonic()
        statuses, targets = _progress(world, request_ids)
        if len(statuses) == len(set(request_ids)) and all(s.is_terminal for s in statuses.values()):
            return statuses
        if (statuses, targets) != last:
            moved_at, last = now, (statuses, targets)
        if now - moved_at > timeout or now - start > limit:
            return statuses
        time.sleep(0.25)
