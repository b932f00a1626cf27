"""The bench's Salesforce sandbox in a process of its own, driven through its admin endpoints.

Salesforce is remote in production: the work of answering calls (entries reads for access
exports, SOQL, deletes) is not done by the process that dispatches erasures. A sandbox in a thread
of the bench would share the dispatcher's interpreter lock, and access reads served there would
slow the dispatcher itself: the bench would measure its own harness, not the scheduler.
"""

from __future__ import annotations

import multiprocessing
import shutil
import tempfile
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import requests

from erasure.salesforce.sandbox.admin import PREFIX

#: Seeding goes in batches: one admin call holds the sandbox's lock while it seeds.
SEED_BATCH = 500


def _serve(
    config: dict[str, Any], apps: list[tuple[str, str]], cert_dir: str, conn: Connection
) -> None:
    from erasure.salesforce.sandbox import SandboxConfig, SandboxOrg
    from erasure.salesforce.sandbox.server import build_server

    org = SandboxOrg(SandboxConfig(**config))
    for client_id, secret in apps:
        org.add_app(client_id, secret)
    server, url, cert_path = build_server(org, host="127.0.0.1", port=0, cert_dir=Path(cert_dir))
    conn.send((url, str(cert_path)))
    server.serve_forever()


class SandboxProcess:
    """A sandbox org with `config` (SandboxConfig fields) and the execution users `apps`."""

    def __init__(self, config: dict[str, Any], apps: list[tuple[str, str]]) -> None:
        self.cert_dir = tempfile.mkdtemp(prefix="erasure-bench-sandbox-")
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(config, apps, self.cert_dir, child), daemon=True
        )
        self.process.start()
        if not parent.poll(60):
            self.stop()
            raise RuntimeError("the sandbox process did not start")
        self.url, self.ca_path = parent.recv()
        self.http = requests.Session()

    def _admin(self, method: str, action: str, body: Any = None) -> Any:
        # `verify` per call: a session's would give way to REQUESTS_CA_BUNDLE from the environment.
        answer = self.http.request(
            method, f"{self.url}{PREFIX}/{action}", json=body, timeout=120, verify=self.ca_path
        )
        answer.raise_for_status()
        return answer.json()

    def seed(self, end_users: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add end users (add_end_user's keyword arguments); returns them as seeded."""
        seeded: list[dict[str, Any]] = []
        for start in range(0, len(end_users), SEED_BATCH):
            batch = end_users[start : start + SEED_BATCH]
            seeded += self._admin("POST", "seed", {"end_users": batch})["end_users"]
        return seeded

    def configure(self, **options: Any) -> None:
        self._admin("PATCH", "org", options)

    def counters(self) -> dict[str, Any]:
        counters: dict[str, Any] = self._admin("GET", "counters")
        return counters

    def call_count(self, route: str) -> int:
        return sum(self.counters()["calls"].get(route, {}).values())

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=15)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        if hasattr(self, "http"):
            self.http.close()
        shutil.rmtree(self.cert_dir, ignore_errors=True)
