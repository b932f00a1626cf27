"""The log's origin in a real database, through the commands an operator runs: a new public URL
does not split the log, a mismatched ERASURE_AUDIT_ORIGIN is refused at start, and a log started
before the origin followed the key name (old standalone data directories) stays one verifiable log.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select

from erasure import schema
from erasure.app import create_app
from erasure.audit import leaves, store
from erasure.audit.checkpoint import Checkpoint, SigningKey, read_checkpoint_unverified
from erasure.audit.models import AuditCheckpoint
from erasure.audit.origin import LogIdentityError
from erasure.audit.verify import verify_bundle
from erasure.cli import main
from erasure.config import Settings
from erasure.db import make_sessionmaker
from tests.support.databases import database_url_for

KEY_NAME = "erasure.example.com/audit"


@pytest.fixture
def log_database(admin_url: str) -> Iterator[str]:
    """A database of its own: these tests need a log no other test writes to."""
    name = f"erasure_origin_{uuid.uuid4().hex[:8]}_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = database_url_for(admin_url, name)
    schema.upgrade(url)
    yield url
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _env(settings: Settings, database_url: str, key_file: Path, public_url: str) -> dict[str, str]:
    return {
        "ERASURE_DATABASE_URL": database_url,
        "ERASURE_ENCRYPTION_KEYS": ",".join(
            f"{k}:{v.get_secret_value()}" for k, v in settings.encryption_keys.items()
        ),
        "ERASURE_PSEUDONYM_KEY": settings.pseudonym_key.get_secret_value(),
        "ERASURE_PUBLIC_URL": public_url,
        "ERASURE_BROKER_URL": "memory://",
        "ERASURE_AUDIT_SIGNING_KEY_FILE": str(key_file),
    }


def _append(database_url: str, n: int) -> None:
    engine = create_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            request_id = uuid.uuid4()
            for i in range(n):
                leaves.append(session, kind="test.event", request_id=request_id, data={"n": i})
            session.commit()
    finally:
        engine.dispose()


def _origins(database_url: str) -> list[str]:
    engine = create_engine(database_url)
    try:
        with make_sessionmaker(engine)() as session:
            notes = session.scalars(select(AuditCheckpoint.note).order_by(AuditCheckpoint.size))
            return [read_checkpoint_unverified(note).origin for note in notes]
    finally:
        engine.dispose()


def test_a_new_public_url_does_not_split_the_log(
    settings: Settings, log_database: str, tmp_path: Path
) -> None:
    runner = CliRunner()
    keys = tmp_path / "keys"
    generated = runner.invoke(main, ["keys", "generate", "--name", KEY_NAME, "--out", str(keys)])
    assert generated.exit_code == 0, generated.output
    key_file = keys / "private-key.txt"
    for public_url in ("https://erasure.example.com", "https://privacy.example.net"):
        _append(log_database, 3)
        env = _env(settings, log_database, key_file, public_url)
        sequenced = runner.invoke(main, ["audit", "sequence"], env=env)
        assert sequenced.exit_code == 0, sequenced.output
    assert _origins(log_database) == [KEY_NAME, KEY_NAME]
    exported = runner.invoke(main, ["audit", "export", "--out", str(tmp_path / "b")], env=env)
    assert exported.exit_code == 0, exported.output
    key = SigningKey.parse(key_file.read_text())
    report = verify_bundle(tmp_path / "b", key.verifier())
    assert report.ok, report.findings


def test_an_origin_that_contradicts_the_key_is_refused_at_start(
    settings: Settings, log_database: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "audit.key"
    key_file.write_text(SigningKey.generate(KEY_NAME).to_text())
    _append(log_database, 2)
    env = {
        **_env(settings, log_database, key_file, "https://erasure.example.com"),
        "ERASURE_AUDIT_ORIGIN": "erasure.example.com/erasure-audit",
    }
    refused = CliRunner().invoke(main, ["audit", "sequence"], env=env)
    assert refused.exit_code != 0
    assert "erasure.example.com/erasure-audit" in refused.output
    assert KEY_NAME in refused.output
    assert _origins(log_database) == []  # nothing was signed
    bad = settings.model_copy(
        update={
            "database_url": log_database,
            "audit_signing_key_file": key_file,
            "audit_origin": "erasure.example.com/erasure-audit",
        }
    )
    with pytest.raises(LogIdentityError):
        create_app(bad)


def test_a_worker_with_a_contradicting_origin_refuses_to_start(
    settings: Settings, log_database: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "audit.key"
    key_file.write_text(SigningKey.generate(KEY_NAME).to_text())
    env = {
        **os.environ,
        **_env(settings, log_database, key_file, "https://erasure.example.com"),
        "ERASURE_AUDIT_ORIGIN": "erasure.example.com/erasure-audit",
        "PYTHONWARNINGS": "ignore",
    }
    command = [sys.executable, "-m", "celery", "-A", "erasure.worker", "worker", "--pool=solo"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = process.communicate(timeout=120)  # it must exit on its own, at once
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode != 0
    assert "refuses to start" in output and KEY_NAME in output


def test_an_old_standalone_log_stays_one_verifiable_log(
    settings: Settings, log_database: str, tmp_path: Path
) -> None:
    """A data directory made before the origin followed the key: key `erasure-standalone/audit`,
    checkpoints `127.0.0.1/erasure-audit`. Its checkpoints keep that origin, so an auditor's old
    checkpoint and old verifier key still work, and the bundle is one log."""
    legacy_key = SigningKey.generate("erasure-standalone/audit")
    key_file = tmp_path / "audit-signing.key"
    key_file.write_text(legacy_key.to_text())
    _append(log_database, 4)
    engine = create_engine(log_database)
    with make_sessionmaker(engine)() as session:  # what the old code wrote
        while store.sequence(session):
            pass
        head, _ = store.latest_head(session)
        old_note = Checkpoint("127.0.0.1/erasure-audit", head.size, head.root).sign(legacy_key)
        session.add(
            AuditCheckpoint(size=head.size, root=head.root, note=old_note, key_name=legacy_key.name)
        )
        session.commit()
    engine.dispose()
    # A new version, on another port (the old origin followed the public URL's host).
    _append(log_database, 3)
    env = _env(settings, log_database, key_file, "http://localhost:8123")
    sequenced = CliRunner().invoke(main, ["audit", "sequence"], env=env)
    assert sequenced.exit_code == 0, sequenced.output
    assert _origins(log_database) == ["127.0.0.1/erasure-audit"] * 2
    exported = CliRunner().invoke(main, ["audit", "export", "--out", str(tmp_path / "b")], env=env)
    assert exported.exit_code == 0, exported.output
    since = tmp_path / "old.note"
    since.write_text(old_note)
    report = verify_bundle(tmp_path / "b", legacy_key.verifier(), since=since.read_bytes())
    assert report.ok, report.findings
    assert report.tree_size == 7 and report.since_size == 4
