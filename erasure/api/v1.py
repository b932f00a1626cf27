"""The /v1 blueprint of erasure requests, their officer actions and the audit endpoints: the
routes are declared in request_views, request_actions and audit_views, and the app factory
registers the blueprint once all three are imported.

Named "intake" (its original name): the name is part of every OpenAPI operationId.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("intake", __name__, url_prefix="/v1")
