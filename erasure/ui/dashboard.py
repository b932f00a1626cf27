"""Sign-in, sign-out and the dashboard."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from erasure.ui import accounts, chart_figures, queries, security
from erasure.ui.blueprint import bp
from erasure.web.resources import get_session

logger = logging.getLogger(__name__)


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> ResponseReturnValue:
    if request.method == "GET":
        if security.current_user() is not None:
            return redirect(url_for("ui.dashboard"))
        security.csrf_token()  # the anonymous session carries the form's CSRF token
        return render_template("ui/sign_in.html", title="Sign in", failed=False)
    session = get_session()
    result = accounts.authenticate(
        session, request.form.get("email", ""), request.form.get("password", "")
    )
    session.commit()  # failures are counted even though sign-in fails
    if result.user is None:
        logger.info("console: sign-in failed%s", " (account locked)" if result.locked else "")
        return render_template("ui/sign_in.html", title="Sign in", failed=True), 401
    security.start_session(result.user)
    logger.info("console: user %s signed in", result.user.id)
    return redirect(url_for("ui.dashboard"))


@bp.post("/sign-out")
def sign_out() -> ResponseReturnValue:
    user = security.current_user()
    if user is not None:
        user.session_version += 1  # the cookie, even if copied, is dead from now on
        get_session().commit()
    security.end_session()
    return redirect(url_for("ui.sign_in"))


@bp.get("/")
@security.requires("view")
def dashboard() -> str:
    now = datetime.now(UTC)
    session = get_session()
    data = queries.dashboard(session, now)
    trends, quota_charts = chart_figures.charts(session, now)
    return render_template(
        "ui/dashboard.html",
        title="Dashboard",
        d=data,
        now=now,
        days_left=queries.days_left,
        trends=trends,
        quota_charts=quota_charts,
    )
