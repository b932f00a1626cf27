"""The baseline for bench/intake.py: a bare Flask app that does one INSERT per POST.

Run as `gunicorn 'bench.bare_app:create_app()'` with BENCH_DATABASE_URL set. One connection per
thread (a sync worker has one thread), so the baseline never queues on a shared connection.
"""

from __future__ import annotations

import os
import threading

import psycopg
from flask import Flask, Response, jsonify, request
from psycopg.types.json import Jsonb


def create_app() -> Flask:
    app = Flask("bare")
    state = threading.local()

    def connection() -> psycopg.Connection:
        conn: psycopg.Connection | None = getattr(state, "conn", None)
        if conn is None or conn.closed:
            conn = state.conn = psycopg.connect(os.environ["BENCH_DATABASE_URL"], autocommit=True)
        return conn

    @app.post("/v1/erasure-requests")
    def create() -> tuple[Response, int]:
        row = (
            connection()
            .execute(
                "INSERT INTO bare_requests (body) VALUES (%s) RETURNING id",
                [Jsonb(request.get_json())],
            )
            .fetchone()
        )
        return jsonify(id=row[0] if row else None), 202

    return app
