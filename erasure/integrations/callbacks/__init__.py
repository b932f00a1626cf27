"""Status callbacks out: subscriptions, a dispatcher that turns the audit log's request events
into delivery rows, and what one attempt of a row sends (signed headers, the stored bytes).

Delivery rows are the outbox: each is sent until a 2xx, with the same webhook-id and the same
bytes on every attempt (erasure.deliveries sends them, with backoff, jitter, a dead letter and a
circuit breaker per destination). Payloads carry no subject identifier. Nothing here commits.

- subscriptions: who is told, at which URL, with which secret;
- payloads: what a callback says (Standard Webhooks, OpenDSR);
- dispatch: audit leaves -> delivery rows;
- sending: one attempt's signed request, and the retry policy;
- dead_letters: listing deliveries, redelivering one.
"""

from erasure.integrations.callbacks.dead_letters import list_deliveries, redeliver
from erasure.integrations.callbacks.dispatch import (
    COMMENT_EVENTS,
    CURSOR,
    GAP_HOLD,
    EventReader,
    Told,
    dispatch,
)
from erasure.integrations.callbacks.payloads import (
    OPENDSR_API_VERSION,
    Links,
    opendsr_body,
    opendsr_status,
    standard_body,
)
from erasure.integrations.callbacks.sending import (
    RetryPolicy,
    Senders,
    SubscriptionGone,
    request_for,
)
from erasure.integrations.callbacks.subscriptions import (
    InvalidCallbackUrl,
    check_url,
    deactivate,
    rotate_secret,
    secret_context,
    signing_keys,
    subscribe,
)

__all__ = [
    "COMMENT_EVENTS",
    "CURSOR",
    "GAP_HOLD",
    "OPENDSR_API_VERSION",
    "EventReader",
    "InvalidCallbackUrl",
    "Links",
    "RetryPolicy",
    "Senders",
    "SubscriptionGone",
    "Told",
    "check_url",
    "deactivate",
    "dispatch",
    "list_deliveries",
    "opendsr_body",
    "opendsr_status",
    "redeliver",
    "request_for",
    "rotate_secret",
    "secret_context",
    "signing_keys",
    "standard_body",
    "subscribe",
]
