"""Lists at scale: the same pages at 10k and at 1M erasure requests, in the same run.

    python -m bench.scale [--small 10000] [--large 1000000] [--rounds 3] [--samples 15]

Seeds two databases (unique names, dropped afterwards) with SQL `generate_series`: requests
created over the same two years (so the large one is 100x denser), one target each, a mix of
states, sources, ticket references and two submitting API keys, every tenth linked to the one
before. Then, in interleaved rounds, times each page through the app in process (Flask test
client: authentication, the queries, rendering; no network), alternating the sizes sample by
sample (small, large, small, large, ...), and prints the p50 of every case at both sizes, their
ratio (goal: <= 1.2x), and the SQL statements the page ran. Postgres, the app and this script
share the machine's cores.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask.testing import FlaskClient
from pydantic import SecretStr
from sqlalchemy import Engine, event, text

from bench.databases import unique_database
from bench.machine import describe
from erasure.accounts.models import Role
from erasure.api_keys import create_api_key
from erasure.app import create_app
from erasure.audit.checkpoint import SigningKey
from erasure.config import Settings
from erasure.db import make_engine, make_sessionmaker
from erasure.orgs import add_org
from erasure.ui import accounts

SPAN = timedelta(days=730)
PASSWORD = "bench-password-" + secrets.token_hex(8)  # a throwaway console user
STATUSES = ["received", "awaiting_approval", "deleting", "cancelled", "failed"] + ["completed"] * 15
SOURCES = ["api", "jira", "zendesk", "ui"]

SEED_REQUESTS = """
INSERT INTO erasure_requests (org_id, source, reference_system, reference_id, regulation,
    received_at, due_at, status, api_key_id, is_at_risk, created_at, updated_at, completed_at)
SELECT :org, (CAST(:sources AS text[]))[1 + g % 4],
    CASE WHEN g % 3 = 0 THEN 'jira' END, CASE WHEN g % 3 = 0 THEN 'T-' || (g % 50) END,
    'gdpr', t, t + interval '30 days', st,
    CASE WHEN g % 2 = 0 THEN CAST(:integration AS uuid) ELSE CAST(:officer AS uuid) END,
    g % 13 = 0, t, t, CASE WHEN st = 'completed' THEN t + interval '1 hour' END
FROM generate_series(1, :n) AS g,
    LATERAL (SELECT CAST(:start AS timestamptz) + g * CAST(:step AS interval) AS t,
                    (CAST(:statuses AS text[]))[1 + g % 20] AS st) AS v
"""
SEED_TARGETS = """
INSERT INTO targets (request_id, org_id, kind, salesforce_id, status, due_at)
SELECT id, org_id, 'conversation', NULL,
    CASE WHEN status = 'completed' THEN 'deleted' ELSE 'pending' END, due_at
FROM erasure_requests
"""
SEED_LINKS = """
UPDATE erasure_requests AS r SET duplicate_of_id = p.prev
FROM (SELECT id, k, lag(id) OVER (ORDER BY k) AS prev
      FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS k
            FROM erasure_requests) AS numbered) AS p
