"""A second step before an action that cannot be taken back (cancel a request, revoke a key,
disable a user, extend an overdue request): the form posts once, the console answers with a
page that says what will happen, and only the post carrying `confirm=1` acts. Plain HTML, no
script, so it works with the console's Content-Security-Policy and without JavaScript."""

from __future__ import annotations

from collections.abc import Mapping

from flask import render_template, request


def confirmed() -> bool:
    return request.form.get("confirm") == "1"


def ask(
    *,
    title: str,
    message: str,
    action: str,
    fields: Mapping[str, str | list[str]],
    button: str,
    back: str,
    danger: bool = True,
) -> str:
    """The confirmation page: the same form again, with `confirm=1` and the fields already given
    (the person's own input, posted back to them; never put in a URL)."""
    pairs: list[tuple[str, str]] = []
    for name, value in fields.items():
        pairs.extend((name, v) for v in ([value] if isinstance(value, str) else value))
    return render_template(
        "ui/confirm.html",
        title=title,
        message=message,
        action=action,
        fields=pairs,
        button=button,
        back=back,
        danger=danger,
    )
