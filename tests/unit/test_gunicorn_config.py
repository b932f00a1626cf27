"""The API's gunicorn settings (erasure.gunicorn_config): one sync worker per usable core unless
ERASURE_API_WORKERS says otherwise, and a clear refusal of a value that is not a worker count.
Checked by loading the module the way gunicorn does, and by starting gunicorn with it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from erasure import gunicorn_config


def _reloaded(monkeypatch: pytest.MonkeyPatch, value: str | None) -> ModuleType:
    if value is None:
        monkeypatch.delenv("ERASURE_API_WORKERS", raising=False)
    else:
        monkeypatch.setenv("ERASURE_API_WORKERS", value)
    import importlib

    return importlib.reload(gunicorn_config)


def test_one_worker_per_usable_core_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _reloaded(monkeypatch, None)
    assert config.workers == len(os.sched_getaffinity(0))
    assert (config.timeout, config.graceful_timeout, config.accesslog) == (30, 20, "-")


def test_the_environment_sets_the_worker_count(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _reloaded(monkeypatch, " 5 ").workers == 5


@pytest.mark.parametrize("value", ["four", "0", "-2", "65", "2.5"])
def test_a_value_that_is_not_a_worker_count_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    with pytest.raises(SystemExit) as refused:
        _reloaded(monkeypatch, value)
    assert "ERASURE_API_WORKERS" in str(refused.value) and "1 to 64" in str(refused.value)
    _reloaded(monkeypatch, None)  # leave the module as the other tests expect it


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_gunicorn_starts_that_many_workers_from_the_module(tmp_path: Path) -> None:
    """What docker-compose's `api` service runs: gunicorn reads the module by its dotted name."""
    app = tmp_path / "tinyapp.py"
    app.write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'ok']\n"
    )
    port = _free_port()
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "--config=python:erasure.gunicorn_config",
            f"--bind=127.0.0.1:{port}",
            "tinyapp:app",
        ],
        cwd=tmp_path,
        env={**os.environ, "ERASURE_API_WORKERS": "3", "PYTHONPATH": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        children: list[str] = []
        while time.monotonic() < deadline:
            found = subprocess.run(
                ["pgrep", "-P", str(process.pid)], capture_output=True, text=True, check=False
            )
            children = found.stdout.split()
            if len(children) >= 3:
                break
            assert process.poll() is None, "gunicorn exited"
            time.sleep(0.1)  # polling the process table for a condition, bounded by the deadline
        assert len(children) == 3
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
