"""`erasure standalone` as a person runs it: a demo subject submitted over HTTP reaches
`completed`, Ctrl-C stops everything, and the request is still there after a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from erasure.audit.certificate import verify_certificate
from erasure.audit.checkpoint import VerifierKey
from tests.pipeline.harness import free_port

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def _start(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ERASURE_")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "erasure.cli",
                "standalone",
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_up(url: str, process: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "standalone exited during startup"
        try:
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise AssertionError("standalone did not come up")


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


def _certificate(url: str, request_id: str, headers: dict[str, str], timeout: float = 60) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        response = requests.get(
            f"{url}/v1/erasure-requests/{request_id}/certificate", headers=headers, timeout=10
        )
        if response.status_code == 200:
            return response.content
        assert response.status_code == 409 and response.json()["code"] == "not_ready", response.text
        assert time.monotonic() < deadline, "no checkpoint covered the request in time"
        time.sleep(float(response.headers.get("Retry-After", "1")))


def test_standalone_completes_a_demo_request_and_keeps_it_across_restarts(
    tmp_path: Path,
) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "standalone.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = _start(data_dir, port, log)
    try:
        _wait_up(url, process)
        key = (data_dir / "admin-api-key").read_text().strip()
        headers = {"Authorization": f"Bearer {key}"}
        created = requests.post(
            f"{url}/v1/erasure-requests",
            json={"subject": {"phone": "+14155550001"}, "regulation": "gdpr"},
            headers=headers,
            timeout=10,
        )
        assert created.status_code == 202, created.text
        request_id = created.json()["id"]
        body: dict[str, Any] = {}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            body = requests.get(
                f"{url}/v1/erasure-requests/{request_id}", headers=headers, timeout=10
            ).json()
            if body["status"] in ("completed", "failed", "completed_no_data"):
                break
            time.sleep(0.5)
        assert body["status"] == "completed", (body, log.read_text()[-3000:])
        assert body["targets"] == {"deleted": 1}
        # The certificate of erasure arrives once the worker has checkpointed the request's
        # leaves, and verifies offline with nothing but the published public key.
        certificate = _certificate(url, request_id, headers)
        verifier = VerifierKey.parse(
            requests.get(f"{url}/v1/audit/public-key", timeout=10).text.strip()
        )
        report = verify_certificate(certificate, verifier)
        assert report.ok, report.findings
        # ... and as an auditor would, with the command line and nothing else.
        (tmp_path / "certificate.json").write_bytes(certificate)
        audited = subprocess.run(
            [
                sys.executable,
                "-m",
                "erasure.cli",
                "audit",
                "verify",
                str(tmp_path / "certificate.json"),
                "--public-key",
                str(verifier),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert audited.returncode == 0, audited.stdout + audited.stderr
    finally:
        code = _stop(process)
    assert code == 0, log.read_text()[-3000:]

    process = _start(data_dir, port, log)
    try:
        _wait_up(url, process)
        again = requests.get(
            f"{url}/v1/erasure-requests/{request_id}", headers=headers, timeout=10
        ).json()
        assert again["status"] == "completed"
    finally:
        _stop(process)
