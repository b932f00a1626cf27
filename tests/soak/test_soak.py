"""The soak's short form (bench/soak.py has the full one): requests over mixed identifiers against
a real `erasure standalone` while its worker's pool, the worker itself, Redis and Postgres are
killed with kill -9 at random moments (the seed is printed; set ERASURE_SOAK_SEED to rerun one).
Nothing may stay open, no Salesforce id may be accepted twice, the evidence export must verify,
and nothing may be left running after the stop."""

from __future__ import annotations

import os
import secrets

import pytest

from bench import soak

pytestmark = [pytest.mark.soak, pytest.mark.worker, pytest.mark.slow, pytest.mark.timeout(900)]

REQUESTS = 30
KILLS = 4  # each kind of victim once, in a seeded order


def test_requests_end_and_ids_go_once_while_processes_are_killed() -> None:
    seed = int(os.environ.get("ERASURE_SOAK_SEED") or secrets.randbelow(10**6))
    print(f"soak seed {seed}")
    # A message lost with a killed worker is published again after ERASURE_STALL_S: 15 s, not
    # the default 120 s, keeps the run near two minutes.
    report = soak.run(
        requests_wanted=REQUESTS, kills=KILLS, seed=seed, kill_every_s=4.0, stall_s=15.0
    )
    summary = "\n".join(report.lines())
    print(summary)
    assert report.submitted == REQUESTS, summary
    assert len(report.kills) == KILLS, summary
    assert report.stuck == 0, summary
    assert report.accepted_twice == [], summary
    assert report.verified, summary
    assert report.leftovers == [], summary
