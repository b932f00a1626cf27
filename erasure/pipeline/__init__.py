"""The erasure pipeline: resolve subjects to Salesforce records, schedule delete calls within each
execution user's quota, confirm the deletions, and settle each request's outcome.

Framework-free: no Flask, no Celery, no HTTP library. Postgres is the source of truth; every state
change is one transaction with its audit leaf (and, where work follows, an outbox row). Salesforce
is reached through `SalesforcePort`, built by the composition root (erasure.worker).
"""
