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
is started and its processes found by tests/standalone/harness.py, which the standalone tests use;
bench/soak_stack.py drives it (submissions, reads, the killer thread).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.machine import describe
from bench.soak_stack import Killer, Stack, Submission, log, wait_until
from tests.standalone.harness import FINAL, Standalone

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
FIRST_PHONE = 14155560000  # +1 415 556 0000 onwards: not the demo subjects


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
