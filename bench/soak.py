"""Soak: many erasure requests over mixed identifiers against a real `erasure standalone`, while
its worker's pool processes, the worker itself, Redis and Postgres are killed (kill -9) at random
moments. Prints what became of every request, the Salesforce ids the sandbox accepted more than
once (from its own counters), whether the audit log's evidence export verifies, and what was left
running after the stop.

    python -m bench.soak [--requests 500] [--kills 20] [--seed N]

The mix (each action on a subject of its own, seeded into the sandbox org first): phone, email,
both, messaging platform key, an unknown subject (completed_no_data), the same person through
the API (phone) and a Standard Webhooks ticket (email), an exact duplicate (the same body twice,
two idempotency keys), and a request cancelled right after it was submitted. Every submission
carries an Idempotency-Key and is retried while the stack answers 503 or not at all, so a kill
during a POST never makes two requests of one. Expected: nothing still open, no id accepted twice,
the export verifies, nothing left running. tests/soak/test_soak.py runs a short form in CI.

The sandbox org and the org's execution users share a compressed "hour" (`--hour-s`), so the
delete calls' quota (10 an hour per execution user) does not make the run last hours. The stack
is started and its processes found by tests/support/standalone.py, which the standalone tests use.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import requests
import standardwebhooks

from bench.machine import describe
from erasure.standalone.datadir import Connection, DataDir
from tests.support.standalone import FINAL, Standalone, kill9, pool_children, wait_for

VICTIMS = ("worker-child", "worker", "redis", "postgres")
#: What each action submits, and how often (weights).
MIX = {
    "phone": 20,
    "email": 12,
    "both": 12,
    "platform_key": 10,
    "unknown": 10,
    "api+webhook": 12,
    "duplicate": 12,
    "cancel": 12,
}
WEBHOOK_SOURCE = "soak-tickets"
FIRST_PHONE = 14155560000  # +1 415 556 0000 onwards: not the demo subjects


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
class Subject:
    n: int

    @property
    def phone(self) -> str:
        return f"+{FIRST_PHONE + self.n}"

    @property
    def email(self) -> str:
        return f"soak.subject{self.n}@example.com"

    def as_seeded(self) -> dict[str, Any]:
        # An SMS user keyed by the phone, with a contact holding email and phone.
        return {
            "platform_key": self.phone,
            "message_type": "Text",
            "email": self.email,
            "phone": self.phone,
            "conversations": 1 + self.n % 2,
        }


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


@dataclass
class Report:
    seed: int
    requests: int
    kills: list[str] = field(default_factory=list)
    submitted: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    still_open: Counter[str] = field(default_factory=Counter)
    accepted_ids: int = 0
    accepted_twice: list[str] = field(default_factory=list)
    verify_code: int | None = None
    verify_output: str = ""
    leftovers: list[str] = field(default_factory=list)
    stopped_in_s: float | None = None
    seconds: float = 0.0

    @property
    def stuck(self) -> int:
        return sum(self.still_open.values())

    @property
    def verified(self) -> bool:
        return self.verify_code == 0

    def lines(self) -> list[str]:
        def reasons(counter: Counter[str]) -> str:
            return "; ".join(f"{count} {why}" for why, count in counter.most_common()) or "-"

        return [
            f"seed {self.seed}: {self.requests} requests, {len(self.kills)} kills, "
            f"{self.seconds:.0f} s",
            f"kills: {', '.join(self.kills) or '-'}",
            f"submitted:          {self.submitted}",
            f"completed:          {self.statuses['completed']}",
            f"completed_no_data:  {self.statuses['completed_no_data']}",
            f"cancelled:          {self.statuses['cancelled']}",
            f"failed:             {self.statuses['failed']} ({reasons(self.failed)})",
            f"still open:         {self.stuck} ({reasons(self.still_open)})",
            f"salesforce ids accepted more than once: {len(self.accepted_twice)} "
            f"(of {self.accepted_ids} accepted)",
            f"audit verify on the evidence export: "
            f"{'passed' if self.verified else f'FAILED (exit {self.verify_code})'}"
            f"{': ' + self.verify_output if self.verify_output else ''}",
            f"processes left after the stop: {len(self.leftovers)}"
            + (f" (stopped in {self.stopped_in_s:.1f} s)" if self.stopped_in_s is not None else ""),
        ]


def plan(rng: random.Random, requests_wanted: int) -> list[Submission]:
    """The submissions, in the order they are sent: a subject of its own per action."""
    actions = list(MIX)
    weights = [MIX[a] for a in actions]
    out: list[Submission] = []
    n = 0
    while len(out) < requests_wanted:
        action = rng.choices(actions, weights)[0]
        subject = Subject(n)
        n += 1
        key = f"soak-{subject.n}"
        if action == "phone":
            out.append(Submission(action, key, {"phone": subject.phone}))
        elif action == "email":
            out.append(Submission(action, key, {"email": subject.email}))
        elif action == "both":
            out.append(Submission(action, key, {"phone": subject.phone, "email": subject.email}))
        elif action == "platform_key":
            out.append(Submission(action, key, {"messaging_platform_key": subject.phone}))
        elif action == "unknown":
            out.append(Submission(action, key, {"email": f"nobody{subject.n}@example.org"}))
        elif action == "api+webhook":
            out.append(Submission(action, key + "-api", {"phone": subject.phone}))
            out.append(Submission(action, f"msg_{key}", {"email": subject.email}, via_webhook=True))
        elif action == "duplicate":
            out.append(Submission(action, key + "-a", {"phone": subject.phone}))
            out.append(Submission(action, key + "-b", {"phone": subject.phone}))
        else:
            out.append(Submission(action, key, {"phone": subject.phone}, cancel=True))
    return out[:requests_wanted]


def subjects_to_seed(submissions: list[Submission]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for s in submissions:
        if s.action == "unknown":
            continue
        n = int(s.key.removeprefix("msg_").split("-")[1])
        seen.setdefault(str(n), Subject(n).as_seeded())
    return list(seen.values())


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


def run(
    *,
    requests_wanted: int,
    kills: int,
    seed: int,
    hour_s: int = 10,
    kill_every_s: float = 10.0,
    settle_timeout_s: float = 600.0,
    threads: int = 4,
    stall_s: float | None = None,
) -> Report:
    """One soak; every process it starts is stopped before it returns, whatever happened.

    `stall_s` shortens how long a request may go without progress before its work is published
    again (the recovery from a message lost with a killed worker; 120 s by default), so a short
    run need not wait that long; None keeps the service's default."""
    rng = random.Random(seed)
    report = Report(seed=seed, requests=requests_wanted)
    started = time.monotonic()
    log(f"soak: seed {seed} (rerun with --seed {seed}), {requests_wanted} requests, {kills} kills")
    submissions = plan(rng, requests_wanted)
    log("mix: " + ", ".join(f"{a} {c}" for a, c in Counter(s.action for s in submissions).items()))
    root = Path(tempfile.mkdtemp(prefix="erasure-soak-"))
    service_env = {"ERASURE_BATCH_LINGER_S": "1"}
    if stall_s is not None:
        service_env["ERASURE_STALL_S"] = str(stall_s)
    sa = Standalone(root=root, env_extra=service_env)
    stack = Stack(sa)
    killer: Killer | None = None
    try:
        stack.start()
        stack.compress_hour(hour_s)
        stack.sandbox("POST", "seed", {"end_users": subjects_to_seed(submissions)})
        stack.add_webhook_source()
        log(f"  stack ready after {time.monotonic() - started:.0f} s; submitting")

        killer = Killer(stack, rng, kills, kill_every_s)
        killer.start()
        _submit_all(stack, submissions, threads)
        report.submitted = sum(1 for s in submissions if s.request_id)
        log(f"  submitted {report.submitted} after {time.monotonic() - started:.0f} s")
        # The kills go on while the requests are carried out, up to the number asked for.
        killer.join(timeout=kills * kill_every_s * 2 + 60)
        killer.stop.set()
        if killer.error is not None:
            raise killer.error
        report.kills = list(killer.done)
        log(f"  kills done after {time.monotonic() - started:.0f} s")
        sa.wait_ready(timeout=300)
        _settle(stack, submissions, settle_timeout_s)
        log(f"  requests settled after {time.monotonic() - started:.0f} s")
        _count(report, submissions)
        _accepted_twice(stack, report)
        _verify_audit(stack, report, root)
        _code, seconds = sa.stop(signal.SIGTERM)
        report.stopped_in_s = seconds
        report.leftovers = sa.leftovers()
    finally:
        if killer is not None:
            killer.stop.set()
        sa.cleanup()  # kill -9 whatever is still there, and remove the data directory
    report.seconds = time.monotonic() - started
    return report


