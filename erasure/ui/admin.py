"""Settings for admins: orgs and their pool of execution users (health and quota), API keys,
the list of console users (managed in erasure.ui.user_admin), and the webhook sources and
callback subscriptions when the integrations exist."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from erasure.accounts.models import ApiKey, Role, User
from erasure.api_keys import create_api_key, revoke_api_key
from erasure.core.models import Credential, Org
from erasure.integrations import models as integration_models
from erasure.orgs import client_secret
from erasure.pipeline.salesforce_port import org_settings
from erasure.salesforce import CredentialSettings
from erasure.salesforce.errors import SalesforceError
from erasure.ui import confirmation, queries, security
from erasure.ui.blueprint import bp
from erasure.web.resources import get_session, web_resources

logger = logging.getLogger(__name__)


def _optional_rows(model_name: str) -> list[Any] | None:
    model = getattr(
        integration_models, model_name, None
    )  # present once the integrations are installed
    if model is None:
        return None
    return list(get_session().scalars(select(model).order_by(model.created_at.desc()).limit(200)))


@bp.get("/settings")
@security.requires("admin")
def settings(new_key: str | None = None) -> str:
    session = get_session()
    now = datetime.now(UTC)
    orgs = session.scalars(
        select(Org).options(selectinload(Org.credentials)).order_by(Org.name)
    ).all()
    return render_template(
        "ui/settings.html",
        title="Settings",
        now=now,
        orgs=orgs,
        quotas={(q.org, q.credential): q for q in queries.quotas(session, now)},
        api_keys=session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc())).all(),
        users=session.scalars(select(User).order_by(User.email)).all(),
        roles=list(Role),
        webhook_sources=_optional_rows("WebhookSource"),
        subscriptions=_optional_rows("CallbackSubscription"),
        new_key=new_key,
    )


@bp.post("/settings/api-keys")
@security.requires("admin")
def create_key() -> ResponseReturnValue:
    name = request.form.get("name", "").strip()[:128]
    role_text = request.form.get("role", "")
    if not name or role_text not in Role.__members__.values():
        flash("Give the key a name and a role.", "error")
        return redirect(url_for("ui.settings"), code=303)
    session = get_session()
    new = create_api_key(session, name=name, role=Role(role_text))
    session.commit()
    logger.info("console: API key %s created (role %s)", new.record.prefix, role_text)
    # Shown once, in this response only (never in a URL, a flash cookie or a log).
    return settings(new_key=new.secret)


@bp.post("/settings/api-keys/<prefix>/revoke")
@security.requires("admin")
def revoke_key(prefix: str) -> ResponseReturnValue:
    if not confirmation.confirmed():
        return confirmation.ask(
            title="Revoke this API key?",
            message=f"Key {prefix} will stop working within the key cache's bound, for every "
            "system that uses it. A revoked key cannot be restored: a new one must be created.",
            action=url_for("ui.revoke_key", prefix=prefix),
            fields={},
            button="Yes, revoke the key",
            back=url_for("ui.settings"),
        )
    session = get_session()
    record = revoke_api_key(session, prefix=prefix)
    session.commit()
    flash(f"Key {prefix} revoked." if record else "No such key.", "info" if record else "error")
    return redirect(url_for("ui.settings"), code=303)


@bp.post("/settings/credentials/<uuid:credential_id>/check")
@security.requires("admin")
def check_credential(credential_id: Any) -> ResponseReturnValue:
    """Fetch a token for one execution user, live: is the credential healthy right now?

    Read-only (a token request only); the token itself is never shown or logged.
    """
    session = get_session()
    credential = session.get(Credential, credential_id)
    resources = web_resources()
    if credential is None or resources.salesforce_clients is None:
        flash("No such execution user.", "error")
        return redirect(url_for("ui.settings"), code=303)
    org = credential.org
    secret = client_secret(resources.protection.vault, org, credential)
    client = resources.salesforce_clients(
        org_settings(org), CredentialSettings(credential.client_id, secret, name=credential.name)
    )
    try:
        token = client.token()
    except SalesforceError as exc:
        reason = exc.error_code or exc.code  # e.g. invalid_client: Salesforce's own word
        logger.info(
            "console: token check for %s/%s failed (%s)", org.name, credential.name, exc.code
        )
        flash(
            f"{org.name} / {credential.name}: token refused ({reason}). Run `erasure salesforce check` for the fix.",
            "error",
        )
    else:
        expires = datetime.fromtimestamp(token.expires_at, UTC).strftime("%H:%M UTC")
        flash(
            f"{org.name} / {credential.name}: token OK (scope: {token.scope or 'n/a'}; expires {expires}).",
            "info",
        )
    finally:
        client.close()
    return redirect(url_for("ui.settings"), code=303)
