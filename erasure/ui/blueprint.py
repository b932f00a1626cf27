"""The console's blueprint (/ui, its templates and static files): the page modules (dashboard,
request_list, request_export, request_form, request_detail, request_actions, bulk, auditor,
admin) and security's hooks are declared on it; the app factory registers it once they are
imported."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint

bp = Blueprint(
    "ui",
    __name__,
    url_prefix="/ui",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

#: Signed-in sessions end after this long, whatever the activity.
SESSION_LIFETIME = timedelta(hours=12)
