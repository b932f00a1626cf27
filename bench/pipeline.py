"""Benchmark of the quota scheduler against the sandbox, with time compressed.

The sandbox and the org share one compressed "hour" (`--hour-s`). A backlog of subjects (targets
already resolved, so the scheduler alone is measured) is dispatched for `--windows` windows with a
pool of 1 and of 3 credentials; we report subjects erased per window against the theoretical
maximum (calls per window x max ids x credentials), wasted delete calls (429s, ids accepted
twice), the naive one-subject-per-call baseline in the same run, and, at low load, the time from
the intake commit to the delete call. Then the same backlog alone and with access retrieval
beside it (a process of its own, bench/access_load.py), interleaved: the delete calls each quota
window carried, deadline misses of requests due 1.5 windows after the start, 429s and 412s,
entries calls against those planned, and reads of subjects being erased. The sandbox runs in a
process of its own (bench/sandbox_process.py), as Salesforce is remote.

    python -m bench.pipeline [--hour-s 4] [--windows 3] [--max-ids 50] [--access-subjects 20]
        [--access-rounds 2] [--access-only]

Needs a Postgres at ERASURE_BENCH_ADMIN_URL (default postgresql://postgres@127.0.0.1/postgres);
it creates and drops its own database.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import func, insert, select

from bench import access_load
from bench.machine import describe
from bench.sandbox_process import SandboxProcess
from erasure import schema, workflow
from erasure.access.models import AccessRequest
from erasure.core.models import (
    DeleteCall,
    ErasureRequest,
    IdentifierKind,
    Regulation,
    RequestStatus,
    Source,
    Target,
    TargetKind,
    TargetStatus,
)
from erasure.db import make_engine, make_sessionmaker
from erasure.identifiers import Vault
from erasure.orgs import add_credential, add_org
from erasure.pipeline import resolve, scheduler
from erasure.pipeline.context import Pipeline, Tunables
from erasure.pipeline.salesforce_port import Clients
from erasure.salesforce import InMemoryTokenStore, InMemoryUsageStore, SalesforceClient, Timeouts

ADMIN_URL = os.environ.get("ERASURE_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1/postgres")


def _database() -> str:
    name = f"erasure_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=name)
    parts = psycopg.conninfo.conninfo_to_dict(url)
    sa_url = f"postgresql+psycopg://{parts.get('user', 'postgres')}@{parts.get('host', '127.0.0.1')}/{name}"
    schema.upgrade(sa_url)
    return sa_url


def _drop(sa_url: str) -> None:
    name = sa_url.rsplit("/", 1)[1]
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Run:
    def __init__(
        self, sa_url: str, *, hour_s: int, credentials: int, max_ids: int, linger_s: float
    ) -> None:
        self.apps = [(f"bench-{n}", secrets.token_urlsafe(16)) for n in range(credentials)]
        self.sandbox = SandboxProcess(
            {"hour_s": hour_s, "log_step_s": 0.05, "max_ids_per_call": max(max_ids, 200)},
            self.apps,
        )
        self.engine = make_engine(sa_url, pool_size=4)
        self.maker = make_sessionmaker(self.engine)
        self.vault_keys = {"b1": secrets.token_bytes(32)}
        self.vault = Vault(self.vault_keys)
        self.pseudonym_key = secrets.token_bytes(32)
        with self.maker() as session, session.begin():
            org = add_org(
                session,
                name=f"bench-{uuid.uuid4().hex[:6]}",
                my_domain_url=self.sandbox.url,
                max_ids_per_call=max_ids,
                delete_calls_per_window=10,
                window_s=hour_s,
            )
            org.ca_bundle_path = self.sandbox.ca_path
            for n, (client_id, secret) in enumerate(self.apps):
                add_credential(
                    session,
                    self.vault,
                    org,
                    name=f"u{n}",
                    client_id=client_id,
                    client_secret=secret,
                )
            self.org_id, self.org_name = org.id, org.name
        tokens, usage = InMemoryTokenStore(), InMemoryUsageStore()
        self.ctx = Pipeline(
            sessionmaker=self.maker,
            clients=Clients(
                lambda o, c: SalesforceClient(
                    o, c, tokens=tokens, usage=usage, timeouts=Timeouts(5, 30)
                ),
                self.vault,
            ),
            vault=self.vault,
            pseudonym_key=self.pseudonym_key,
            tunables=Tunables(linger_s=linger_s),
        )

    def backlog(self, subjects: int) -> None:
        """Seed end users in the sandbox and resolved targets for them (one request each)."""
        seeded = self.sandbox.seed(
            [
                {"platform_key": f"bench-{uuid.uuid4().hex}", "conversations": 0, "entries": 0}
                for _ in range(subjects)
            ]
        )
        ids = [end_user["end_user_id"] for end_user in seeded]
        now = datetime.now(UTC)
        due = workflow.deadlines.due_at(Regulation.GDPR, now)
        request_rows, target_rows = [], []
        for end_user_id in ids:
            rid = uuid.uuid4()
            request_rows.append(
                {
                    "id": rid,
                    "org_id": self.org_id,
                    "source": Source.API,
                    "regulation": Regulation.GDPR,
                    "received_at": now,
                    "due_at": due,
                    "status": RequestStatus.DELETING,
                    "attempt": 1,
                }
            )
            target_rows.append(
                {
                    "request_id": rid,
                    "org_id": self.org_id,
                    "kind": TargetKind.MESSAGING_END_USER,
                    "salesforce_id": end_user_id,
                    "status": TargetStatus.PENDING,
                    "due_at": due,
                    "updated_at": now,
                }
            )
        with self.maker() as session, session.begin():
            session.execute(insert(ErasureRequest), request_rows)
            session.execute(insert(Target), target_rows)

    def dispatch_for(self, seconds: float, every: float = 0.1) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            scheduler.dispatch(self.ctx)
            time.sleep(every)

    def stop(self) -> None:
        """Remove this run's org, so the next run's dispatcher sees only its own."""
        from sqlalchemy import delete

        from erasure.core.models import Credential, Org

        with self.maker() as session, session.begin():
            session.execute(delete(AccessRequest).where(AccessRequest.org_id == self.org_id))
            session.execute(delete(Target).where(Target.org_id == self.org_id))
            session.execute(delete(DeleteCall).where(DeleteCall.org_id == self.org_id))
            session.execute(delete(ErasureRequest).where(ErasureRequest.org_id == self.org_id))
            session.execute(delete(Credential).where(Credential.org_id == self.org_id))
            session.execute(delete(Org).where(Org.id == self.org_id))
        self.ctx.clients.close()
        self.engine.dispose()
        self.sandbox.stop()


def throughput(
    sa_url: str,
    *,
    credentials: int,
    max_ids: int,
    hour_s: int,
    windows: int,
    access_subjects: int = 0,
    urgent: int = 0,
) -> dict[str, Any]:
    """Erasure throughput; with `access_subjects`, access retrieval runs beside it (a process
    of its own) on the same pool, half of those subjects being erased at the same time. With
    `urgent`, that many backlog requests are due 1.5 windows after dispatch starts: one full
    window of quota is needed to meet them all."""
    run = Run(sa_url, hour_s=hour_s, credentials=credentials, max_ids=max_ids, linger_s=0.0)
    try:
        theoretical = windows * 10 * max_ids * credentials
        run.backlog(theoretical + 10 * max_ids * credentials)  # more than can be sent
        reader = None
        if access_subjects:
            minute_s = hour_s / 60
            access_load.access_load(
                run, subjects=access_subjects, conversations=8, minute_s=minute_s
            )
            access_load.wait_resolved(run)
            reader = access_load.AccessWorker(run, sa_url, minute_s)
            reader.start()
        urgent_ids, _ = access_load.make_urgent(run, urgent, due_in_s=1.5 * hour_s)
        start = time.monotonic()
        run.dispatch_for(windows * hour_s + 0.5)
        elapsed = time.monotonic() - start
        if reader is not None:
            reader.stop()
        counters = run.sandbox.counters()
        accepted = counters["accepted_ids"].get("delete_participants", [])
        with run.maker() as session:
            rejected_429 = (
                session.scalar(
                    select(func.count())
                    .select_from(DeleteCall)
                    .where(DeleteCall.http_status == 429)
                )
                or 0
            )
            first = session.scalar(select(func.min(DeleteCall.sent_at)))
            # Exactly K windows from the first call (a pass may run past the loop's end).
            in_windows = session.execute(
                select(func.count(), func.coalesce(func.sum(DeleteCall.ids_count), 0)).where(
                    DeleteCall.http_status == 202,
                    DeleteCall.sent_at < first + timedelta(seconds=windows * hour_s),
                )
            ).one()
        calls, erased = int(in_windows[0]), int(in_windows[1])
        return {
            "erased": erased,
            "theoretical": theoretical,
            "ratio": erased / theoretical,
            "calls": calls,
            "calls_429": rejected_429,
            "ids_resent": len(accepted) - len(set(accepted)),
            "seconds": elapsed,
            **(access_load.access_figures(run) if access_subjects else {}),
            **access_load.erasure_figures(
                run, urgent_ids, windows=windows, window_s=hour_s, quota=10 * credentials
            ),
        }
    finally:
        run.stop()


def latency(
    sa_url: str, *, hour_s: int, linger_s: float, samples: int, tick_s: float
) -> list[float]:
    """Intake commit -> delete call sent, at low load (one request at a time)."""
    run = Run(sa_url, hour_s=3600, credentials=1, max_ids=200, linger_s=linger_s)
    out: list[float] = []
    try:
        for _ in range(samples):
            email = f"lat{uuid.uuid4().hex[:8]}@example.com"
            run.sandbox.seed([{"platform_key": f"lat-{uuid.uuid4().hex}", "email": email}])
            with run.maker() as session:
                request = workflow.submit_request(
                    session,
                    workflow.Submission(
                        [workflow.Identifier(IdentifierKind.EMAIL, email)],
                        Regulation.GDPR,
                        Source.API,
                        org=run.org_name,
                    ),
                    protection=workflow.Protection(run.vault, run.pseudonym_key),
                    default_org=None,
                )
                session.commit()
                committed, rid = time.monotonic(), request.id
            # The worker: the kicked relay runs resolve at once; the dispatcher ticks every tick_s.
            resolve.resolve(run.ctx, rid, 0)
            while True:
                scheduler.dispatch(run.ctx)
                with run.maker() as session:
                    sent = session.scalar(
                        select(Target.delete_call_id).where(Target.request_id == rid)
                    )
                if sent is not None:
                    out.append(time.monotonic() - committed)
                    break
                time.sleep(tick_s)
    finally:
        run.stop()
    return out


def _access_beside_erasure(sa_url: str, args: argparse.Namespace) -> None:
    """The same erasure backlog alone, then with access retrieval beside it (a process of its
    own), interleaved for `--access-rounds` rounds in the same run: the delete calls each quota
    window carried, and the urgent requests that missed their deadline, in both."""
    urgent = 10 * args.max_ids  # one window of quota, due 1.5 windows after the start
    common = {"credentials": 1, "max_ids": args.max_ids, "hour_s": args.hour_s, "urgent": urgent}
    print(
        f"access beside erasure (pool of 1, {args.access_subjects} access subjects x 8 "
        f"conversations, half also being erased; entries window {args.hour_s / 60:.2f} s; "
        f"quota 10 delete calls per window, {args.windows} windows; {urgent} erasures due "
        f"1.5 windows after the start):"
    )
    totals = {"alone": [0, 0, 0], "access": [0, 0, 0]}  # slots used, urgent missed, 429s
    for round_ in range(1, args.access_rounds + 1):
        alone = throughput(sa_url, windows=args.windows, **common)
        shared = throughput(
            sa_url, windows=args.windows, access_subjects=args.access_subjects, **common
        )
        for name, run in (("alone", alone), ("access", shared)):
            totals[name][0] += sum(run["slots_per_window"])
            totals[name][1] += run["urgent_missed"]
            totals[name][2] += run["calls_429"]
        print(
            f"  round {round_}: delete calls per window alone {alone['slots_per_window']}, "
            f"with access {shared['slots_per_window']} (median gap between calls "
            f"{alone['call_gap_s']:.1f} / {shared['call_gap_s']:.1f} s); urgent missed {alone['urgent_missed']} "
            f"/ {shared['urgent_missed']} of {urgent}; 429s {alone['calls_429']} / "
            f"{shared['calls_429']}; answered 412 {shared['delete_412']}; access: "
            f"{shared['access_ready']} of {shared['access_requests']} exports ready, entries "
            f"calls {shared['entries_calls']} (planned {shared['entries_calls_planned']}); "
            f"conversations read of a subject being erased {shared['reads_of_erased_records']}, "
            f"{shared['reads_waiting_on_erasure']} waiting on the erasure"
        )
    slots = 10 * args.windows * args.access_rounds
    print(
        f"quota slots used by erasure: alone {totals['alone'][0]} of {slots}, with access "
        f"{totals['access'][0]} of {slots}; deadlines missed: alone {totals['alone'][1]}, with "
        f"access {totals['access'][1]}; delete 429s: alone {totals['alone'][2]}, with access "
        f"{totals['access'][2]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hour-s", type=int, default=4)
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--max-ids", type=int, default=50)
    parser.add_argument("--latency-samples", type=int, default=5)
    parser.add_argument("--access-subjects", type=int, default=20)
    parser.add_argument("--access-rounds", type=int, default=2)
    parser.add_argument(
        "--access-only", action="store_true", help="only the access-beside-erasure comparison"
    )
    args = parser.parse_args()
    print(describe())
    sa_url = _database()
    try:
        if args.access_only:
            _access_beside_erasure(sa_url, args)
            return
        print(
            f"compressed hour: {args.hour_s} s; 10 delete calls per window per credential; "
            f"max {args.max_ids} ids per call; {args.windows} windows measured"
        )
        for creds in (1, 3):
            r = throughput(
                sa_url,
                credentials=creds,
                max_ids=args.max_ids,
                hour_s=args.hour_s,
                windows=args.windows,
            )
            print(
                f"pool of {creds}: erased {r['erased']} / theoretical {r['theoretical']} = {r['ratio']:.1%}; "
                f"per window {r['erased'] / args.windows:.0f}; delete calls {r['calls']}, 429s {r['calls_429']}, ids re-sent {r['ids_resent']}"
            )
            naive = throughput(
                sa_url, credentials=creds, max_ids=1, hour_s=args.hour_s, windows=args.windows
            )
            print(
                f"  naive one subject per call: erased {naive['erased']} ({naive['erased'] / args.windows:.0f} per window) "
                f"= {naive['erased'] / max(1, r['erased']):.1%} of the scheduler's"
            )
        _access_beside_erasure(sa_url, args)
        for linger in (2.0, 0.0):
            lat = latency(
                sa_url,
                hour_s=args.hour_s,
                linger_s=linger,
                samples=args.latency_samples,
                tick_s=1.0,
            )
            print(
                f"low load, linger {linger:.0f} s, dispatcher tick 1 s: intake -> delete call "
                f"median {statistics.median(lat):.2f} s, max {max(lat):.2f} s ({len(lat)} requests)"
            )
    finally:
        _drop(sa_url)


if __name__ == "__main__":
    main()
