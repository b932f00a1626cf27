"""A request's page (state, targets, timeline, free text for those who may read it) and its
certificate download."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import (
    Response,
    abort,
    flash,
    redirect,
    render_template,
    url_for,
)
from flask.typing import ResponseReturnValue

from erasure import free_text, workflow
from erasure.audit import certify
from erasure.audit.certificate import dump_certificate
from erasure.celery_app import tunables
from erasure.core.models import (
    ErasureRequest,
    RequestStatus,
    TargetStatus,
)
from erasure.errors import InvalidTransition, NotFound, NotReady
from erasure.pipeline.states import record_pseudonym
from erasure.ui import prediction_reasons, queries, security, timeline, why_stuck
from erasure.ui.blueprint import bp
from erasure.web.resources import get_session, web_resources

logger = logging.getLogger(__name__)


#: How an extension's reason is appended to the notes (erasure.lifecycle.operations.extend).
_EXTENSION = re.compile(r"^\[deadline extended (\d{4}-\d{2}-\d{2})\] ?(.*)$")


def split_notes(notes: str | None) -> tuple[str, list[tuple[str, str]]]:
    """The notes as typed, and the extension reasons appended to them as (day, reason)."""
    kept: list[str] = []
    extensions: list[tuple[str, str]] = []
    for line in (notes or "").splitlines():
        match = _EXTENSION.match(line)
        if match:
            extensions.append((match.group(1), match.group(2)))
        elif extensions:  # a reason that ran over more than one line
            day, reason = extensions[-1]
            extensions[-1] = (day, f"{reason}\n{line}")
        else:
            kept.append(line)
    return "\n".join(kept).strip(), extensions


def _free_text(erasure_request: ErasureRequest) -> dict[str, Any] | None:
    """Notes, extension and cancel reasons, decrypted for the roles that may read them."""
    if not security.can("notes"):
        return None
    vault = web_resources().protection.vault
    notes, extensions = split_notes(free_text.open_notes(vault, erasure_request))
    return {
        "notes": notes,
        "extensions": extensions,
        "cancel_reason": free_text.open_cancel_reason(vault, erasure_request),
    }


def _reasons(free: dict[str, Any] | None) -> timeline.Reasons | None:
    """The reasons the timeline may quote: only for a reader who sees the free text."""
    if free is None:
        return None
    return timeline.Reasons(
        extensions=[reason for _day, reason in free["extensions"]], cancel=free["cancel_reason"]
    )


def _load(request_id: uuid.UUID) -> ErasureRequest:
    try:
        return workflow.get_request(get_session(), request_id)
    except NotFound:
        abort(404)


@bp.get("/requests/<uuid:request_id>")
@security.requires("view")
def request_detail(request_id: uuid.UUID) -> str:
    session = get_session()
    erasure_request = _load(request_id)
    now = datetime.now(UTC)
    entries = queries.timeline(session, request_id)
    key = web_resources().settings.pseudonym_key_bytes
    targets = [
        {
            "kind": t.kind.value,
            "record": record_pseudonym(key, t.salesforce_id)[:16] if t.salesforce_id else None,
            "status": t.status.value,
            "log_id": t.log_id,
            "log_status": t.log_status,
            "failure_reason": t.failure_reason,
        }
        for t in sorted(erasure_request.targets, key=lambda t: (t.created_at, t.id))
    ]
    open_ = not erasure_request.status.is_terminal
    has_failed = any(t.status is TargetStatus.FAILED for t in erasure_request.targets)
    free = _free_text(erasure_request)
    stuck = why_stuck.causes(
        session, erasure_request, entries, now, tunables(web_resources().settings)
    )
    # A look-up parked for a person has no failed record, yet retry is what restarts it.
    parked = any(c.retry for c in stuck)
    offered = {
        "cancel": open_ and security.can("cancel"),
        "approve": erasure_request.status is RequestStatus.AWAITING_APPROVAL
        and security.can("approve"),
        "retry": (has_failed or parked)
        and erasure_request.status not in (RequestStatus.CANCELLED, RequestStatus.REJECTED)
        and security.can("retry"),
        "extend": open_ and security.can("extend"),
        "certificate": erasure_request.status in certify.CERTIFIABLE
        and security.can("certificate"),
    }
    return render_template(
        "ui/request_detail.html",
        title=f"Request {erasure_request.id}",
        r=erasure_request,
        free_text=free,
        has_failed=has_failed,
        has_free_text=erasure_request.notes_ciphertext is not None
        or erasure_request.cancel_reason_ciphertext is not None,
        now=now,
        days_left=queries.days_left(erasure_request.due_at, now),
        timeline=entries,
        timeline_lines=timeline.lines(session, entries, _reasons(free)),
        pseudonyms=queries.subject_pseudonyms(entries),
        left_alone=queries.left_alone(entries),
        targets=targets,
        offered=offered,
        why_predicted=prediction_reasons.reasons(session, erasure_request, entries, now),
        why_stuck=stuck,
    )


@bp.get("/requests/<uuid:request_id>/certificate")
@security.requires("certificate")
def certificate(request_id: uuid.UUID) -> ResponseReturnValue:
    key = web_resources().signing_key
    if key is None:
        flash("No audit signing key is configured (ERASURE_AUDIT_SIGNING_KEY_FILE).", "error")
        return redirect(url_for("ui.request_detail", request_id=request_id))
    try:
        document = certify.certificate_for(get_session(), request_id, signing_key=key)
    except NotFound:
        abort(404)
    except (InvalidTransition, NotReady) as exc:
        flash(f"No certificate yet: {exc}. Try again in a few seconds.", "error")
        return redirect(url_for("ui.request_detail", request_id=request_id))
    response = Response(dump_certificate(document), mimetype="application/json")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="erasure-certificate-{request_id}.json"'
    )
    return response
