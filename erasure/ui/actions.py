"""The console's request actions beyond cancel (erasure.workflow): approve, retry failed records,
extend the deadline, as the pipeline defines them (erasure.pipeline.actions). Each changes state
with its audit leaf in the caller's transaction; the view commits."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from erasure.core.models import ErasureRequest
from erasure.identifiers import Vault
from erasure.pipeline import actions as pipeline_actions

MESSAGES = {
    "approve": "Request approved.",
    "retry": "Failed records queued again.",
    "extend": "Deadline extended.",
}


def run(
    action: str,
    session: Session,
    request_id: uuid.UUID,
    *,
    vault: Vault,
    by: str | None,
    reason: str = "",
) -> ErasureRequest:
    """Raises erasure.errors.NotFound / InvalidTransition like the pipeline does. `by` names
    the signed-in person (`user:<id>`) in the audit log."""
    now = datetime.now(UTC)
    if action == "approve":
        return pipeline_actions.approve(session, request_id, by=by, at=now)
    if action == "retry":
        return pipeline_actions.retry(session, request_id, by=by, at=now)
    if action == "extend":
        return pipeline_actions.extend(
            session, request_id, reason=reason, until=None, vault=vault, by=by, at=now
        )
    raise ValueError(f"unknown action {action!r}")
