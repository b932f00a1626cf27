"""The baseline for bench/intake.py: a bare Flask app that does one INSERT per POST.

Run as `gunicorn 'bench.bare_app:create_app()'` with BENCH_DATABASE_URL set. A gunicorn sync
worker serves one request at a time, so one connection per worker process is all it needs.
"""

from __future__ import annotations

import os

import psycopg
from flask import Flask, Response, jsonify, request
from psycopg.types.json import Jsonb


def create_app() -> Flask:
    app = Flask("bare")
    state: dict[str, psycopg.Connection] = {}

    def connection() -> psycopg.Connection:
        if "conn" not in state or state["conn"].closed:
            state["conn"] = psycopg.connect(os.environ["BENCH_DATABASE_URL"], autocommit=True)
        return state["conn"]

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
