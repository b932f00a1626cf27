"""Sending what erasure tells the outside world (status callbacks, OpenDSR callbacks, ticket
comments): claimed under a lease, sent several destinations at once with a bound, each
destination behind a circuit breaker kept in the database. The rows themselves are made by the
dispatcher in erasure.integrations.callbacks. Nothing here knows Celery or Flask."""
