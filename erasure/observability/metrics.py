"""Prometheus metrics. Counts of what is in the database (requests by state and source, deadlines
at risk, quota used per credential, backlog, outbox, audit) are read at scrape time, so every
process agrees and nothing is lost on restart; per-process histograms (HTTP and task latency)
use prometheus-client's multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set.

Salesforce call counters (token fetches, 429s, every route's outcomes) are the client's own
per-credential counters, read from the shared Redis usage store at scrape time. Intake 429s are a
counter in `erasure.web.limits`.

Labels carry states, sources, route names and credential names, never personal data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import redis
from prometheus_client import REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from erasure.audit.models import AuditLeaf
from erasure.core.models import (
    TERMINAL_REQUEST_STATUSES,
    Credential,
    DeleteCall,
    ErasureRequest,
    Org,
    Target,
    TargetStatus,
)
from erasure.integrations.models import CallbackDelivery, CallbackStatus, DeliveryCircuit
from erasure.outbox.models import OutboxMessage
from erasure.pipeline.models import TaskDelivery
from erasure.salesforce import CredentialSettings, OrgSettings, UsageStore
from erasure.salesforce.models import Route

HTTP_LATENCY = Histogram(
    "erasure_http_request_seconds",
    "HTTP request latency by route and status class.",
    ["route", "method", "status"],
)
TASK_LATENCY = Histogram(
    "erasure_task_seconds", "Celery task run time by task name and outcome.", ["task", "outcome"]
)

_BACKLOG = (TargetStatus.PENDING, TargetStatus.BLOCKED_OPEN_SESSION, TargetStatus.BATCHED)


class DatabaseCollector(Collector):
    """Reads the state of the service from Postgres at each scrape."""

    def __init__(self, session: Session, usage: UsageStore | None = None) -> None:
        self._session = session
        self._usage = usage

    def collect(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        session = self._session
        requests = GaugeMetricFamily(
            "erasure_requests",
            "Erasure requests by state and source.",
            labels=["status", "source"],
        )
        for status, source, count in session.execute(
            select(ErasureRequest.status, ErasureRequest.source, func.count()).group_by(
                ErasureRequest.status, ErasureRequest.source
            )
        ):
            requests.add_metric([status.value, source.value], count)
        yield requests

        open_requests = ErasureRequest.status.not_in(TERMINAL_REQUEST_STATUSES)
        at_risk = (
            session.scalar(select(func.count()).where(open_requests, ErasureRequest.is_at_risk))
            or 0
        )
        overdue = (
            session.scalar(select(func.count()).where(open_requests, ErasureRequest.due_at < now))
            or 0
        )
        yield GaugeMetricFamily(
            "erasure_requests_at_risk",
            "Open requests predicted to miss their deadline.",
            value=at_risk,
        )
        yield GaugeMetricFamily(
            "erasure_requests_overdue", "Open requests past their deadline.", value=overdue
        )

        targets = GaugeMetricFamily(
            "erasure_targets", "Salesforce records to delete, by state.", labels=["status"]
        )
        for target_status, count in session.execute(
            select(Target.status, func.count()).group_by(Target.status)
        ):
            targets.add_metric([target_status.value], count)
        yield targets
        backlog = session.scalar(select(func.count()).where(Target.status.in_(_BACKLOG))) or 0
        yield GaugeMetricFamily(
            "erasure_backlog_targets", "Targets not yet sent to Salesforce.", value=backlog
        )

        calls = CounterMetricFamily(
            "erasure_delete_calls",
            "Delete calls spent, by credential and outcome.",
            labels=["org", "credential", "outcome"],
        )
        used = GaugeMetricFamily(
            "erasure_quota_used",
            "Delete calls in the credential's current window.",
            labels=["org", "credential"],
        )
        left = GaugeMetricFamily(
            "erasure_quota_left",
            "Delete calls left in the credential's current window.",
            labels=["org", "credential"],
        )
        for org_name, credential_name, outcome, count in session.execute(
            select(Org.name, Credential.name, DeleteCall.status, func.count())
            .join(Credential, Credential.id == DeleteCall.credential_id)
            .join(Org, Org.id == Credential.org_id)
            .group_by(Org.name, Credential.name, DeleteCall.status)
        ):
            calls.add_metric([org_name, credential_name, outcome.value], count)
        for org, credential in session.execute(
            select(Org, Credential).join(Credential, Credential.org_id == Org.id)
        ):
            in_window = (
                session.scalar(
                    select(func.count()).where(
                        and_(
                            DeleteCall.credential_id == credential.id,
                            DeleteCall.sent_at > now - timedelta(seconds=org.window_s),
                        )
                    )
                )
                or 0
            )
            used.add_metric([org.name, credential.name], in_window)
            left.add_metric(
                [org.name, credential.name], max(0, org.delete_calls_per_window - in_window)
            )
        yield calls
        yield used
        yield left

        outbox = (
            session.scalar(select(func.count()).where(OutboxMessage.published_at.is_(None))) or 0
        )
        yield GaugeMetricFamily(
            "erasure_outbox_unpublished", "Outbox rows not yet published.", value=outbox
        )
        unsequenced = (
            session.scalar(select(func.count()).where(AuditLeaf.leaf_index.is_(None))) or 0
        )
        yield GaugeMetricFamily(
            "erasure_audit_unsequenced_leaves",
            "Audit leaves waiting for the sequencer.",
            value=unsequenced,
        )
        yield from self._callbacks()
        yield from self._tasks()
        if self._usage is not None:
            try:
                salesforce = list(self._salesforce(self._usage))
            except redis.RedisError:
                salesforce = []  # Redis down: the rest of the scrape still answers
            yield from salesforce

    def _callbacks(self) -> Iterator[Metric]:
        deliveries = GaugeMetricFamily(
            "erasure_callback_deliveries",
            "Outbound callbacks and ticket comments, by channel and outcome "
            "(pending, delivered, dead).",
            labels=["channel", "status"],
        )
        retries = CounterMetricFamily(
            "erasure_callback_retries",
            "Delivery attempts of callbacks after their first, by channel.",
            labels=["channel"],
        )
        retried: dict[str, int] = {}
        for channel, status, count, extra in self._session.execute(
            select(
                CallbackDelivery.channel,
                CallbackDelivery.status,
                func.count(),
                func.coalesce(func.sum(func.greatest(CallbackDelivery.attempts - 1, 0)), 0),
            ).group_by(CallbackDelivery.channel, CallbackDelivery.status)
        ):
            deliveries.add_metric([channel.value, status.value], count)
            retried[channel.value] = retried.get(channel.value, 0) + int(extra)
        for channel_name, extra_attempts in sorted(retried.items()):
            retries.add_metric([channel_name], extra_attempts)
        yield deliveries
        yield retries
        yield from self._circuits()

    def _circuits(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        in_flight = (
            self._session.scalar(
                select(func.count()).where(
                    CallbackDelivery.status == CallbackStatus.PENDING,
                    CallbackDelivery.claim_id.is_not(None),
                    CallbackDelivery.next_attempt_at > now,
                )
            )
            or 0
        )
        yield GaugeMetricFamily(
            "erasure_callback_deliveries_in_flight",
            "Callbacks and ticket comments being sent right now (leased by a worker).",
            value=in_flight,
        )
        circuits = GaugeMetricFamily(
            "erasure_delivery_circuits",
            "Delivery destinations by the state of their circuit breaker: closed, failing (some "
            "consecutive failures, still closed), open (no attempt until it may probe), "
            "half_open (probing, or due to probe).",
            labels=["state"],
        )
        state = case(
            (DeliveryCircuit.probe_claim_id.is_not(None), "half_open"),
            (DeliveryCircuit.opened_until > now, "open"),
            (DeliveryCircuit.opened_until.is_not(None), "half_open"),
            (DeliveryCircuit.failures > 0, "failing"),
            else_="closed",
        )
        counts = dict.fromkeys(("closed", "failing", "open", "half_open"), 0)
        states = select(state.label("state")).subquery()  # `now` bound once, grouped outside
        for name, count in self._session.execute(
            select(states.c.state, func.count()).group_by(states.c.state)
        ):
            counts[name] = count
        for name, count in counts.items():
            circuits.add_metric([name], count)
        yield circuits

    def _tasks(self) -> Iterator[Metric]:
        redelivered = CounterMetricFamily(
            "erasure_task_redeliveries",
            "Task messages delivered again (retries and redeliveries after a lost worker).",
            labels=["task"],
        )
        parked = GaugeMetricFamily(
            "erasure_tasks_parked",
            "Task messages parked for a person after too many deliveries.",
            labels=["task"],
        )
        for task, extra, parked_count in self._session.execute(
            select(
                TaskDelivery.task_name,
                func.coalesce(func.sum(func.greatest(TaskDelivery.deliveries - 1, 0)), 0),
                func.count(TaskDelivery.parked_at),
            ).group_by(TaskDelivery.task_name)
        ):
            redelivered.add_metric([task], int(extra))
            parked.add_metric([task], parked_count)
        yield redelivered
        yield parked

    def _salesforce(self, usage: UsageStore) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "erasure_salesforce_calls",
            "Salesforce calls by credential, route and outcome (HTTP status or error class).",
            labels=["org", "credential", "route", "outcome"],
        )
        tokens = CounterMetricFamily(
            "erasure_salesforce_token_fetches",
            "Token requests to Salesforce by credential and outcome.",
            labels=["org", "credential", "outcome"],
        )
        limited = CounterMetricFamily(
            "erasure_salesforce_rate_limited",
            "Salesforce calls answered 429, by credential and route.",
            labels=["org", "credential", "route"],
        )
        for org, credential in self._session.execute(
            select(Org, Credential).join(Credential, Credential.org_id == Org.id)
        ):
            # The client's counter key: a digest of the org URL and client id (no secret needed).
            key = CredentialSettings(credential.client_id, "", credential.name).key(
                OrgSettings(org.my_domain_url)
            )
            for route, outcomes in sorted(usage.counts(key).by_route.items()):
                for outcome, count in sorted(outcomes.items()):
                    calls.add_metric([org.name, credential.name, route, outcome], count)
                    if route == Route.TOKEN:
                        tokens.add_metric([org.name, credential.name, outcome], count)
                    if outcome == "429":
                        limited.add_metric([org.name, credential.name, route], count)
        yield calls
        yield tokens
        yield limited


def render(session: Session, usage: UsageStore | None = None) -> bytes:
    """The exposition text for /metrics: every process's histograms and counters, then the
    database state and (when a shared usage store is given) Salesforce's call counters."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        MultiProcessCollector(processes)  # type: ignore[no-untyped-call]  # untyped upstream
    else:
        processes = REGISTRY
    database = CollectorRegistry()
    database.register(DatabaseCollector(session, usage))
    return generate_latest(processes) + generate_latest(database)
