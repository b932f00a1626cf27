"""An access request's page (status, counts, due date, the expiring download links for those who
may read the export, the certificate of disclosure) and the certificate download. The form that
opens one is erasure.ui.request_form's. No subject identifier is ever shown."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Response, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from erasure import free_text
from erasure.access import links
from erasure.access.certify import CERTIFIABLE, disclosure_certificate_for
from erasure.access.intake import get_access
from erasure.access.models import AccessRequest, AccessStatus
from erasure.audit.certificate import dump_certificate
from erasure.errors import InvalidTransition, NotFound, NotReady
from erasure.ui import queries, security
from erasure.ui.blueprint import bp
from erasure.web.resources import get_session, web_resources


@dataclass(frozen=True)
class ExportLinks:
    json: str
    html: str
    expires: datetime


def download_links(access: AccessRequest, *, now: datetime) -> ExportLinks | None:
    """The JSON and HTML links of a ready export, expiring as the API's do (never after the
    export's own retention date); None when there is nothing to download."""
    if access.status is not AccessStatus.READY:
        return None
    settings = web_resources().settings
    expires = now + timedelta(seconds=settings.access_link_ttl_s)
    if access.expires_at is not None:
        expires = min(expires, access.expires_at)
    token = links.mint(web_resources().protection.pseudonym_key, access.id, expires)
    # Relative: the console and the API are one app, and the page's own origin is right
    # wherever the console is reached from.
    base = f"/v1/access-exports/{token}"
    return ExportLinks(f"{base}?format=json", f"{base}?format=html", expires)


def _find(request_id: uuid.UUID) -> AccessRequest:
    try:
        return get_access(get_session(), request_id)
    except NotFound:
        abort(404)


@bp.get("/access-requests/<uuid:request_id>")
@security.requires("view")
def access_detail(request_id: uuid.UUID) -> ResponseReturnValue:
    access = _find(request_id)
    now = datetime.now(UTC)
    # The export is the subject's data: its links go to those who may read free text.
    exports = download_links(access, now=now) if security.can("notes") else None
    return render_template(
        "ui/access_detail.html",
        title=f"Access request {access.id}",
        a=access,
        exports=exports,
        certificate=access.status in CERTIFIABLE and security.can("certificate"),
        days_left=queries.days_left(access.due_at, now),
        # Free text (it may name the subject): for those who may read notes, like an erasure's.
        cancel_reason=free_text.open_cancel_reason(web_resources().protection.vault, access)
        if security.can("notes")
        else None,
    )


@bp.get("/access-requests/<uuid:request_id>/certificate")
@security.requires("certificate")
def access_certificate(request_id: uuid.UUID) -> ResponseReturnValue:
    access = _find(request_id)
    key = web_resources().signing_key
    if key is None:
        flash("No audit signing key is configured (ERASURE_AUDIT_SIGNING_KEY_FILE).", "error")
        return redirect(url_for("ui.access_detail", request_id=request_id))
    try:
        document = disclosure_certificate_for(get_session(), access, signing_key=key)
    except (InvalidTransition, NotReady) as exc:
        flash(f"No certificate yet: {exc}. Try again in a few seconds.", "error")
        return redirect(url_for("ui.access_detail", request_id=request_id))
    response = Response(dump_certificate(document), mimetype="application/json")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="disclosure-certificate-{request_id}.json"'
    )
    return response
