"""The `erasure` command line against the test database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from erasure.accounts.models import Role
from erasure.api_keys import authenticate
from erasure.cli import main
from erasure.config import Settings
from erasure.core.models import Org
from erasure.db import make_engine, make_sessionmaker
from erasure.pipeline.salesforce_port import org_settings
from erasure.salesforce import DeleteIdsIn


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    return {
        "ERASURE_DATABASE_URL": settings.database_url,
        "ERASURE_ENCRYPTION_KEYS": ",".join(
            f"{k}:{v.get_secret_value()}" for k, v in settings.encryption_keys.items()
        ),
        "ERASURE_PSEUDONYM_KEY": settings.pseudonym_key.get_secret_value(),
        "ERASURE_PUBLIC_URL": "http://127.0.0.1",
        "ERASURE_BROKER_URL": "memory://",
    }


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_api_keys_create_prints_a_working_key_once(
    runner: CliRunner, env: dict[str, str], settings: Settings
) -> None:
    result = runner.invoke(
        main, ["api-keys", "create", "--role", "auditor", "--name", "Ana (audit)"], env=env
    )
    assert result.exit_code == 0, result.output
    key = result.stdout.strip()
    assert key.startswith("ek_")
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        record = authenticate(session, key)
        assert record is not None and record.role is Role.AUDITOR
        prefix = record.prefix
    revoked = runner.invoke(main, ["api-keys", "revoke", prefix], env=env)
    assert revoked.exit_code == 0
    with make_sessionmaker(engine)() as session:
        assert authenticate(session, key) is None
    engine.dispose()


def test_orgs_add_and_credentials_never_take_a_secret_on_the_command_line(
    runner: CliRunner, env: dict[str, str], settings: Settings
) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    assert (
        runner.invoke(
            main, ["orgs", "add", name, "--my-domain", "https://acme.my.salesforce.com"], env=env
        ).exit_code
        == 0
    )
    again = runner.invoke(
        main, ["orgs", "add", name, "--my-domain", "https://acme.my.salesforce.com"], env=env
    )
    assert again.exit_code != 0 and "already exists" in again.output
    added = runner.invoke(
        main,
        ["orgs", "add-credential", name, "eu-1", "--client-id", "3MVG9"],
        env=env | {"ERASURE_NEW_CLIENT_SECRET": "s3cr3t-value"},
    )
    assert added.exit_code == 0, added.output
    assert "s3cr3t-value" not in added.output
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        org = session.scalar(select(Org).where(Org.name == name))
        assert org is not None and [c.name for c in org.credentials] == ["eu-1"]
        assert b"s3cr3t-value" not in org.credentials[0].client_secret_ciphertext
        session.delete(org.credentials[0])
        session.delete(org)
        session.commit()
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("https://acme.my.salesforce.com/lightning", "without a path"),
        ("https://acme.lightning.force.com", "https://acme.my.salesforce.com"),
        ("http://acme.my.salesforce.com", "https"),
    ],
)
def test_orgs_add_refuses_a_my_domain_the_client_cannot_use(
    runner: CliRunner, env: dict[str, str], settings: Settings, url: str, named: str
) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    result = runner.invoke(main, ["orgs", "add", name, "--my-domain", url], env=env)
    assert result.exit_code != 0
    assert named in result.output
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        assert session.scalar(select(Org).where(Org.name == name)) is None
    engine.dispose()


def test_the_delete_request_shape_is_an_org_setting(
    runner: CliRunner, env: dict[str, str], settings: Settings
) -> None:
    name = f"cli-{uuid.uuid4().hex[:6]}"
    url = "https://acme.my.salesforce.com"
    added = runner.invoke(
        main, ["orgs", "add", name, "--my-domain", url, "--delete-ids-in", "query"], env=env
    )
    assert added.exit_code == 0, added.output
    engine = make_engine(settings.database_url)
    maker = make_sessionmaker(engine)
    with maker() as session:
        org = session.scalar(select(Org).where(Org.name == name))
        assert org is not None and org.delete_ids_in == DeleteIdsIn.QUERY
        assert org_settings(org).delete_ids_in is DeleteIdsIn.QUERY
    changed = runner.invoke(
        main,
        ["orgs", "set", name, "--delete-ids-in", "body", "--participants-field", "entityIds"],
        env=env,
    )
    assert changed.exit_code == 0, changed.output
    assert "body" in changed.output
    with maker() as session:
        org = session.scalar(select(Org).where(Org.name == name))
        assert org is not None and org.delete_ids_in == DeleteIdsIn.BODY
        assert org_settings(org).participant_ids_field == "entityIds"
        assert org_settings(org).conversation_ids_field == "conversationIds"
        session.delete(org)
        session.commit()
    odd = runner.invoke(main, ["orgs", "set", name, "--participants-field", "a b"], env=env)
    assert odd.exit_code == 2
    engine.dispose()
    bad = runner.invoke(main, ["orgs", "set", name, "--delete-ids-in", "header"], env=env)
    assert bad.exit_code == 2
    missing = runner.invoke(
        main, ["orgs", "set", "no-such-org", "--delete-ids-in", "body"], env=env
    )
    assert missing.exit_code != 0 and "no org named" in missing.output


def test_missing_configuration_is_a_clear_error(runner: CliRunner) -> None:
    result = runner.invoke(
        main,
        ["api-keys", "create", "--role", "admin", "--name", "x"],
        env={"ERASURE_DATABASE_URL": ""},
    )
    assert result.exit_code != 0
    assert "ERASURE_ENCRYPTION_KEYS" in result.output and "ERASURE_PSEUDONYM_KEY" in result.output


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(env: dict[str, str], free_port: int) -> Iterator[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "erasure.cli",
            "serve",
            "--bind",
            f"127.0.0.1:{free_port}",
            "--workers",
            "1",
        ],
        env={**os.environ, **env},
    )
    url = f"http://127.0.0.1:{free_port}"
    try:
        # Generous: on a busy machine gunicorn can take well over ten seconds to come up.
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1)  # noqa: S310  # loopback
                break
            except OSError:
                assert process.poll() is None, "erasure serve exited"
                assert time.monotonic() < deadline, "erasure serve did not come up in 90 s"
                time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)


def test_serve_runs_the_api_under_gunicorn(served: str) -> None:
    with urllib.request.urlopen(f"{served}/healthz", timeout=5) as response:  # noqa: S310  # loopback
        assert response.status == 200
        assert response.headers["Server"].startswith("gunicorn")
