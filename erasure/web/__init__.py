"""The web layer every HTTP edge stands on: per-app resources and per-request sessions, body
reading and limits, throttling, problem documents, response helpers, correlation ids, and the
kick that asks a worker to relay the outbox after a commit.

The edges (erasure.api, erasure.ui, erasure.observability.web) are siblings above it; the app
factory (erasure.app) registers them explicitly.
"""
