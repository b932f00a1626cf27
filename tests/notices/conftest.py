"""The console's fixtures (signed-in clients per role), for the notice pages."""

from __future__ import annotations

from tests.ui.conftest import (  # noqa: F401  # fixtures
    make_user,
    signed_in,
    ui_app,
    ui_client,
    ui_settings,
)
