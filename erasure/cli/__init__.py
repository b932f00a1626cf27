"""The `erasure` command line: a plain click group, composed from each capability's commands.

A composition root: it reads Settings and builds engines; nothing imports it. Every command acts
on the target `erasure.cli.target` finds: a standalone data directory or the environment.

- `schema_commands`: `db upgrade`, `db check`.
- `run_commands`: `serve`, `worker`, `standalone`.
- `account_commands`: `users`, `api-keys`.
- `org_commands`: `orgs`, and the sandbox's defaults for `salesforce check`.
- `audit_commands`: `audit sequence/export/certificate`, `signing-keys`, `encryption-keys`.
"""

from __future__ import annotations

from pathlib import Path

import click

from erasure.cli.target import Target


@click.group()
@click.version_option(package_name="erasure")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="ERASURE_DATA_DIR",
    help="A standalone's data directory to act on. Default: the environment's settings when "
    "ERASURE_DATABASE_URL is set, else ./.erasure if it is one, else the running standalone's.",
)
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None) -> None:
    """erasure: GDPR/CCPA erasure for Salesforce Enhanced Messaging, with proof."""
    if ctx.invoked_subcommand in (None, "standalone", "serve", "worker"):
        # These make or read their own configuration; a data dir of their own is an option.
        ctx.obj = Target(None)
        if data_dir is not None:  # `erasure --data-dir D standalone` as `standalone --data-dir D`
            ctx.default_map = {"standalone": {"data_dir": str(data_dir)}}
        return
    target = Target.find(data_dir)
    ctx.obj = target
    if target.data is not None:
        from erasure.cli.org_commands import data_dir_defaults

        ctx.default_map = data_dir_defaults(target.data)


def _register() -> None:
    from erasure.audit.commands import audit_group
    from erasure.cli import (
        account_commands,
        audit_commands,
        org_commands,
        run_commands,
        schema_commands,
    )
    from erasure.salesforce.commands import salesforce_group, sandbox_command

    for command in (
        schema_commands.db,
        run_commands.serve,
        run_commands.worker,
        run_commands.standalone,
        account_commands.users,
        account_commands.api_keys,
        org_commands.orgs,
        salesforce_group,
        audit_group,
        audit_commands.signing_keys,
        audit_commands.encryption_keys,
        audit_commands.keys_alias,
    ):
        main.add_command(command)
    # `erasure sandbox` is `erasure salesforce sandbox` now; the old name still works.
    salesforce_group.add_command(sandbox_command)
    main.add_command(_hidden_alias(sandbox_command, "sandbox"))
    for audit_command in audit_commands.DATABASE_AUDIT_COMMANDS:
        audit_group.add_command(audit_command)


def _hidden_alias(command: click.Command, name: str) -> click.Command:
    """The same command under an old name, left out of --help."""
    return click.Command(
        name,
        callback=command.callback,
        params=command.params,
        help=command.help,
        hidden=True,
        context_settings=command.context_settings,
    )


_register()