WHERE r.id = p.id AND p.k % 10 = 0
"""


@dataclass
class Site:
    """One seeded database and the app in front of it."""

    size: int
    officer: dict[str, str]
    integration: dict[str, str]
    api: FlaskClient
    console: FlaskClient
    middle_cursor: str
    seed_seconds: float


def settings_for(url: str, key_file: Path) -> Settings:
    def key() -> str:
        return base64.b64encode(secrets.token_bytes(32)).decode()

    return Settings(
        audit_signing_key_file=key_file,
        database_url=url,
        broker_url="memory://",
        encryption_keys=f"bench:{key()}",
        pseudonym_key=key(),
        public_url="https://erasure.bench",
        secret_key=SecretStr(secrets.token_urlsafe(32)),
        rate_limit_requests=0,  # this measures the queries, not the per-key limit
    )


def seed(url: str, size: int, now: datetime) -> tuple[str, str, str, str]:
    """Seed `size` requests; returns the officer's and integration's keys, a console user's
    email and the cursor at 50% depth."""
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        org = add_org(session, name="bench", my_domain_url="https://bench.my.salesforce.com")
        officer = create_api_key(session, name="officer", role=Role.OFFICER)
        integration = create_api_key(session, name="integration", role=Role.INTEGRATION)
        user = accounts.create_user(
            session, email="bench@example.org", name="Bench", role=Role.OFFICER, password=PASSWORD
        )
        session.flush()
        params: dict[str, Any] = {
            "org": org.id,
            "sources": SOURCES,
            "statuses": STATUSES,
            "integration": integration.record.id,
            "officer": officer.record.id,
            "n": size,
            "start": now - SPAN,
            "step": SPAN / size,
        }
        session.execute(text("SET LOCAL statement_timeout = 0"))  # seeding 1M rows takes a while
        session.execute(text(SEED_REQUESTS), params)
        session.execute(text(SEED_TARGETS))
        session.execute(text(SEED_LINKS))
        email = user.email
        session.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("SET statement_timeout = 0"))
        connection.execute(text("VACUUM ANALYZE"))
        created_at, request_id = connection.execute(
            text(
                "SELECT created_at, id FROM erasure_requests ORDER BY created_at DESC, id DESC "
                "OFFSET :half LIMIT 1"
            ),
            {"half": size // 2},
        ).one()
    engine.dispose()
    cursor = base64.urlsafe_b64encode(
        json.dumps([created_at.isoformat(), str(request_id)]).encode()
    ).decode()
    return officer.secret, integration.secret, email, cursor.rstrip("=")


def sign_in(client: FlaskClient, email: str) -> None:
    def csrf(html: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert found, "no CSRF token"  # noqa: S101
        return found.group(1)

    token = csrf(client.get("/ui/sign-in").get_data(as_text=True))
    done = client.post(
        "/ui/sign-in", data={"csrf_token": token, "email": email, "password": PASSWORD}
    )
    assert done.status_code == 302, done.status_code  # noqa: S101


def open_site(url: str, size: int, key_file: Path, now: datetime) -> Site:
    started = time.perf_counter()
    officer, integration, email, cursor = seed(url, size, now)
    seeded = time.perf_counter() - started
    app = create_app(settings_for(url, key_file))
    console = app.test_client()
    sign_in(console, email)
    return Site(
        size=size,
        officer={"Authorization": f"Bearer {officer}"},
        integration={"Authorization": f"Bearer {integration}"},
        api=app.test_client(),
        console=console,
        middle_cursor=cursor,
        seed_seconds=seeded,
    )


Request = Callable[[Site], int]


def api(query: dict[str, str], *, who: str = "officer", at_middle: bool = False) -> Request:
    def call(site: Site) -> int:
        args = dict(query)
        if at_middle:
            args["cursor"] = site.middle_cursor
        headers = site.integration if who == "integration" else site.officer
        response = site.api.get(f"/v1/erasure-requests?{urlencode(args)}", headers=headers)
        return response.status_code

    return call


def console(query: dict[str, str], *, at_middle: bool = False, csv: bool = False) -> Request:
    def call(site: Site) -> int:
        args = dict(query)
        if at_middle:
            args["cursor"] = site.middle_cursor
        path = "/ui/requests.csv" if csv else "/ui/requests"
        if csv:
            # The export's first 1000-row page: the stream is read up to its first chunk.
            response = site.console.get(f"{path}?{urlencode(args)}", buffered=False)
            next(iter(response.response))  # type: ignore[arg-type]
            response.close()
        else:
            response = site.console.get(f"{path}?{urlencode(args)}")
        return response.status_code

    return call


def cases(now: datetime) -> dict[str, Request]:
    soon = (now + timedelta(days=31)).isoformat()
    return {
        "API first page": api({}),
        "API cursor at 50% depth": api({}, at_middle=True),
        "API status=received": api({"status": "received"}),
        "API status=received,deleting,failed": api({"status": "received,deleting,failed"}),
        "API status=received at 50%": api({"status": "received"}, at_middle=True),
        "API source=jira": api({"source": "jira"}),
        "API reference_system=jira": api({"reference_system": "jira"}),
        "API reference_id=T-7": api({"reference_id": "T-7"}),
        "API due_before=now+31d (most match)": api({"due_before": soon}),
        "API due_before=now (overdue only)": api({"due_before": now.isoformat()}),
        "API integration's own": api({}, who="integration"),
        "API integration's own at 50%": api({}, who="integration", at_middle=True),
        "API limit=200": api({"limit": "200"}),
        "console first page": console({}),
        "console cursor at 50%": console({}, at_middle=True),
        "console status=received&source=api": console({"status": "received", "source": "api"}),
        "console at_risk=1": console({"at_risk": "1"}),
        "console CSV first 1000 rows": console({}, csv=True),
    }


class StatementCounter:
    """SQL statements sent by any engine in this process while a case runs."""

    def __init__(self) -> None:
        self.count = 0
        event.listen(Engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: object) -> None:
        self.count += 1


def measure(
    sites: list[Site], requests: dict[str, Request], rounds: int, samples: int
) -> Iterator[tuple[str, list[list[float]], list[int]]]:
    counter = StatementCounter()
    timings: dict[str, list[list[float]]] = {name: [[] for _ in sites] for name in requests}
    statements: dict[str, list[int]] = {name: [0 for _ in sites] for name in requests}
    for name, call in requests.items():  # warm-up, and the statement count of one page
        for index, site in enumerate(sites):
            call(site)
            before = counter.count
            status = call(site)
            assert status == 200, (name, status)  # noqa: S101
            statements[name][index] = counter.count - before
    for _ in range(rounds):
        for name, call in requests.items():
            # Sample by sample, small then large: the machine's speed drifts, and two samples
            # taken back to back see the same machine.
            for _ in range(samples):
                for index, site in enumerate(sites):
                    started = time.perf_counter()
                    call(site)
                    timings[name][index].append(time.perf_counter() - started)
    for name in requests:
        yield name, timings[name], statements[name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=15, help="per case, site and round")
    args = parser.parse_args()
    now = datetime.now(UTC)
    print(describe())
    with ExitStack() as stack:
        key_dir = Path(stack.enter_context(__import__("tempfile").TemporaryDirectory()))
        key_file = key_dir / "audit.key"
        key_file.write_text(SigningKey.generate("bench.erasure.example/audit").to_text())
        sites = [
            open_site(stack.enter_context(unique_database(f"scale{size}")), size, key_file, now)
            for size in (args.small, args.large)
        ]
        print(
            "seeded with generate_series: "
            + ", ".join(f"{s.size:,} requests in {s.seed_seconds:.0f} s" for s in sites)
            + f"; {args.rounds} interleaved rounds x {args.samples} samples per case and size"
        )
        small, large = sites
        print(
            f"{'case':<40} {'p50 ' + f'{small.size:,}':>11} {'p50 ' + f'{large.size:,}':>13} "
            f"{'ratio':>6} {'SQL':>5}"
        )
        worst = 0.0
        for name, timing, statements in measure(sites, cases(now), args.rounds, args.samples):
            p50 = [statistics.median(t) * 1000 for t in timing]
            ratio = p50[1] / p50[0]
            worst = max(worst, ratio)
            sql = "/".join(str(n) for n in dict.fromkeys(statements))
            print(f"{name:<40} {p50[0]:>8.2f} ms {p50[1]:>10.2f} ms {ratio:>5.2f}x {sql:>5}")
        print(
            f"worst ratio {worst:.2f}x (goal <= 1.2x); SQL = statements one page ran "
            "(authentication included)"
        )


if __name__ == "__main__":
    main()
