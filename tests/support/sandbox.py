"""The session's sandbox org, reset for a test: empty, a fresh config and the given apps."""

from __future__ import annotations

from collections.abc import Sequence

from erasure.salesforce.sandbox import SandboxConfig, SandboxHandle, SandboxOrg


def reset_sandbox(
    handle: SandboxHandle, *, log_step_s: float, apps: Sequence[tuple[str, str]]
) -> SandboxOrg:
    """Empty the sandbox org, give it a fresh config and these apps (execution users)."""
    org = handle.org
    with org.lock:
        org.reset()
        org.config = SandboxConfig(log_step_s=log_step_s)
        org.apps.clear()
    for client_id, secret in apps:
        org.add_app(client_id, secret)
    return org
