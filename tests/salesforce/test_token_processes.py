"""Separate worker processes share one token through Redis: the fleet asks once."""

from __future__ import annotations

import multiprocessing
import time

import redis

from erasure.salesforce import (
    CredentialSettings,
    OrgSettings,
    RedisTokenStore,
    Route,
    SalesforceClient,
    Timeouts,
)
from erasure.salesforce.sandbox import SandboxHandle
from tests.support.salesforce import CLIENT_A, FAST_TOKENS

PROBE_ID = "0PA5g0000000001GAA"


def _worker(url: str, ca_path: str, prefix: str, start_at: float, redis_port: int) -> int:
    org = OrgSettings(url, ca_bundle=ca_path)
    tokens = RedisTokenStore(redis.Redis(port=redis_port), prefix=prefix)
    with SalesforceClient(
        org,
        CredentialSettings(*CLIENT_A),
        tokens=tokens,
        timeouts=Timeouts(connect_s=5, read_s=10),
        token_policy=FAST_TOKENS,
    ) as client:
        time.sleep(max(0.0, start_at - time.time()))  # start together, like a fleet after a deploy
        return len(client.existing_end_users([PROBE_ID]))


def test_cold_worker_processes_cause_one_token_request(
    sandbox: SandboxHandle, redis_prefix: str, redis_port: int
) -> None:
    processes = 8
    start_at = time.time() + 1.5  # spawn start-up takes about a second
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        results = pool.starmap(
            _worker,
            [(sandbox.url, sandbox.ca_path, redis_prefix, start_at, redis_port)] * processes,
        )
    assert results == [0] * processes
    assert sandbox.org.call_count(Route.TOKEN, CLIENT_A[0]) == 1
    assert sandbox.org.call_count(Route.QUERY, CLIENT_A[0]) == processes
