"""`erasure orgs`: Salesforce orgs and their execution users; and the defaults a standalone data
directory gives other commands (its sandbox org for `salesforce check`, its signing key)."""

from __future__ import annotations

import re
from typing import Any

import click

from erasure.cli.target import Target, pass_target
from erasure.salesforce.config import DeleteIdsIn
from erasure.standalone.datadir import Connection, DataDir

DELETE_IDS_IN = [shape.value for shape in DeleteIdsIn]
DELETE_IDS_IN_HELP = (
    "Where DELETE calls put the ids: a JSON body or the query string. Salesforce does not "
    "document it; `erasure salesforce check` finds out which one the org accepts."
)


def _field_name(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A JSON member / query parameter name that fits the org's column (64 characters)."""
    if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", value):
        raise click.BadParameter("letters, digits and _ only, at most 64 characters")
    return value


def data_dir_defaults(data: DataDir) -> dict[str, Any]:
    """Option defaults from a standalone data directory (click's `default_map`): what was given
    on the command line still wins."""
    defaults: dict[str, Any] = {
        "signing-keys": {"public": {"keyfile": str(data.signing_key_file)}},
        "keys": {"public": {"keyfile": str(data.signing_key_file)}},
        "audit": {"verify": {"public_key_value": lambda: _verifier_of(data)}},
    }
    connection = Connection.read(data)
    if connection is not None and connection.sandbox_url and connection.sandbox_client_id:
        check = {
            "my_domain": connection.sandbox_url,
            "client_id": connection.sandbox_client_id,
            "client_secret_file": str(data.sandbox_secret_file),
            "ca_bundle": connection.sandbox_ca_bundle,
        }
        defaults["salesforce"] = {"check": check}
    return defaults


def _verifier_of(data: DataDir) -> str | None:
    from erasure.audit.checkpoint import load_signing_key

    key = load_signing_key(data.signing_key_file)
    return str(key.verifier()) if key is not None else None


@click.group()
def orgs() -> None:
    """Salesforce orgs and their execution-user credentials."""


@orgs.command("add")
@click.argument("name")
@click.option("--my-domain", required=True, help="https://{MyDomain}.my.salesforce.com")
@click.option(
    "--api-version", default="63.0", show_default=True, help="Salesforce REST API version."
)
@click.option("--requires-approval", is_flag=True, help="Requests wait for an approver.")
@click.option(
    "--max-ids-per-call",
    default=200,
    show_default=True,
    type=click.IntRange(1, 2000),
    help="Ids in one delete call.",
)
@click.option(
    "--calls-per-window",
    default=10,
    show_default=True,
    type=click.IntRange(1),
    help="Delete calls one execution user may make per window (Salesforce: 10 per hour).",
)
@click.option(
    "--window-seconds",
    default=3600,
    show_default=True,
    type=click.IntRange(1),
    help="The window of --calls-per-window, seconds.",
)
@click.option(
    "--delete-ids-in",
    type=click.Choice(DELETE_IDS_IN),
    default="body",
    show_default=True,
    help=DELETE_IDS_IN_HELP,
)
@pass_target
def orgs_add(
    target: Target,
    name: str,
    my_domain: str,
    api_version: str,
    requires_approval: bool,
    max_ids_per_call: int,
    calls_per_window: int,
    window_seconds: int,
    delete_ids_in: str,
) -> None:
    """Add an org."""
    from erasure.orgs import add_org

    with target.session() as session:
        try:
            add_org(
                session,
                name=name,
                my_domain_url=my_domain,
                api_version=api_version,
                requires_approval=requires_approval,
                max_ids_per_call=max_ids_per_call,
                delete_calls_per_window=calls_per_window,
                window_s=window_seconds,
                delete_ids_in=DeleteIdsIn(delete_ids_in),
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(f"added org {name}")


@orgs.command("set")
@click.argument("name")
@click.option("--delete-ids-in", type=click.Choice(DELETE_IDS_IN), help=DELETE_IDS_IN_HELP)
@click.option(
    "--participants-field",
    callback=_field_name,
    help="Name of the ids in participant deletes (default participantEntityIds; undocumented).",
)
@click.option(
    "--conversations-field",
    callback=_field_name,
    help="Name of the ids in conversation deletes (default conversationIds; undocumented).",
)
@pass_target
def orgs_set(
    target: Target,
    name: str,
    delete_ids_in: str | None,
    participants_field: str | None,
    conversations_field: str | None,
) -> None:
    """Change how erasure speaks to an org (what `erasure salesforce check` found)."""
    from erasure.orgs import find_org

    with target.session() as session:
        record = find_org(session, name)
        if record is None:
            raise click.ClickException(f"no org named {name!r}")
        if delete_ids_in is not None:
            record.delete_ids_in = DeleteIdsIn(delete_ids_in)
        if participants_field is not None:
            record.participants_body_field = participants_field
        if conversations_field is not None:
            record.conversations_body_field = conversations_field
        session.commit()
        click.echo(
            f"{name}: delete ids in the {record.delete_ids_in.value}, named "
            f"{record.participants_body_field} / {record.conversations_body_field}"
        )


@orgs.command("add-credential")
@click.argument("org")
@click.argument("name")
@click.option("--client-id", required=True, help="The External Client App's consumer key.")
@click.option(
    "--client-secret",
    envvar="ERASURE_NEW_CLIENT_SECRET",
    prompt="client secret",
    hide_input=True,
    hidden=True,  # never on the command line (shell history, `ps`): the variable or the prompt
)
@pass_target
def orgs_add_credential(
    target: Target, org: str, name: str, client_id: str, client_secret: str
) -> None:
    """Add an execution user (External Client App) to an org's pool. The consumer secret is read
    from ERASURE_NEW_CLIENT_SECRET, else asked for without echo."""
    from erasure.identifiers import Vault
    from erasure.orgs import add_credential, find_org

    settings = target.settings()
    with target.session(settings) as session:
        record = find_org(session, org)
        if record is None:
            raise click.ClickException(f"no org named {org!r}")
        add_credential(
            session,
            Vault(settings.encryption_key_bytes),
            record,
            name=name,
            client_id=client_id,
            client_secret=client_secret,
        )
        session.commit()
    click.echo(f"added credential {name} to {org}")
