"""Building Salesforce clients from settings: the one place both composition roots (the worker
and the web app) construct `SalesforceClient`, with the fleet-wide Redis token and usage stores
when Redis is configured (one token per credential for every process)."""

from __future__ import annotations

from collections.abc import Callable

import redis

from erasure.config import Settings
from erasure.salesforce import (
    CredentialSettings,
    OrgSettings,
    RedisTokenStore,
    RedisUsageStore,
    SalesforceClient,
    Timeouts,
)

REDIS_PREFIX = "erasure:sf"

ClientBuilder = Callable[[OrgSettings, CredentialSettings], SalesforceClient]


def client_builder(settings: Settings) -> ClientBuilder:
    url = settings.shared_redis_url
    shared = redis.Redis.from_url(url) if url else None
    timeouts = Timeouts(connect_s=5.0, read_s=settings.salesforce_read_timeout_s)

    def build(org: OrgSettings, credential: CredentialSettings) -> SalesforceClient:
        return SalesforceClient(
            org,
            credential,
            tokens=RedisTokenStore(shared, prefix=REDIS_PREFIX) if shared else None,
            usage=RedisUsageStore(shared, prefix=REDIS_PREFIX) if shared else None,
            timeouts=timeouts,
        )

    return build
