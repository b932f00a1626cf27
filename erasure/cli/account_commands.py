"""`erasure users` and `erasure api-keys`: who may use the console and the API."""

from __future__ import annotations

import click

from erasure.accounts.models import Role
from erasure.cli.target import Target, pass_target


@click.group()
def users() -> None:
    """People who sign in to the web console (/ui)."""


@users.command("create")
@click.option(
    "--role",
    required=True,
    type=click.Choice([r.value for r in Role if r is not Role.INTEGRATION]),
    help="What the person may do (README: Authentication).",
)
@click.option("--email", required=True, help="The sign-in name.")
@click.option("--name", default="", help="Display name (defaults to the email).")
@click.option(
    "--password",
    envvar="ERASURE_NEW_USER_PASSWORD",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    hidden=True,  # never on the command line (shell history, `ps`): the variable or the prompt
)
@pass_target
def users_create(target: Target, role: str, email: str, name: str, password: str) -> None:
    """Create a console user (argon2id-hashed password, 12+ characters). The password is read
    from ERASURE_NEW_USER_PASSWORD, else asked for without echo."""
    from erasure.ui.accounts import create_user

    with target.session() as session:
        try:
            user = create_user(session, email=email, name=name, role=Role(role), password=password)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        click.echo(f"created {role} user {user.email}")


@click.group("api-keys")
def api_keys() -> None:
    """API keys for machines and scripts."""


@api_keys.command("create")
@click.option(
    "--role",
    required=True,
    type=click.Choice([r.value for r in Role]),
    help="What the key may do; `integration` keys see only the requests they submitted.",
)
@click.option("--name", required=True, help="Who or what uses the key.")
@pass_target
def api_keys_create(target: Target, role: str, name: str) -> None:
    """Create a key and print it once; only its hash is stored."""
    from erasure.api_keys import create_api_key

    with target.session() as session:
        new = create_api_key(session, name=name, role=Role(role))
        session.commit()
    click.echo(new.secret)
    click.echo(
        f"(role {role}, prefix {new.record.prefix}: store it now, it is not shown again)", err=True
    )


@api_keys.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked keys.")
@pass_target
def api_keys_list(target: Target, show_all: bool) -> None:
    """List keys, one per line: prefix, role, created, last used, name (tab-separated)."""
    from erasure.api_keys import list_api_keys

    with target.session() as session:
        records = list_api_keys(session, include_revoked=show_all)
        click.echo("prefix\trole\tcreated\tlast used\trevoked\tname")
        for record in records:
            click.echo(
                "\t".join(
                    [
                        record.prefix,
                        record.role.value,
                        record.created_at.strftime("%Y-%m-%dT%H:%MZ"),
                        _when(record.last_used_at),
                        _when(record.revoked_at),
                        record.name,
                    ]
                )
            )


def _when(moment: object) -> str:
    from datetime import datetime

    return moment.strftime("%Y-%m-%dT%H:%MZ") if isinstance(moment, datetime) else "-"


@api_keys.command("revoke")
@click.argument("prefix")
@pass_target
def api_keys_revoke(target: Target, prefix: str) -> None:
    """Revoke the key with this prefix (the part after `ek_`, as `api-keys list` shows it)."""
    from erasure.api_keys import revoke_api_key

    with target.session() as session:
        record = revoke_api_key(session, prefix=prefix)
        session.commit()
    if record is None:
        raise click.ClickException("no key with that prefix")
    click.echo(f"revoked {prefix}")
