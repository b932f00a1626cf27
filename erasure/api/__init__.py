"""The JSON API: /v1 erasure requests, their officer actions, audit endpoints, webhooks,
callback subscriptions and OpenDSR, with API-key auth, idempotency and the OpenAPI document.

Stands on erasure.web beside the console (erasure.ui); the app factory registers its blueprints.
"""
