"""The log files of standalone's processes: one per service under `<data dir>/logs`, one JSON
object per line (the production format), rotated by size, readable by their owner only.

Our own processes already write JSON lines (erasure.observability.logs); they pass through as
they are. Anything else a process prints (Postgres, Redis, Celery's banner, a crash's traceback)
is wrapped in the same shape and redacted like our own records, so every line of every file
parses the same way.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO

from erasure.observability.logs import JsonFormatter, redact

MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 3


class PrivateRotatingFileHandler(RotatingFileHandler):
    """A RotatingFileHandler whose files are created 0600, with no moment of being readable by
    others (rotated files keep the mode; an older file of ours is tightened on open)."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)
        return open(fd, "a", encoding=self.encoding, errors=self.errors)  # the handler keeps it


class _AsIs(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return record.getMessage()


def _level_of(text: str) -> str:
    if any(word in text for word in ("PANIC", "FATAL", "ERROR", "Traceback")):
        return "ERROR"
    return "WARNING" if "WARNING" in text else "INFO"


def as_json_line(service: str, text: str) -> str:
    """`text` if it already is one of our JSON records, else `text` wrapped as one."""
    if text.startswith("{"):
        try:
            if isinstance(json.loads(text), dict):
                return text
        except ValueError:
            pass
    return json.dumps(
        {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": _level_of(text),
            "logger": service,
            "message": redact(text),
        }
    )


class LogFiles:
    """The `logs` directory (0700) and a rotating, private file per service."""

    def __init__(self, directory: Path, *, max_bytes: int = MAX_BYTES, backups: int = BACKUPS):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)  # made by an older version, or under another umask
        for old in directory.iterdir():  # an older version's files were world-readable
            if old.is_file():
                old.chmod(0o600)
        self.directory = directory
        self.max_bytes = max_bytes
        self.backups = backups
        self._handlers: dict[str, PrivateRotatingFileHandler] = {}
        self._lock = threading.Lock()

    def path(self, service: str) -> Path:
        return self.directory / f"{service}.log"

    def handler(self, service: str, formatter: logging.Formatter | None = None) -> logging.Handler:
        with self._lock:
            handler = self._handlers.get(service)
            if handler is None:
                handler = PrivateRotatingFileHandler(
                    self.path(service),
                    maxBytes=self.max_bytes,
                    backupCount=self.backups,
                    encoding="utf-8",
                )
                handler.setFormatter(formatter or _AsIs())
                self._handlers[service] = handler
            return handler

    def write(self, service: str, text: str) -> None:
        """One line a process printed."""
        text = text.rstrip("\r\n")
        if text.strip():
            record = logging.LogRecord(service, logging.INFO, "", 0, "%s", None, None)
            record.args = (as_json_line(service, text),)
            self.handler(service).handle(record)

    def pump(self, service: str, stream: IO[bytes]) -> threading.Thread:
        """Copy a process's output into its log file, line by line, until the process (and
        everything that inherited its output) is gone."""

        def copy() -> None:
            with stream:
                for raw in iter(stream.readline, b""):
                    self.write(service, raw.decode("utf-8", errors="replace"))

        thread = threading.Thread(target=copy, name=f"log-{service}", daemon=True)
        thread.start()
        return thread

    def logger(self, name: str, service: str) -> logging.Logger:
        """A logger of its own (not in logging's registry) writing our JSON records to
        `service`'s file only."""
        logger = logging.Logger(name, logging.INFO)
        logger.addHandler(self.handler(service, JsonFormatter()))
        return logger

    def close(self) -> None:
        with self._lock:
            for handler in self._handlers.values():
                handler.close()
            self._handlers.clear()
