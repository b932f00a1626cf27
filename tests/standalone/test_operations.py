"""`erasure standalone` started in the background from a script (`&`), as the README shows: its
readiness follows the worker's and beat's heartbeats, every process it starts logs JSON to private,
rotated files (the correlation id of a 500 is in the API's), slow clients are cut off, and SIGINT
stops everything even though a background job inherits SIGINT ignored."""

from __future__ import annotations

import json
import signal
import socket
import stat
import threading
from pathlib import Path

import psycopg
import pytest
import requests

from tests.support.standalone import STOP_BOUND_S, Standalone, running_standalone, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.timeout(900)]

#: Short bounds for this run (the defaults are documented in the README).
FAST = {
    "ERASURE_HEARTBEAT_INTERVAL_S": "1",
    "ERASURE_HEARTBEAT_TIMEOUT_S": "6",
    "ERASURE_HTTP_HEADER_TIMEOUT_S": "3",
    "ERASURE_HTTP_BODY_TIMEOUT_S": "4",
}


def _not_ready_because(sa: Standalone, check: str) -> dict[str, str] | None:
    answer = sa.readiness()
    if answer is None or answer[0] != 503 or answer[1].get(check, "ok") == "ok":
        return None
    return answer[1]


def _hung_piece_fails_readiness(sa: Standalone, role: str, check_prefix: str) -> None:
    """SIGSTOP a process (alive, so nobody restarts it, but silent): /readyz fails naming it
    once its heartbeat is older than the bound, and recovers after SIGCONT."""
    process = sa.one(role)
    names = [name for name in (sa.readiness() or (0, {}))[1] if name.startswith(check_prefix)]
    assert names, f"/readyz has no {check_prefix} check"
    process.suspend()
    try:
        checks = wait_for(
            lambda: _not_ready_because(sa, names[0]), f"/readyz to fail for {role}", timeout=90
        )
        assert "heartbeat" in checks[names[0]], checks
        assert checks["database"] == "ok" and checks["broker"] == "ok", checks
    finally:
        process.resume()
    sa.wait_ready()


def _socket_dir(sa: Standalone) -> str:
    # postmaster.pid, line 5: the directory of the server's Unix socket.
    return (sa.data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[4]


def _internal_error_is_logged(sa: Standalone) -> None:
    """Break the schema under the API (a table renamed away): the 500's correlation id is in the
    API's JSON log, on the line with the traceback."""
    with psycopg.connect(host=_socket_dir(sa), user="postgres", dbname="postgres") as db:
        db.execute("ALTER TABLE webhook_sources RENAME TO webhook_sources_away")
        db.commit()
        try:
            response = requests.get(f"{sa.url}/v1/webhook-sources", headers=sa.headers, timeout=15)
        finally:
            db.execute("ALTER TABLE webhook_sources_away RENAME TO webhook_sources")
            db.commit()
    assert response.status_code == 500, response.text
    correlation_id = response.json()["correlation_id"]
    assert correlation_id and response.headers["X-Request-Id"] == correlation_id
    api_log = sa.data_dir / "logs" / "api.log"

    def logged() -> list[dict[str, object]]:
        entries = [json.loads(line) for line in api_log.read_text().splitlines()]
        return [e for e in entries if e.get("correlation_id") == correlation_id]

    entries = wait_for(logged, "the 500 in the API log", timeout=30)
    assert any(e["level"] == "ERROR" and "exception" in e for e in entries), entries


def _logs_are_private_json(sa: Standalone) -> None:
    logs = sa.data_dir / "logs"
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700
    names = {path.name for path in logs.iterdir()}
    for expected in ("supervisor.log", "api.log", "postgres.log", "redis.log", "beat.log"):
        assert expected in names, names
    assert any(name.startswith("worker") for name in names), names
    for path in logs.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        lines = path.read_text().splitlines()
        assert lines, path
        for line in lines:
            entry = json.loads(line)  # one JSON object per line, whatever the process
            assert {"ts", "level", "logger", "message"} <= set(entry), (path, line)


def _slow_header_client(sa: Standalone, outcome: dict[str, object]) -> None:
    """Sends a request's headers one byte a second, for far longer than any bound."""
    with socket.create_connection(("127.0.0.1", sa.port), timeout=30) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        try:
            for _ in range(120):  # 120 s: forty times the 3 s bound of this run
                conn.sendall(b"a")
                conn.settimeout(1.0)
                try:
                    if conn.recv(1024) == b"":
                        outcome["cut"] = True
                        return
                except TimeoutError:
                    pass
        except (BrokenPipeError, ConnectionResetError):
            outcome["cut"] = True
            return
    outcome["cut"] = False


def _slow_body_client(sa: Standalone, outcome: dict[str, object]) -> None:
    """Sends complete headers, then a body that never finishes."""
    with socket.create_connection(("127.0.0.1", sa.port), timeout=30) as conn:
        headers = (
            "POST /v1/erasure-requests HTTP/1.1\r\nHost: localhost\r\n"
            f"Authorization: {sa.headers['Authorization']}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        conn.sendall(headers.encode())
        try:
            for _ in range(120):  # 120 s: thirty times the 4 s bound of this run
                conn.sendall(b" ")
                conn.settimeout(1.0)
                try:
                    answer = conn.recv(4096)
                except TimeoutError:
                    continue
                outcome["answer"] = answer.split(b"\r\n", 1)[0].decode()
                outcome["cut"] = True
                return
        except (BrokenPipeError, ConnectionResetError):
            outcome["cut"] = True
            return
    outcome["cut"] = False


def _slow_clients_are_cut_off(sa: Standalone) -> None:
    header_outcome: dict[str, object] = {}
    body_outcome: dict[str, object] = {}
    slow = [
        threading.Thread(target=_slow_header_client, args=(sa, header_outcome)),
        threading.Thread(target=_slow_body_client, args=(sa, body_outcome)),
    ]
    for thread in slow:
        thread.start()
    # While they trickle, everyone else is served.
    for _ in range(5):
        assert sa.get("/healthz").status_code == 200
        assert sa.get("/v1/erasure-requests", headers=sa.headers).status_code == 200
    for thread in slow:
        thread.join(timeout=200)
    assert header_outcome == {"cut": True}
    assert body_outcome["cut"] is True
    assert body_outcome.get("answer", "HTTP/1.1 408")[:12] in ("HTTP/1.1 408", "HTTP/1.0 408")


def test_a_background_standalone_reports_logs_serves_and_stops() -> None:
    with running_standalone(env_extra=FAST) as sa:
        sa.start_from_script()
        sa.wait_ready()
        status, checks = sa.readiness() or (0, {})
        assert status == 200 and checks["beat"] == "ok", checks

        _hung_piece_fails_readiness(sa, "beat", "beat")
        _hung_piece_fails_readiness(sa, "worker", "worker:pipeline")
        _hung_piece_fails_readiness(sa, "worker-deliveries", "worker:deliveries")
        sa.assert_demo_request_completes("+14155550011")
        _internal_error_is_logged(sa)
        _slow_clients_are_cut_off(sa)
        _logs_are_private_json(sa)

        # A background job ignores SIGINT unless it says otherwise: standalone says otherwise.
        with Path(f"/proc/{sa.pid}/status").open() as status_file:
            ignored = next(line for line in status_file if line.startswith("SigIgn:"))
        assert int(ignored.split()[1], 16) & (1 << (signal.SIGINT - 1)) == 0, ignored
        _, elapsed = sa.stop(signal.SIGINT)
        assert elapsed < STOP_BOUND_S, (elapsed, sa.supervisor_log())  # the bound
        assert sa.leftovers() == []
