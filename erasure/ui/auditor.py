"""Auditor pages: the latest signed checkpoint, the public key, an evidence bundle to download,
verification runs (of a fresh export of the whole log, or of an uploaded certificate) that say
what they prove, and a request's certificate as a printable page."""

from __future__ import annotations

import io
import tempfile
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from erasure.audit import certify, store
from erasure.audit.certificate import dump_certificate, verify_certificate
from erasure.audit.checkpoint import SigningKey
from erasure.audit.verify import verify_bundle
from erasure.errors import InvalidTransition, NotFound, NotReady
from erasure.ui import audit_findings, security
from erasure.ui.blueprint import bp
from erasure.ui.bulk import max_upload
from erasure.web.resources import get_session, web_resources


def _key() -> SigningKey | None:
    return web_resources().signing_key


def _page(**extra: object) -> str:
    key = _key()
    checkpoint = store.latest_checkpoint(get_session())
    return render_template(
        "ui/audit.html",
        title="Audit evidence",
        checkpoint=checkpoint,
        public_key=str(key.verifier()) if key else None,
        **extra,
    )


@bp.get("/audit")
@security.requires("audit")
def audit_home() -> str:
    return _page()


@bp.get("/audit/public-key")
@security.requires("audit")
def audit_public_key() -> ResponseReturnValue:
    key = _key()
    if key is None:
        return Response("no signing key configured\n", status=503, mimetype="text/plain")
    response = Response(str(key.verifier()) + "\n", mimetype="text/plain")
    response.headers["Content-Disposition"] = 'attachment; filename="erasure-audit.pub"'
    return response


@bp.get("/audit/checkpoint")
@security.requires("audit")
def audit_checkpoint() -> ResponseReturnValue:
    checkpoint = store.latest_checkpoint(get_session())
    if checkpoint is None:
        return Response("no checkpoint yet\n", status=404, mimetype="text/plain")
    response = Response(checkpoint.note, mimetype="text/plain")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="checkpoint-{checkpoint.size}.note"'
    )
    return response


def _export(directory: Path, key: SigningKey) -> Path:
    out = directory / "evidence"
    store.export(get_session(), out, verifier_key=key.verifier())
    return out


@bp.get("/audit/evidence.zip")
@security.requires("audit")
def audit_export() -> ResponseReturnValue:
    """The evidence bundle (leaves, checkpoints, public key, manifest) as one zip file."""
    key = _key()
    if key is None:
        return Response("no signing key configured\n", status=503, mimetype="text/plain")
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="erasure-evidence-") as tmp:
        try:
            out = _export(Path(tmp), key)
        except NotReady as exc:
            flash(f"No evidence bundle yet: {exc}.", "error")
            return redirect(url_for("ui.audit_home"), code=303)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(out.rglob("*")):
                if path.is_file():
                    archive.write(path, Path("evidence") / path.relative_to(out))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    response = Response(buffer.getvalue(), mimetype="application/zip")
    response.headers["Content-Disposition"] = f'attachment; filename="erasure-evidence-{stamp}.zip"'
    return response


@bp.post("/audit/verify")
@security.requires("audit")
def audit_verify() -> str:
    """Export the log as it is now and verify it the way an auditor would, offline."""
    key = _key()
    if key is None:
        return _page(error="No signing key is configured: nothing can be verified.")
    with tempfile.TemporaryDirectory(prefix="erasure-verify-") as tmp:
        try:
            report = verify_bundle(_export(Path(tmp), key), key.verifier())
        except NotReady as exc:
            return _page(error=f"Nothing to verify yet: {exc}.")
    return _page(
        report=report,
        what="the whole log, exported now",
        statements=audit_findings.log_statements(report),
    )


@bp.post("/audit/verify-certificate")
@security.requires("audit")
@max_upload(8 * 1024 * 1024)
def audit_verify_certificate() -> str:
    key = _key()
    upload = request.files.get("certificate")
    if key is None or upload is None or not upload.filename:
        return _page(error="Choose a certificate file (and make sure a signing key is configured).")
    data = upload.read()
    report = verify_certificate(data, key.verifier())
    statements = audit_findings.certificate_statements(report, data)
    consistent = audit_findings.consistency_statement(get_session(), report, data, key.verifier())
    if consistent is not None:
        statements.append(consistent)
    return _page(report=report, what="the uploaded certificate", statements=statements)


@bp.get("/requests/<uuid:request_id>/certificate/print")
@security.requires("certificate")
def certificate_print(request_id: uuid.UUID) -> ResponseReturnValue:
    """The certificate as a page to print or save as PDF, with what it proves in words; the
    JSON beside it stays the document an auditor verifies."""
    key = _key()
    if key is None:
        flash("No audit signing key is configured (ERASURE_AUDIT_SIGNING_KEY_FILE).", "error")
        return redirect(url_for("ui.request_detail", request_id=request_id))
    session = get_session()
    try:
        document = certify.certificate_for(session, request_id, signing_key=key)
    except NotFound:
        abort(404)
    except (InvalidTransition, NotReady) as exc:
        flash(f"No certificate yet: {exc}. Try again in a few seconds.", "error")
        return redirect(url_for("ui.request_detail", request_id=request_id))
    data = dump_certificate(document)
    report = verify_certificate(data, key.verifier())
    return render_template(
        "ui/certificate_print.html",
        title=f"Certificate of erasure {request_id}",
        c=document,
        report=report,
        statements=audit_findings.certificate_statements(report, data),
    )
