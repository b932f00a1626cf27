"""Structured JSON logs, one object per line, with the correlation id of the HTTP request or task.

Personal data and secrets are kept out by construction (the code logs ids, never identifiers or
bodies); `redact` is the second line of defence: any e-mail address, phone number, bearer
token, API key or JWT that reaches a log record anyway is replaced before it is written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from erasure import correlation

correlation_id = correlation.current
task_name: ContextVar[str | None] = ContextVar("task_name", default=None)

_REDACTIONS = [
    (re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [redacted]"),
    (re.compile(r"\bek_[0-9a-f]{12}_[A-Za-z0-9_-]+"), "[api-key]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), "[jwt]"),
    (re.compile(r"(?i)(client_secret|password|secret|token)=([^&\s]+)"), r"\1=[redacted]"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[email]"),
    # International numbers (+ and 7 to 15 digits, however spaced), and bare runs of 10 to 15
    # digits; ids (UUIDs, Salesforce ids) are letters and dashes around digits, so they stay.
    (re.compile(r"\+\d(?:[ ()./-]?\d){6,14}(?![\w])"), "[number]"),
    (re.compile(r"(?<![\w-])\d{10,15}(?![\w-])"), "[number]"),
]

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def redact(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line; message, extras and tracebacks redacted."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if (cid := correlation_id.get()) is not None:
            document["correlation_id"] = cid
        if (task := task_name.get()) is not None:
            document["task"] = task
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                document[name] = redact(str(value)) if isinstance(value, str) else value
        if record.exc_info:
            document["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(document, default=str)


def configure_logging(level: str = "INFO", *, stream: Any = None) -> None:
    """Send every log record through the JSON formatter on stderr (idempotent)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.set_name("erasure-json")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "erasure-json":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Libraries that log request URLs or token exchanges at DEBUG stay at WARNING.
    for noisy in ("urllib3", "requests_oauthlib", "oauthlib", "kombu", "amqp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


#: Celery's loggers that write a line per task received and finished, and per periodic send.
TASK_EVENT_LOGGERS = ("celery.app.trace", "celery.worker.strategy", "celery.beat")


def quiet_task_events() -> None:
    """Keep Celery's per-task INFO lines out of the logs (warnings and errors still pass)."""
    for name in TASK_EVENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
