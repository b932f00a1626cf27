"""What an `erasure` command acts on: a standalone data directory or the configured environment.

In order: `--data-dir` (or ERASURE_DATA_DIR); the environment when ERASURE_DATABASE_URL is set
(production); `./.erasure` when it is a standalone's data directory; the data directory of the
standalone running for this user (it leaves a pointer, see `running_pointer`). A data directory
supplies the settings standalone generated (keys, signing key) and, while standalone runs, how to
reach its embedded Postgres, so no command needs a hand-set environment.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from erasure.standalone.datadir import Connection, DataDir, read_keys, running_pointer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from erasure.audit.checkpoint import SigningKey
    from erasure.config import Settings

DEFAULT_DATA_DIR = Path(".erasure")
NOTHING_CONFIGURED = (
    "no database to act on: set ERASURE_DATABASE_URL (and the other settings), or run the "
    "command where a standalone's ./.erasure is, or give --data-dir"
)


@dataclass(frozen=True)
class Target:
    """A standalone data directory (`data`), or None for the environment's settings."""

    data: DataDir | None = None

    @classmethod
    def find(cls, data_dir: Path | None) -> Target:
        from erasure.config import environment_configures_database

        if data_dir is not None:
            data = DataDir(data_dir.resolve())
            if not data.is_standalone():
                raise click.ClickException(
                    f"{data_dir} is not a standalone data directory (no settings.env): "
                    f"start `erasure standalone --data-dir {data_dir}` once to create it"
                )
            return cls(data)
        if environment_configures_database():
            return cls(None)
        here = DataDir(DEFAULT_DATA_DIR.resolve())
        if here.is_standalone():
            return cls(here)
        with contextlib.suppress(OSError):
            running = DataDir(Path(running_pointer().read_text().strip()))
            if running.is_standalone() and Connection.read(running) is not None:
                return cls(running)
        return cls(None)

    # -- what the commands need ----------------------------------------------------------------

    def connection(self) -> Connection:
        """How to reach the running standalone; a clear error if it does not run."""
        if self.data is None:
            raise click.ClickException(NOTHING_CONFIGURED)
        connection = Connection.read(self.data)
        if connection is None or not _alive(connection.pid):
            raise click.ClickException(
                f"the standalone of {self.data.root} is not running, so its embedded Postgres "
                f"is not either: start it with `erasure standalone --data-dir {self.data.root}` "
                "(in another terminal, or in the background) and run this command again"
            )
        return connection

    def settings(self) -> Settings:
        from pydantic import ValidationError

        from erasure.config import Mode, Settings

        overrides: dict[str, Any] = {}
        if self.data is not None:
            connection = self.connection()
            overrides = {
                name.removeprefix("ERASURE_").lower(): value
                for name, value in read_keys(self.data).items()
            }
            overrides |= {
                "mode": Mode.DEVELOPMENT,
                "database_url": connection.database_url,
                "broker_url": connection.broker_url,
                "public_url": connection.public_url,
            }
        try:
            return Settings(**overrides)
        except ValidationError as exc:
            missing = ", ".join("ERASURE_" + str(e["loc"][0]).upper() for e in exc.errors())
            raise click.ClickException(
                f"configuration is incomplete or invalid: {missing} (or run the command where "
                "a standalone's ./.erasure is, or give --data-dir)"
            ) from None

    def database_url(self) -> str:
        """Only the database URL, for the schema commands, which need nothing else."""
        from erasure.config import database_url_from_env, environment_configures_database

        if self.data is not None:
            return self.connection().database_url
        if not environment_configures_database():
            raise click.ClickException(NOTHING_CONFIGURED)
        return database_url_from_env()

    def signing_key(self, settings: Settings) -> SigningKey:
        from erasure.audit.checkpoint import load_signing_key

        key = load_signing_key(settings.audit_signing_key_file)
        if key is None:
            raise click.ClickException(
                "ERASURE_AUDIT_SIGNING_KEY_FILE is not set (see `erasure signing-keys generate`)"
            )
        return key

    @contextlib.contextmanager
    def session(self, settings: Settings | None = None) -> Iterator[Session]:
        """A session on an engine of its own, disposed afterwards: a command leaves no
        connection. An unreachable database is a one-line error, not a traceback."""
        from sqlalchemy.exc import OperationalError

        from erasure.db import make_engine, make_sessionmaker

        engine = make_engine((settings or self.settings()).database_url, pool_size=1)
        try:
            with make_sessionmaker(engine)() as session:
                try:
                    session.connection()
                except OperationalError as exc:
                    where = f"the standalone of {self.data.root}" if self.data else "the database"
                    raise click.ClickException(
                        f"cannot reach {where}: {str(exc.orig).strip().splitlines()[0]}"
                    ) from None
                yield session
        finally:
            engine.dispose()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


pass_target = click.make_pass_decorator(Target, ensure=True)
