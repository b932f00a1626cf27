"""The web side of observability: /healthz, /readyz, /metrics, request latency, and the
correlation id carried into log records."""

from __future__ import annotations

import time

import redis
from flask import Flask, Response, g, jsonify, request

from erasure.observability import health, heartbeats, logs, metrics
from erasure.salesforce import RedisUsageStore, UsageStore
from erasure.web import body, limits
from erasure.web.resources import WebResources, get_session, web_resources


def usage_store(url: str | None) -> UsageStore | None:
    """The workers' shared Salesforce call counters, when they share a Redis."""
    if url is None:
        return None
    return RedisUsageStore(redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1))


def web_resources_of(app: Flask) -> WebResources:
    resources: WebResources = app.extensions["erasure"]
    return resources


def init_app(app: Flask) -> None:
    heads: set[str] = set()
    components: list[str] = []
    usage = usage_store(web_resources_of(app).settings.shared_redis_url)
    limits.install(app)  # Redis-backed when Redis is configured: shared by every worker

    @app.before_request
    def _start() -> None:
        g.started_at = time.perf_counter()
        logs.correlation_id.set(g.get("correlation_id"))

    app.before_request(body.guard_body)  # after the timer: a refused body is still measured

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.get("started_at")
        if started is not None:
            route = request.url_rule.rule if request.url_rule else "(unmatched)"
            metrics.HTTP_LATENCY.labels(
                route, request.method, f"{response.status_code // 100}xx"
            ).observe(time.perf_counter() - started)
        return response

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        resources = web_resources()
        settings = resources.settings
        if not heads:
            heads.update(health.expected_heads(settings.database_url))
        if not components:
            components.extend(heartbeats.expected_components(heartbeats.queues_of(settings)))
        readiness = health.check_readiness(
            get_session(),
            heads=heads,
            broker_url=settings.broker_url,
            has_signing_key=resources.signing_key is not None,
            components=components,
            heartbeat_timeout_s=settings.heartbeat_timeout_s,
        )
        return jsonify(status="ready" if readiness.ok else "not ready", checks=readiness.checks), (
            200 if readiness.ok else 503
        )

    @app.get("/metrics")
    def metrics_endpoint() -> Response:
        body = metrics.render(get_session(), usage)
        return Response(body, mimetype="text/plain; version=0.0.4")