def _submit_all(stack: Stack, submissions: list[Submission], threads: int) -> None:
    pending = iter(submissions)
    lock = threading.Lock()
    errors: list[Exception] = []

    def work() -> None:
        while True:
            with lock:
                submission = next(pending, None)
            if submission is None or errors:
                return
            try:
                stack.submit(submission)
            except Exception as exc:  # noqa: BLE001  # re-raised by the main thread
                errors.append(exc)
                return

    pool = [threading.Thread(target=work, name=f"soak-submit-{i}") for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise errors[0]


def _settle(stack: Stack, submissions: list[Submission], timeout_s: float) -> None:
    """Wait until every request has ended, or the deadline; what is still open is reported."""
    open_ = {s.request_id: s for s in submissions if s.request_id}

    def all_final() -> bool:
        for request_id, submission in list(open_.items()):
            body = stack.status(str(request_id))
            if body is not None:
                submission.final = body
                if body["status"] in FINAL:
                    del open_[request_id]
        return not open_

    with contextlib.suppress(TimeoutError):
        wait_until(all_final, "every request to end", timeout_s)


def _count(report: Report, submissions: list[Submission]) -> None:
    seen: set[str] = set()
    for s in submissions:
        if not s.request_id or s.request_id in seen:
            continue
        seen.add(s.request_id)
        body = s.final or {}
        status = str(body.get("status", "unknown"))
        report.statuses[status] += 1
        if status == "failed":
            report.failed[f"{s.action}: {body.get('outcome')}"] += 1
        elif status not in FINAL:
            report.still_open[f"{s.action}: {status} ({body.get('outcome') or 'no outcome'})"] += 1


def _accepted_twice(stack: Stack, report: Report) -> None:
    counters = stack.sandbox("GET", "counters")
    for route, ids in counters["accepted_ids"].items():
        report.accepted_ids += len(ids)
        report.accepted_twice += [f"{route}:{i}" for i, c in Counter(ids).items() if c > 1]


def _verify_audit(stack: Stack, report: Report, root: Path) -> None:
    env = stack.env()
    out = root / "evidence"
    # Every leaf sequenced and a checkpoint signed over all of them, then the export.
    subprocess.run(
        [sys.executable, "-m", "erasure.cli", "audit", "sequence"],
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [sys.executable, "-m", "erasure.cli", "audit", "export", "--out", str(out)],
        env=env,
        check=True,
        capture_output=True,
    )
    public_key = stack.http.get(f"{stack.sa.url}/v1/audit/public-key", timeout=30).text.strip()
    verify = [sys.executable, "-m", "erasure.cli", "audit", "verify", str(out)]
    done = subprocess.run(
        [*verify, "--public-key", public_key],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    report.verify_code = done.returncode
    report.verify_output = " ".join((done.stdout + done.stderr).split())[:300]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--kill-every-s", type=float, default=10.0)
    parser.add_argument("--hour-s", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--stall-s", type=float, default=None, help="ERASURE_STALL_S (default: the service's)"
    )
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else secrets.randbelow(10**6)
    print(describe(), flush=True)
    report = run(
        requests_wanted=args.requests,
        kills=args.kills,
        seed=seed,
        hour_s=args.hour_s,
        kill_every_s=args.kill_every_s,
        stall_s=args.stall_s,
    )
    print("\n".join(report.lines()), flush=True)
    ok = report.stuck == 0 and not report.accepted_twice and report.verified
    return 0 if ok and not report.leftovers else 1


if __name__ == "__main__":
    sys.exit(main())
