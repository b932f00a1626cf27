"""The running standalone as the soak drives it: submitting requests through its API and a
signed webhook (each retried while a piece restarts), reading them back, and the thread that
kills its processes (bench/soak.py runs the soak with these)."""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psutil  # type: ignore[import-untyped]
import requests
import standardwebhooks

from erasure.standalone.datadir import Connection, DataDir
from tests.standalone.harness import Standalone, kill9, pool_children, wait_for

VICTIMS = ("worker-child", "worker", "redis", "postgres")
WEBHOOK_SOURCE = "soak-tickets"


def log(message: str) -> None:
    print(message, flush=True)


def wait_until(condition: Callable[[], Any], what: str, timeout: float) -> Any:
    """Poll `condition` until truthy; raise TimeoutError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)  # polling a condition, not waiting for time


@dataclass
class Submission:
    """One request as submitted: how, and what became of it."""

    action: str
    key: str  # idempotency key, or the webhook delivery id
    body: dict[str, Any]
    via_webhook: bool = False
    cancel: bool = False
    request_id: str | None = None
    final: dict[str, Any] | None = None
    cancel_answer: int | None = None


class Stack:
    """A running standalone as the soak drives it: its API, its sandbox org, its database."""

    def __init__(self, sa: Standalone) -> None:
        self.sa = sa
        self.http = requests.Session()
        self.sandbox_url = ""
        self.ca_path = sa.data_dir / "sandbox" / "sandbox-cert.pem"
        self.webhook_secret = ""

    def start(self) -> None:
        self.sa.start()
        self.sa.wait_ready(timeout=300)
        # Standalone writes how to reach it, sandbox included, once everything is up.
        connection = wait_for(
            lambda: Connection.read(DataDir(self.sa.data_dir)), "standalone's connection file"
        )
        if not connection.sandbox_url:
            raise RuntimeError("standalone runs no sandbox org")
        self.sandbox_url = connection.sandbox_url

    def env(self) -> dict[str, str]:
        """The service's settings, as its worker runs with them (database URL, keys)."""
        worker = self.sa.one("worker")
        environ = worker.environ()
        return {k: v for k, v in environ.items() if k.startswith("ERASURE_") or k == "PATH"} | {
            "PYTHONWARNINGS": "ignore"
        }

    def sandbox(self, method: str, action: str, body: Any = None) -> Any:
        response = requests.request(
            method,
            f"{self.sandbox_url}/__sandbox__/{action}",
            json=body,
            verify=str(self.ca_path),
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def compress_hour(self, hour_s: int) -> None:
        """One compressed hour for the sandbox's quota and the org's execution users."""
        self.sandbox("PATCH", "org", {"hour_s": float(hour_s), "log_step_s": 0.5})
        # Through the service's own settings: its database listens on a Unix socket only.
        script = (
            "import sys, sqlalchemy as sa\n"
            "from erasure.config import Settings\n"
            "e = sa.create_engine(Settings().database_url)\n"
            "with e.begin() as c:\n"
            "    c.execute(sa.text('UPDATE orgs SET window_s = :w'), {'w': int(sys.argv[1])})\n"
        )
        subprocess.run([sys.executable, "-c", script, str(hour_s)], env=self.env(), check=True)

    def add_webhook_source(self) -> None:
        response = self.http.post(
            f"{self.sa.url}/v1/webhook-sources",
            json={"name": WEBHOOK_SOURCE, "system": "standard_webhooks", "org": "sandbox"},
            headers=self.sa.headers,
            timeout=30,
        )
        if response.status_code != 201:
            raise RuntimeError(f"adding the webhook source: {response.text}")
        self.webhook_secret = response.json()["secret"]

    # -- submitting ------------------------------------------------------------------------------

    def _post(self, submission: Submission) -> requests.Response:
        if submission.via_webhook:
            body = json.dumps(
                {
                    "type": "erasure.requested",
                    "timestamp": datetime.now(UTC).isoformat(),
                    "data": {
                        "subject": submission.body,
                        "regulation": "gdpr",
                        "reference": {"id": submission.key},
                    },
                }
            )
            at = datetime.now(UTC)
            signature = standardwebhooks.Webhook(self.webhook_secret).sign(submission.key, at, body)
            headers = {
                "Content-Type": "application/json",
                "webhook-id": submission.key,
                "webhook-timestamp": str(int(at.timestamp())),
                "webhook-signature": signature,
            }
            return self.http.post(
                f"{self.sa.url}/v1/webhooks/{WEBHOOK_SOURCE}",
                data=body,
                headers=headers,
                timeout=30,
            )
        return self.http.post(
            f"{self.sa.url}/v1/erasure-requests",
            json={"subject": submission.body, "regulation": "gdpr"},
            headers={**self.sa.headers, "Idempotency-Key": f'"{submission.key}"'},
            timeout=30,
        )

    def submit(self, submission: Submission) -> None:
        def sent() -> bool:
            try:
                response = self._post(submission)
            except requests.RequestException:
                return False
            if response.status_code in (500, 502, 503, 504):
                return False  # a piece is restarting: the idempotency key makes a retry safe
            if response.status_code not in (200, 201, 202):
                raise RuntimeError(f"{submission.key}: {response.status_code} {response.text}")
            body = response.json()
            if submission.via_webhook:
                submission.request_id = body.get("request_id")
            else:
                submission.request_id = str(body["id"])
            return True

        wait_until(sent, f"submission {submission.key}", timeout=300)
        if submission.cancel and submission.request_id:

            def cancelled() -> bool:
                try:
                    response = self.http.post(
                        f"{self.sa.url}/v1/erasure-requests/{submission.request_id}/cancel",
                        json={"reason": "soak: the subject withdrew the request"},
                        headers=self.sa.headers,
                        timeout=30,
                    )
                except requests.RequestException:
                    return False
                if response.status_code >= 500:
                    return False
                submission.cancel_answer = response.status_code
                return True

            wait_until(cancelled, f"cancel of {submission.key}", timeout=300)

    def status(self, request_id: str) -> dict[str, Any] | None:
        try:
            response = self.http.get(
                f"{self.sa.url}/v1/erasure-requests/{request_id}",
                headers=self.sa.headers,
                timeout=30,
            )
        except requests.RequestException:
            return None
        if response.status_code != 200:
            return None
        body: dict[str, Any] = response.json()
        return body


class Killer(threading.Thread):
    """kill -9 a random victim at random moments (seeded), each kind at least once per round."""

    def __init__(self, stack: Stack, rng: random.Random, kills: int, every_s: float) -> None:
        super().__init__(name="soak-killer", daemon=True)
        self.stack = stack
        self.rng = rng
        self.kills = kills
        self.every_s = every_s
        self.done: list[str] = []
        self.stop = threading.Event()
        self.error: Exception | None = None
        self.started_at = time.monotonic()

    def run(self) -> None:
        try:
            order: list[str] = []
            while len(self.done) < self.kills and not self.stop.is_set():
                if not order:
                    order = list(VICTIMS)
                    self.rng.shuffle(order)
                # A random moment: an interval drawn from the seeded RNG.
                if self.stop.wait(self.rng.uniform(0.5, 1.5) * self.every_s):
                    return
                self._kill(order.pop())
        except Exception as exc:  # noqa: BLE001  # re-raised by the main thread
            self.error = exc

    def _kill(self, victim: str) -> None:
        sa = self.stack.sa

        def found() -> psutil.Process | None:
            # The victim's process of the moment: one being restarted is waited for.
            try:
                if victim != "worker-child":
                    return sa.one(victim)
                children = pool_children(sa.one("worker"))
                return self.rng.choice(children) if children else None
            except psutil.NoSuchProcess:
                return None  # it died (or was replaced) while we looked

        process = wait_until(found, f"a {victim} process to kill", 180)
        at = time.monotonic() - self.started_at
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError):
            kill9(process)
        self.done.append(f"{victim}@{at:.0f}s")
        log(f"  t={at:5.1f}s kill -9 {victim} (pid {process.pid})")
