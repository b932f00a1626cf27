"""Admin endpoints under `/__sandbox__/`, a path no real org has: seed, faults, clock, counters.

No authentication: the sandbox binds to loopback and holds only made-up data.
"""

from __future__ import annotations

from typing import Any

from erasure.salesforce.sandbox.auth import AppConfig
from erasure.salesforce.sandbox.config import Reply
from erasure.salesforce.sandbox.limits import Fault
from erasure.salesforce.sandbox.org import SandboxOrg
from erasure.salesforce.sandbox.seed import add_end_user, seed_demo, seeded_as_json

PREFIX = "/__sandbox__"


def _app_json(app: AppConfig) -> dict[str, Any]:
    return {
        "client_id": app.client_id,
        "run_as_user_id": app.run_as_user_id,
        "client_credentials_enabled": app.client_credentials_enabled,
        "scopes": list(app.scopes),
        "jwt_tokens": app.jwt_tokens,
        "token_timeout_s": app.token_timeout_s,
    }


def handle(  # noqa: PLR0911, PLR0912 -- one flat dispatch table reads best
    org: SandboxOrg, method: str, action: str, body: dict[str, Any]
) -> Reply:
    """Dispatch one admin call; `action` is the path after `/__sandbox__/`."""
    try:
        if (method, action) == ("POST", "reset"):
            org.reset()
            return Reply(200, {"ok": True})
        if (method, action) == ("POST", "seed"):
            with org.lock:
                if body.get("dataset") == "demo":
                    seeded = seed_demo(org.data)
                else:
                    seeded = [add_end_user(org.data, **spec) for spec in body.get("end_users", [])]
            return Reply(200, {"end_users": seeded_as_json(seeded)})
        if (method, action) == ("POST", "apps"):
            spec = dict(body)
            app = org.add_app(spec.pop("client_id"), spec.pop("client_secret"), **spec)
            return Reply(200, _app_json(app))
        if method == "PATCH" and action.startswith("apps/"):
            app = org.configure_app(action.removeprefix("apps/"), **body)
            return Reply(200, _app_json(app))
        if (method, action) == ("GET", "apps"):
            return Reply(200, [_app_json(a) for a in org.apps.values()])
        if (method, action) == ("PATCH", "org"):
            config = org.configure(**body)
            return Reply(
                200,
                {
                    "api_enabled": config.api_enabled,
                    "latest_api_version": config.latest_api_version,
                },
            )
        if (method, action) == ("POST", "faults"):
            org.inject(Fault(**body))
            return Reply(200, {"ok": True})
        if (method, action) == ("DELETE", "faults"):
            with org.lock:
                org.faults.clear()
            return Reply(200, {"ok": True})
        if (method, action) == ("POST", "clock/advance"):
            return Reply(200, {"now": org.advance(float(body["seconds"]))})
        if (method, action) == ("POST", "revoke"):
            return Reply(200, {"revoked": org.revoke(str(body["client_id"]))})
        if (method, action) == ("GET", "counters"):
            return Reply(200, org.counters())
    except (KeyError, TypeError, ValueError) as exc:
        return Reply(400, {"error": "bad_admin_request", "message": str(exc)})
    return Reply(404, {"error": "no_such_admin_endpoint"})
