"""Where the console's request actions come from.

Cancel is `erasure.workflow.cancel_request`. Approve, retry-failed and extend-the-deadline belong to
the pipeline; the console calls them from `erasure.pipeline.actions` once that module provides them,
with these signatures (each changes state with its audit leaf in the caller's transaction, does not
commit, and raises erasure.errors.NotFound / InvalidTransition):

    approve_request(session, request_id, *, actor: str) -> ErasureRequest
    retry_failed(session, request_id, *, actor: str) -> ErasureRequest
    extend_deadline(session, request_id, *, reason: str, actor: str) -> ErasureRequest

Until then their forms are not offered and a POST answers 501.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

PIPELINE_ACTIONS = "erasure.pipeline.actions"
NAMES = {"approve": "approve_request", "retry": "retry_failed", "extend": "extend_deadline"}


def pipeline_action(action: str) -> Callable[..., Any] | None:
    try:
        module = importlib.import_module(PIPELINE_ACTIONS)
    except ModuleNotFoundError:
        return None
    function = getattr(module, NAMES[action], None)
    return function if callable(function) else None


def available() -> dict[str, bool]:
    return {action: pipeline_action(action) is not None for action in NAMES}
