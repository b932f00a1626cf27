"""Click commands: `erasure salesforce sandbox` and `erasure salesforce check`.

Exported as `sandbox_command` and `salesforce_group`; `erasure.cli` registers them (and keeps
`erasure sandbox` as a hidden alias). Secrets are read
from a file or an environment variable, never from the command line (shell history, `ps`).
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path

import click
from rich.console import Console

from erasure.salesforce.check import render, run_check
from erasure.salesforce.config import CredentialSettings, DeleteIdsIn, OrgSettings, Timeouts
from erasure.salesforce.sandbox import SandboxConfig, SandboxOrg, seed_demo
from erasure.salesforce.sandbox.seed import SeededEndUser, demo_phone
from erasure.salesforce.sandbox.server import build_server


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8443, show_default=True, type=int, help="0 picks a free port.")
@click.option(
    "--seed",
    type=click.Choice(["demo", "none"]),
    default="none",
    show_default=True,
    help="`demo`: 36 demo end users (+14155550001 ... +14155550036), listed on stderr.",
)
@click.option(
    "--hour-seconds",
    type=float,
    default=3600.0,
    show_default=True,
    help="Length of the rate-limit 'hour' (compress time for benchmarks).",
)
@click.option(
    "--log-step-seconds",
    type=float,
    default=2.0,
    show_default=True,
    help="Time between two ConversationApiLog statuses.",
)
@click.option(
    "--credentials", type=int, default=1, show_default=True, help="Execution users to create."
)
@click.option(
    "--delete-ids-in",
    type=click.Choice(["body", "query", "either"]),
    default="body",
    show_default=True,
    help="Where the org's deletes take their ids (Salesforce does not document it).",
)
@click.option("--client-secret", envvar="ERASURE_SANDBOX_CLIENT_SECRET", help="Default: random.")
@click.option(
    "--cert-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the TLS certificate (default: a temporary directory).",
)
def sandbox_command(
    *,
    host: str,
    port: int,
    seed: str,
    hour_seconds: float,
    log_step_seconds: float,
    credentials: int,
    delete_ids_in: str,
    client_secret: str | None,
    cert_dir: Path | None,
) -> None:
    """Run a Salesforce sandbox org (HTTPS) until interrupted."""
    org = SandboxOrg(
        SandboxConfig(hour_s=hour_seconds, log_step_s=log_step_seconds, delete_ids_in=delete_ids_in)
    )
    secret = client_secret or secrets.token_urlsafe(24)
    client_ids = [f"erasure-sandbox-{n}" for n in range(1, credentials + 1)]
    for client_id in client_ids:
        org.add_app(client_id, secret)
    seeded = []
    if seed == "demo":
        with org.lock:
            seeded = seed_demo(org.data)
    tempdir = None
    if cert_dir is None:
        tempdir = tempfile.TemporaryDirectory(prefix="erasure-sandbox-")
        cert_dir = Path(tempdir.name)
    server, url, cert_path = build_server(org, host=host, port=port, cert_dir=cert_dir)
    # Plain key: value lines on stdout, so scripts (and tests) can read them.
    click.echo(f"url: {url}")
    click.echo(f"ca bundle: {cert_path}")
    for client_id in client_ids:
        click.echo(f"client id: {client_id}")
    click.echo(f"client secret: {secret}")
    click.echo(f"admin: {url}/__sandbox__/counters")
    if seeded:
        _print_demo_table(seeded)
    click.echo("ready", err=False)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if tempdir is not None:
            tempdir.cleanup()


def _print_demo_table(seeded: list[SeededEndUser]) -> None:
    """The demo subjects on stderr, one tab-separated line each: never cut to a terminal's width,
    and readable by a script. `submit as` is what finds the subject: the phone its contact holds,
    else its platform key (a WhatsApp user without a contact)."""
    click.echo("demo end users (submit the `submit as` value, or the email):", err=True)
    columns = ("n", "submit as", "email", "contact holds", "platform key", "open", "blocking")
    click.echo("\t".join(columns), err=True)
    for n, user in enumerate(seeded, start=1):
        row = (
            str(n),
            demo_phone(n) if user.phone else user.platform_key,
            user.email or "-",
            user.phone or "-",
            user.platform_key,
            "yes" if n % 6 == 0 else "-",
            "yes" if n % 9 == 0 else "-",
        )
        click.echo("\t".join(row), err=True)


# The variable `erasure orgs add-credential` reads too: check a secret, then add it.
SECRET_VARIABLE = "ERASURE_NEW_CLIENT_SECRET"  # noqa: S105 (a variable name, not a secret)


@click.group("salesforce")
def salesforce_group() -> None:
    """Salesforce org tools."""


@salesforce_group.command("check")
@click.option("--my-domain", required=True, help="https://{MyDomain}.my.salesforce.com")
@click.option("--client-id", required=True, help="The External Client App's consumer key.")
@click.option(
    "--client-secret-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file holding only the consumer secret.",
)
@click.option(
    "--client-secret",
    envvar=SECRET_VARIABLE,
    hidden=True,  # never on the command line (shell history, `ps`): the file or the variable
)
@click.option(
    "--api-version", default="63.0", show_default=True, help="Salesforce REST API version."
)
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False),
    help="CA certificate(s) to trust (e.g. the sandbox's).",
)
@click.option("--timeout", type=float, default=15.0, show_default=True, help="Read timeout (s).")
@click.option(
    "--delete-ids-in",
    type=click.Choice([shape.value for shape in DeleteIdsIn]),
    default=DeleteIdsIn.BODY.value,
    show_default=True,
    help="The org's configured delete request shape, probed first.",
)
@click.option(
    "--skip-delete-probe",
    is_flag=True,
    help="Do not probe the delete request shape (the probe may cost one of the execution "
    "user's 10 delete calls per hour).",
)
def check_command(
    *,
    my_domain: str,
    client_id: str,
    client_secret_file: Path | None,
    client_secret: str | None,
    api_version: str,
    ca_bundle: str | None,
    timeout: float,
    delete_ids_in: str,
    skip_delete_probe: bool,
) -> None:
    """Diagnose an org's setup for the Conversation Data API, step by step. Deletes nothing: the
    delete-shape probe names an id no org holds."""
    context = click.get_current_context()
    if context.get_parameter_source("client_secret") is click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError(
            f"the secret goes in --client-secret-file or {SECRET_VARIABLE}, never on the "
            "command line (shell history and `ps` would show it)"
        )
    file_source = context.get_parameter_source("client_secret_file")
    if client_secret and file_source is click.core.ParameterSource.DEFAULT_MAP:
        client_secret_file = None  # a standalone's default gives way to the variable
    if client_secret_file is not None:
        secret = client_secret_file.read_text().strip()
        if not secret:
            raise click.BadParameter(
                f"{client_secret_file} is empty: it must hold the consumer secret",
                param_hint="--client-secret-file",
            )
    elif client_secret:
        secret = client_secret
    else:
        raise click.UsageError(f"give --client-secret-file or set {SECRET_VARIABLE}")
    try:
        org = OrgSettings(
            my_domain,
            api_version=api_version,
            ca_bundle=ca_bundle,
            delete_ids_in=DeleteIdsIn(delete_ids_in),
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--my-domain") from exc
    report = run_check(
        org,
        CredentialSettings(client_id, secret),
        timeouts=Timeouts(connect_s=5.0, read_s=timeout),
        delete_probe=not skip_delete_probe,
    )
    render(report, Console())
    if not report.ok:
        raise SystemExit(1)
