"""The standalone's data directory: where each embedded service keeps its data, the secrets
generated on first start (0600), and the one-time bootstrap of an admin key, a console admin and
the sandbox org. Everything here survives restarts.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from erasure.config import Settings

SETTINGS_FILE = "settings.env"
ADMIN_KEY_FILE = "admin-api-key"
SIGNING_KEY_FILE = "audit-signing.key"
#: Where a running standalone tells the `erasure` commands how to reach it (see `Connection`).
CONNECTION_FILE = "connection.json"


@dataclass
class DataDir:
    root: Path

    @property
    def pgdata(self) -> Path:
        return self.root / "postgres"

    @property
    def redis_dir(self) -> Path:
        return self.root / "redis"

    @property
    def sandbox_dir(self) -> Path:
        return self.root / "sandbox"

    @property
    def beat_schedule(self) -> Path:
        return self.root / "celerybeat-schedule"

    @property
    def pid_file(self) -> Path:
        """The processes of the running standalone, for the next one should this one be killed."""
        return self.root / "run" / "children"

    @property
    def lock_file(self) -> Path:
        return self.root / "standalone.lock"

    @property
    def settings_file(self) -> Path:
        return self.root / SETTINGS_FILE

    @property
    def admin_key_file(self) -> Path:
        return self.root / ADMIN_KEY_FILE

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def signing_key_file(self) -> Path:
        return self.root / SIGNING_KEY_FILE

    @property
    def connection_file(self) -> Path:
        return self.root / "run" / CONNECTION_FILE

    @property
    def sandbox_secret_file(self) -> Path:
        """The first execution user's client secret alone, for `erasure salesforce check`."""
        return self.root / "sandbox-client-secret"

    def is_standalone(self) -> bool:
        """Whether `erasure standalone` has started on this directory at least once."""
        return self.settings_file.is_file()


@dataclass(frozen=True)
class Connection:
    """How to reach a running standalone: written (0600) by it once everything is up, removed
    when it stops, and read by the `erasure` commands, which need no environment of their own.
    The database URL names a Unix socket: no password in it."""

    database_url: str
    broker_url: str
    public_url: str
    pid: int
    sandbox_url: str | None = None
    sandbox_ca_bundle: str | None = None
    sandbox_client_id: str | None = None

    def write(self, data: DataDir) -> None:
        data.connection_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        text = json.dumps(self.__dict__, indent=2, sort_keys=True) + "\n"
        temporary = data.connection_file.with_suffix(".tmp")
        _write_private(temporary, text)
        temporary.replace(data.connection_file)  # readers never see half a file

    @classmethod
    def read(cls, data: DataDir) -> Connection | None:
        try:
            values = json.loads(data.connection_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        known = {name: values.get(name) for name in cls.__dataclass_fields__}
        if not all(isinstance(known[name], str) for name in ("database_url", "public_url")):
            return None
        return cls(**known)

    @staticmethod
    def remove(data: DataDir) -> None:
        data.connection_file.unlink(missing_ok=True)


def running_pointer() -> Path:
    """A per-user file naming the data directory of the standalone running now, so `erasure`
    commands run anywhere find it."""
    return Path(tempfile.gettempdir()) / f"erasure-{os.getuid()}" / "running-data-dir"


def read_keys(data: DataDir) -> dict[str, str]:
    """The secrets `ensure_keys` generated, as ERASURE_* settings; nothing is generated here."""
    values = {}
    for line in data.settings_file.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep:
            values[name.strip()] = value.strip()
    if data.signing_key_file.is_file():
        values["ERASURE_AUDIT_SIGNING_KEY_FILE"] = str(data.signing_key_file)
    return values


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
    signing_key = data.signing_key_file
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


ADMIN_LOGIN_FILE = "admin-console-login"


def bootstrap_admin_user(data: DataDir, settings: Settings) -> bool:
    """Create the first console admin, once; its login goes to a 0600 file in the data dir."""
    path = data.root / ADMIN_LOGIN_FILE
    if path.exists():
        return False
    from erasure.accounts.models import Role
    from erasure.db import make_engine, make_sessionmaker
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
    from erasure.accounts.models import Role
    from erasure.api_keys import create_api_key
    from erasure.db import make_engine, make_sessionmaker

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
    if pairs and not data.sandbox_secret_file.exists():
        _write_private(data.sandbox_secret_file, pairs[0][1] + "\n")
    return pairs


def register_sandbox_org(
    settings: Settings, *, url: str, ca_path: Path, credentials: list[tuple[str, str]]
) -> None:
    """Point the `sandbox` org at this run's sandbox (its port changes) and add its credentials."""
    from sqlalchemy import select

    from erasure.core.models import Credential
    from erasure.db import make_engine, make_sessionmaker
    from erasure.identifiers import Vault
    from erasure.orgs import add_credential, add_org, find_org

    engine = make_engine(settings.database_url, pool_size=1)
    vault = Vault(settings.encryption_key_bytes)
    with make_sessionmaker(engine)() as session:
        org = find_org(session, SANDBOX_ORG) or add_org(
            session, name=SANDBOX_ORG, my_domain_url=url
        )
        org.my_domain_url = url
        org.ca_bundle_path = str(ca_path)
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
