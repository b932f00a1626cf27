"""`erasure standalone` as a person runs it: a demo subject submitted over HTTP reaches
`completed`, Ctrl-C stops everything (nothing left running, the embedded Redis included), the
request is still there after a restart, and SIGTERM in the middle of a request stops everything
too."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from erasure.audit.certificate import verify_certificate
from erasure.audit.checkpoint import VerifierKey
from tests.support.standalone import STOP_BOUND_S, Standalone, running_standalone, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.timeout(900)]


def _certificate(sa: Standalone, request_id: str, timeout: float = 90) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        response = sa.get(f"/v1/erasure-requests/{request_id}/certificate", headers=sa.headers)
        if response.status_code == 200:
            return response.content
        assert response.status_code == 409 and response.json()["code"] == "not_ready", response.text
        assert time.monotonic() < deadline, "no checkpoint covered the request in time"
        time.sleep(float(response.headers.get("Retry-After", "1")))


def _verify_as_an_auditor(sa: Standalone, request_id: str, workdir: Path) -> None:
    # The certificate of erasure arrives once the worker has checkpointed the request's leaves,
    # and verifies offline with nothing but the published public key.
    certificate = _certificate(sa, request_id)
    verifier = VerifierKey.parse(sa.get("/v1/audit/public-key").text.strip())
    report = verify_certificate(certificate, verifier)
    assert report.ok, report.findings
    # ... and as an auditor would, with the command line and nothing else.
    (workdir / "certificate.json").write_bytes(certificate)
    audited = subprocess.run(
        [
            sys.executable,
            "-m",
            "erasure.cli",
            "audit",
            "verify",
            str(workdir / "certificate.json"),
            "--public-key",
            str(verifier),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert audited.returncode == 0, audited.stdout + audited.stderr


def _stop_and_check(sa: Standalone, signum: int) -> None:
    code, elapsed = sa.stop(signum)
    assert code == 0, sa.output()
    assert elapsed < STOP_BOUND_S, (elapsed, sa.supervisor_log())  # the bound
    assert sa.leftovers() == [], sa.output()


def test_standalone_completes_a_demo_request_and_keeps_it_across_restarts(
    tmp_path: Path,
) -> None:
    with running_standalone() as sa:
        sa.start()
        sa.wait_ready()
        request_id = sa.submit("+14155550001")
        body = sa.wait_final(request_id)
        assert body["status"] == "completed", (body, sa.output())
        assert body["targets"] == {"deleted": 1}
        _verify_as_an_auditor(sa, request_id, tmp_path)
        # After API use (the API, the worker and beat all hold connections to the embedded
        # Redis and Postgres), Ctrl-C leaves nothing running.
        _stop_and_check(sa, signal.SIGINT)

        sa.start()
        sa.wait_ready()
        assert sa.status(request_id)["status"] == "completed"

        # SIGTERM while a request is being worked and a client is half-way through a request.
        running = sa.submit("+14155550013")
        wait_for(
            lambda: sa.status(running)["status"] in ("resolving", "deleting", "confirming"),
            "the request to be in the worker's hands",
        )
        with socket.create_connection(("127.0.0.1", sa.port), timeout=30) as half_way:
            half_way.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
            _stop_and_check(sa, signal.SIGTERM)
        with pytest.raises(requests.ConnectionError):
            sa.get("/healthz")
