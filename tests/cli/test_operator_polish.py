"""What a newcomer meets first in the `erasure` command: clear messages, help on every option,
and the old command names still working."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import psycopg
import pytest
from click.testing import CliRunner

from erasure import schema
from erasure.cli import main
from tests.support.databases import database_url_for


@pytest.fixture
def behind_database(admin_url: str) -> Iterator[str]:
    """A database one migration short of head."""
    name = f"erasure_behind_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = database_url_for(admin_url, name)
    schema.upgrade(url, "head")
    from alembic import command

    command.downgrade(schema.alembic_config(url), "-1")
    yield url
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_db_check_says_the_database_is_behind_without_a_traceback(behind_database: str) -> None:
    result = CliRunner().invoke(
        main, ["db", "check"], env={"ERASURE_DATABASE_URL": behind_database}
    )
    assert result.exit_code == 1
    assert "the database is behind the migrations: run `erasure db upgrade`" in result.output
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(
        result.exception, SystemExit
    )
    upgraded = CliRunner().invoke(
        main, ["db", "upgrade"], env={"ERASURE_DATABASE_URL": behind_database}
    )
    assert upgraded.exit_code == 0, upgraded.output
    agreed = CliRunner().invoke(
        main, ["db", "check"], env={"ERASURE_DATABASE_URL": behind_database}
    )
    assert agreed.exit_code == 0 and "models and migrations agree" in agreed.output


def _commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        yield " ".join((*path, name)), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


def test_every_visible_option_has_help_text() -> None:
    missing = [
        f"erasure {name} {param.opts[0]}"
        for name, command in _commands(main)
        if not command.hidden
        for param in command.params
        if isinstance(param, click.Option) and not param.hidden and not param.help
    ]
    assert missing == []


def test_key_groups_are_named_for_their_keys_and_old_names_still_work(tmp_path: Path) -> None:
    runner = CliRunner()
    top = runner.invoke(main, ["--help"]).output
    assert "signing-keys" in top and "encryption-keys" in top
    assert "\n  keys " not in top and "\n  sandbox " not in top  # hidden aliases
    signing = runner.invoke(main, ["signing-keys", "--help"]).output
    assert "reencrypt" not in signing and "generate" in signing
    assert "reencrypt" in runner.invoke(main, ["encryption-keys", "--help"]).output
    assert "sandbox" in runner.invoke(main, ["salesforce", "--help"]).output
    made = runner.invoke(
        main, ["keys", "generate", "--name", "example.org/audit", "--out", str(tmp_path / "k")]
    )
    assert made.exit_code == 0 and made.stdout.startswith("example.org/audit+")
    assert runner.invoke(main, ["sandbox", "--help"]).exit_code == 0


def test_with_nothing_configured_a_command_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)  # no ./.erasure here
    result = runner.invoke(main, ["db", "check"])
    assert result.exit_code == 1
    assert "set ERASURE_DATABASE_URL" in result.output and "--data-dir" in result.output
    not_one = runner.invoke(main, ["--data-dir", str(tmp_path), "api-keys", "list"])
    assert not_one.exit_code == 1 and "not a standalone data directory" in not_one.output


def test_a_data_dir_before_standalone_is_its_data_dir(tmp_path: Path) -> None:
    shown = CliRunner().invoke(
        main, ["--data-dir", str(tmp_path / "d"), "standalone", "--help"], terminal_width=400
    )
    assert shown.exit_code == 0
    assert f"[default: {tmp_path / 'd'}]" in shown.output
    assert "--verbose" in shown.output
