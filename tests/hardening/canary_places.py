"""Where the canary run looks, and how: our own Postgres (its data directory is scanned as bytes),
a MONITOR of Redis, the keys Redis keeps, base64 bodies decoded, log records as text, what local
receivers got, and an evidence export made by the command line as an auditor would."""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis
from psycopg import sql

from tests.support.processes import RedisServer
from tests.support.receivers import Receiver

_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def expand(text: str) -> str:
    """`text` with every base64 run in it decoded too (Celery message bodies are base64)."""
    decoded = []
    for run in _BASE64.findall(text):
        with contextlib.suppress(binascii.Error, ValueError):
            decoded.append(base64.b64decode(run + "=" * (-len(run) % 4)).decode("utf-8", "replace"))
    return "\n".join([text, *decoded])


@dataclass
class OwnPostgres:
    root: Path
    server: Any
    admin_url: str
    database_url: str

    @property
    def pgdata(self) -> Path:
        return Path(self.server.pgdata)

    def binary(self, name: str) -> str:
        return str(Path(self.server.bin_path) / name)


class RedisMonitor:
    """Every command Redis receives during the run, as MONITOR prints it, read by a thread."""

    END = b"canary-monitor-end"

    def __init__(self, server: RedisServer) -> None:
        self._server = server
        self._chunks: list[bytes] = []
        self._socket = socket.create_connection(("127.0.0.1", server.port), timeout=None)
        self._socket.sendall(b"MONITOR\r\n")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                data = self._socket.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            self._chunks.append(data)

    def stop(self) -> str:
        """Everything seen, once a marker sent last has come through (so nothing is cut off)."""
        client = redis.Redis(port=self._server.port)
        client.echo(self.END.decode())
        client.close()
        deadline = time.monotonic() + 30
        while self.END not in b"".join(self._chunks[-4:]) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._thread.join(10)
        text = b"".join(self._chunks).decode("utf-8", "replace")
        assert self.END.decode() in text, "MONITOR stopped early"
        return text


def redis_keyspace(url: str) -> str:
    client = redis.Redis.from_url(url)
    parts: list[str] = []
    for key in client.scan_iter(count=1000):
        parts.append(key.decode("utf-8", "replace"))
        kind = client.type(key).decode()
        values: list[bytes] = []
        if kind == "string":
            values = [client.get(key) or b""]
        elif kind == "list":
            values = list(client.lrange(key, 0, -1))
        elif kind == "hash":
            values = [part for pair in client.hgetall(key).items() for part in pair]
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
        parts += [value.decode("utf-8", "replace") for value in values]
    client.close()
    return "\n".join(parts)


def compressed_columns(database_url: str) -> list[str]:
    """Columns holding a value Postgres stored compressed (a row over about 2 kB): a byte scan
    of the data directory cannot see inside those, so the run must have written none."""
    found: list[str] = []
    with psycopg.connect(database_url.replace("+psycopg", "")) as connection:
        columns = connection.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN "
            "('text', 'bytea', 'jsonb', 'json', 'character varying')"
        ).fetchall()
        for table, column in columns:
            query = sql.SQL(
                "SELECT count(*) FROM {} WHERE pg_column_compression({}) IS NOT NULL"
            ).format(sql.Identifier(table), sql.Identifier(column))
            compressed = connection.execute(query).fetchone()
            if compressed and compressed[0]:
                found.append(f"{table}.{column}")
    return found


def scan_directory(root: Path, patterns: list[str]) -> dict[str, list[str]]:
    """Every file under `root`, read as bytes: which of `patterns` occur in each."""
    found: dict[str, list[str]] = {}
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        try:
            data = path.read_bytes().lower()
        except (PermissionError, FileNotFoundError):
            continue
        hits = [p for p in patterns if p.lower().encode() in data]
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


def record_text(record: logging.LogRecord) -> str:
    parts = [record.getMessage(), repr(record.args), repr(vars(record))]
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(parts)


def received_text(*receivers: Receiver) -> str:
    return "\n".join(
        f"{r.path} {json.dumps(r.headers)} {r.body.decode('utf-8', 'replace')}"
        for rx in receivers
        for r in rx.received
    )


def export_evidence(env: dict[str, str], tmp_path: Path) -> tuple[Path, str]:
    out = tmp_path / "evidence"
    done = subprocess.run(
        [sys.executable, "-m", "erasure.cli", "audit", "export", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out, done.stdout + done.stderr
