"""The README's walk-through, command by command, against a fresh standalone: no environment set
by hand. Standalone runs as a person runs it (a subprocess, its data in `./.erasure`); every
`erasure` command runs from the directory holding `.erasure`, as the README shows, and finds it
there; one runs elsewhere and finds the running standalone; after the stop a command says that
standalone is not running. Nothing is left running afterwards."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.standalone import Standalone, running_standalone, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.timeout(900)]


def _printed(sa: Standalone) -> dict[str, str]:
    """The `name: value` lines standalone printed before `ready`."""
    text = wait_for(
        lambda: sa.output() if "\nready\n" in sa.output() else None, "standalone's ready line"
    )
    lines = text.split("\nready\n")[0].splitlines()
    return dict(line.split(": ", 1) for line in lines if re.match(r"^[a-z][a-z ]*: \S", line))


class Erasure:
    """Runs `erasure ...` as a person types it: in `cwd`, with no ERASURE_* variable set."""

    def __init__(self, sa: Standalone, cwd: Path) -> None:
        self.cwd = cwd
        env = {k: v for k, v in os.environ.items() if not k.startswith("ERASURE_")}
        self.env = {**env, **sa.env_extra}

    def __call__(
        self, *args: str, stdin: str = "", ok: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "erasure.cli", *args],
            cwd=self.cwd,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if ok:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done


def _submit(sa: Standalone, key: str, phone: str) -> str:
    answer = requests.post(
        f"{sa.url}/v1/erasure-requests",
        json={
            "subject": {"phone": phone},
            "regulation": "gdpr",
            "reference": {"system": "jira", "id": "PRIV-1234"},
        },
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": '"PRIV-1234"'},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def _wait_completed(sa: Standalone, key: str, request_id: str) -> dict[str, Any]:
    def final() -> dict[str, Any] | None:
        body: dict[str, Any] = requests.get(
            f"{sa.url}/v1/erasure-requests/{request_id}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ).json()
        return body if body["status"] in ("completed", "failed", "cancelled") else None

    return dict(wait_for(final, "the demo request to finish", timeout=180, every=0.5))


def test_the_readme_walkthrough_needs_no_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)  # as on a server or in a container
    with running_standalone(data_name=".erasure") as sa:
        # A private temporary directory: the pointer to the running standalone is per user.
        private_tmp = sa.root / "tmp"
        private_tmp.mkdir()
        sa.env_extra = {"TMPDIR": str(private_tmp), "COLUMNS": "80"}
        sa.start()
        sa.wait_ready()
        printed = _printed(sa)
        output = sa.output()
        assert "XDG_RUNTIME_DIR" not in output and "Warning" not in output, output
        # Whole lines a script can read: nothing wrapped at 80 columns.
        assert printed["url"] == sa.url
        assert printed["admin key file"] == str(sa.data_dir / "admin-api-key")
        assert printed["console login file"] == str(sa.data_dir / "admin-console-login")
        assert printed["sandbox url"].startswith("https://127.0.0.1:")
        assert Path(printed["ca bundle"]).is_file()
        assert printed["client id"] == "erasure-sandbox-1"
        assert Path(printed["client secret file"]).stat().st_mode & 0o077 == 0
        assert printed["demo subjects"] == "+14155550001 ... +14155550036"
        assert printed["data dir"] == str(sa.data_dir)

        erasure = Erasure(sa, cwd=sa.root)  # where `.erasure` is

        # An officer's key, as the README creates it.
        created = erasure("api-keys", "create", "--role", "officer", "--name", "Ana (DPO)")
        officer = created.stdout.strip()
        assert officer.startswith("ek_") and "not shown again" in created.stderr
        prefix = officer.removeprefix("ek_").split("_")[0]
        listed = erasure("api-keys", "list").stdout
        assert any(
            line.startswith(prefix) and "\tofficer\t" in line and line.endswith("Ana (DPO)")
            for line in listed.splitlines()
        ), listed

        # A console user, the password typed at the prompt.
        password = "a long enough password"
        made = erasure(
            "users",
            "create",
            "--role",
            "officer",
            "--email",
            "ana@example.org",
            stdin=f"{password}\n{password}\n",
        )
        assert "created officer user ana@example.org" in made.stdout

        # The demo request, with the officer's key, completes.
        request_id = _submit(sa, officer, "+14155550001")
        assert _wait_completed(sa, officer, request_id)["status"] == "completed"

        # Its certificate, verified with the standalone's own public key (the default here).
        certificate = sa.root / "certificate.json"

        def certified() -> bool:
            done = erasure("audit", "certificate", request_id, "--out", str(certificate), ok=False)
            return done.returncode == 0

        wait_for(certified, "the certificate (its events checkpointed)", timeout=120, every=1)
        verified = erasure("audit", "verify", str(certificate))
        assert "VERIFIED" in verified.stdout, verified.stdout
        public = erasure("signing-keys", "public").stdout.strip()
        assert public.startswith("erasure-standalone/audit+")

        sequenced = erasure("audit", "sequence").stdout
        assert sequenced.startswith("sequenced "), sequenced

        # An evidence export, verified offline.
        bundle = sa.root / "evidence"
        exported = erasure("audit", "export", "--out", str(bundle))
        assert exported.stdout.startswith(f"wrote {bundle}:"), exported.stdout
        checked = erasure("audit", "verify", str(bundle), "--public-key", public, "--json")
        assert json.loads(checked.stdout)["exit_code"] == 0

        # The schema, the encryption keys, the sandbox org.
        assert "database at head" in erasure("db", "check").stdout
        assert "database upgraded to head" in erasure("db", "upgrade").stdout
        assert "re-encrypted" in erasure("encryption-keys", "reencrypt").stdout
        assert "re-encrypted" in erasure("keys", "reencrypt").stdout  # the old name
        check = erasure("salesforce", "check", "--skip-delete-probe")
        assert "All checks passed." in check.stdout, check.stdout

        # From elsewhere: the running standalone is found, or named with --data-dir.
        elsewhere = Erasure(sa, cwd=tmp_path)
        assert prefix in elsewhere("api-keys", "list").stdout
        assert prefix in elsewhere("--data-dir", str(sa.data_dir), "api-keys", "list").stdout
        named = elsewhere("--data-dir", str(sa.data_dir), "api-keys", "revoke", prefix)
        assert named.stdout.strip() == f"revoked {prefix}"

        _idle_worker_is_quiet(sa)

        code, _ = sa.stop(signal.SIGTERM)
        assert code == 0
        assert sa.leftovers() == []

        # Stopped: a command says so, rather than failing to connect somewhere.
        stopped = erasure("api-keys", "list", ok=False)
        assert stopped.returncode == 1
        assert "is not running" in stopped.stderr and "erasure standalone" in stopped.stderr
        assert "Traceback" not in stopped.stderr


def _idle_worker_is_quiet(sa: Standalone) -> None:
    """No line per periodic tick: the worker's and beat's logs hold no task-event chatter."""
    logs = sa.data_dir / "logs"
    worker = (logs / "worker.log").read_text()
    beat = (logs / "beat.log").read_text()
    assert "Task erasure.dispatch[" not in worker
    assert "Sending due task" not in beat
