"""The `erasure` command line: a plain click group, composed from each capability's commands.

A composition root: it reads Settings and builds engines; nothing imports it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from erasure.audit.checkpoint import SigningKey
    from erasure.config import Settings

from erasure.accounts.models import Role
from erasure.salesforce.config import DeleteIdsIn


def _settings() -> Settings:  # imported lazily: `erasure --help` needs no environment
    from pydantic import ValidationError

    from erasure.config import Settings

    try:
        return Settings.from_env()
    except ValidationError as exc:
        missing = ", ".join("ERASURE_" + str(e["loc"][0]).upper() for e in exc.errors())
        raise click.ClickException(f"configuration is incomplete or invalid: {missing}") from None


@contextlib.contextmanager
def _session() -> Iterator[Session]:
    """A session on an engine of its own, disposed afterwards: a command leaves no connection."""
    from erasure.db import make_engine, make_sessionmaker

    engine = make_engine(_settings().database_url, pool_size=1)
    try:
        with make_sessionmaker(engine)() as session:
            yield session
    finally:
        engine.dispose()


@click.group()
@click.version_option(package_name="erasure")
def main() -> None:
    """erasure: GDPR/CCPA erasure for Salesforce Enhanced Messaging, with proof."""


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations (needs only ERASURE_DATABASE_URL)."""
    from erasure import schema
    from erasure.config import database_url_from_env

    schema.upgrade(database_url_from_env(), revision)
    click.echo(f"database upgraded to {revision}")


@db.command("check")
def db_check() -> None:
    """Fail if the models and the migrations disagree."""
    from erasure import schema
    from erasure.config import database_url_from_env

    schema.check(database_url_from_env())
    click.echo("models and migrations agree")


@main.command()
@click.option("--bind", default="127.0.0.1:8000", show_default=True)
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
def serve(bind: str, workers: int) -> None:
    """Run the API under gunicorn."""
    _settings()  # fail here, with a clear message, rather than in every gunicorn worker
    gunicorn = Path(sys.executable).with_name("gunicorn")
    args = [
        str(gunicorn),
        "--bind",
        bind,
        "--workers",
        str(workers),
        "--access-logfile",
        "-",
        "erasure.app:create_app()",
    ]
    os.execv(args[0], args)  # noqa: S606  # replaces this process with gunicorn, no shell involved


def _queues(_: click.Context, __: click.Parameter, value: str) -> tuple[str, ...]:
    from erasure.worker_pools import parse_queues

    try:
        return parse_queues(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command()
@click.option(
    "--queues",
    default="pipeline,deliveries",
    show_default=True,
    callback=_queues,
    help="What this worker runs: `pipeline` (the lookups; it takes `ticks` too when free), "
    "`ticks` (the periodic dispatch, confirm, audit sequencer...), `deliveries` (callbacks and "
    "ticket comments), or several. Production runs one worker of each kind, so neither a slow "
    "receiver nor a backlog of lookups takes a slot a deletion needs.",
)
@click.option(
    "--beat/--no-beat", default=False, help="Also run the periodic scheduler in this process."
)
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--loglevel", default="INFO", show_default=True)
def worker(queues: tuple[str, ...], beat: bool, concurrency: int, loglevel: str) -> None:
    """Run a Celery worker (and optionally beat)."""
    _settings()
    from erasure.worker import celery_app
    from erasure.worker_pools import ALL, DELIVERIES, PIPELINE, TICKS, WorkerPool

    kinds = {pool.queues: pool for pool in (PIPELINE, TICKS, DELIVERIES, ALL)}
    pool = kinds.get(queues) or WorkerPool("celery", queues, concurrency)
    if DELIVERIES.queues[0] in queues and len(queues) > 1:
        click.echo(
            "note: this worker runs deliveries and deletions in the same slots, so a slow callback "
            "receiver can delay deletions; in production run `erasure worker --queues pipeline`, "
            "`erasure worker --queues ticks` and `erasure worker --queues deliveries`",
            err=True,
        )
    argv = pool.celery_args(concurrency=concurrency, loglevel=loglevel)
    if beat:
        argv.append("--beat")
    celery_app.worker_main(argv)


@main.group()
def users() -> None:
    """People who sign in to the web console (/ui)."""


@users.command("create")
@click.option(
    "--role", required=True, type=click.Choice([r.value for r in Role if r is not Role.INTEGRATION])
)
@click.option("--email", required=True, help="The sign-in name.")
@click.option("--name", default="", help="Display name (defaults to the email).")
@click.option(
    "--password-env",
    default="ERASURE_NEW_USER_PASSWORD",
    show_default=True,
    help="Environment variable holding the password; otherwise a hidden prompt asks for it.",
)
def users_create(role: str, email: str, name: str, password_env: str) -> None:
    """Create a console user (argon2id-hashed password, 12+ characters)."""
    from erasure.ui.accounts import create_user

    password = os.environ.get(password_env) or click.prompt(
        "password", hide_input=True, confirmation_prompt=True
    )
    with _session() as session:
        try:
            user = create_user(session, email=email, name=name, role=Role(role), password=password)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
        click.echo(f"created {role} user {user.email}")


@main.group("api-keys")
def api_keys() -> None:
    """API keys for machines and scripts."""


@api_keys.command("create")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--name", required=True, help="Who or what uses the key.")
def api_keys_create(role: str, name: str) -> None:
    """Create a key and print it once; only its hash is stored."""
    from erasure.api_keys import create_api_key

    with _session() as session:
        new = create_api_key(session, name=name, role=Role(role))
        session.commit()
    click.echo(new.secret)
    click.echo(
        f"(role {role}, prefix {new.record.prefix}: store it now, it is not shown again)", err=True
    )


@api_keys.command("revoke")
@click.argument("prefix")
def api_keys_revoke(prefix: str) -> None:
    """Revoke the key with this prefix (the part after `ek_`)."""
    from erasure.api_keys import revoke_api_key

    with _session() as session:
        record = revoke_api_key(session, prefix=prefix)
        session.commit()
    if record is None:
        raise click.ClickException("no key with that prefix")
    click.echo(f"revoked {prefix}")


DELETE_IDS_IN = [shape.value for shape in DeleteIdsIn]


def _field_name(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A JSON member / query parameter name that fits the org's column (64 characters)."""
    if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", value):
        raise click.BadParameter("letters, digits and _ only, at most 64 characters")
    return value


DELETE_IDS_IN_HELP = (
    "Where DELETE calls put the ids: a JSON body or the query string. Salesforce does not "
    "document it; `erasure salesforce check` finds out which one the org accepts."
)


@main.group()
def orgs() -> None:
    """Salesforce orgs and their execution-user credentials."""


@orgs.command("add")
@click.argument("name")
@click.option("--my-domain", required=True, help="https://{MyDomain}.my.salesforce.com")
@click.option("--api-version", default="63.0", show_default=True)
@click.option("--requires-approval", is_flag=True, help="Requests wait for an approver.")
@click.option("--max-ids-per-call", default=200, show_default=True, type=click.IntRange(1, 2000))
@click.option("--calls-per-window", default=10, show_default=True, type=click.IntRange(1))
@click.option("--window-seconds", default=3600, show_default=True, type=click.IntRange(1))
@click.option(
    "--delete-ids-in",
    type=click.Choice(DELETE_IDS_IN),
    default="body",
    show_default=True,
    help=DELETE_IDS_IN_HELP,
)
def orgs_add(
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

    with _session() as session:
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
def orgs_set(
    name: str,
    delete_ids_in: str | None,
    participants_field: str | None,
    conversations_field: str | None,
) -> None:
    """Change how erasure speaks to an org (what `erasure salesforce check` found)."""
    from erasure.orgs import find_org

    with _session() as session:
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
@click.option("--client-id", required=True)
@click.option(
    "--client-secret-env",
    default="ERASURE_NEW_CLIENT_SECRET",
    show_default=True,
    help="Environment variable holding the secret (never pass a secret as an argument).",
)
def orgs_add_credential(org: str, name: str, client_id: str, client_secret_env: str) -> None:
    """Add an execution user (External Client App) to an org's pool."""
    from erasure.identifiers import Vault
    from erasure.orgs import add_credential, find_org

    secret = os.environ.get(client_secret_env) or click.prompt("client secret", hide_input=True)
    settings = _settings()
    with _session() as session:
        record = find_org(session, org)
        if record is None:
            raise click.ClickException(f"no org named {org!r}")
        add_credential(
            session,
            Vault(settings.encryption_key_bytes),
            record,
            name=name,
            client_id=client_id,
            client_secret=secret,
        )
        session.commit()
    click.echo(f"added credential {name} to {org}")


@main.command()
@click.option(
    "--data-dir",
    default="./.erasure",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--sandbox/--no-sandbox",
    default=True,
    show_default=True,
    help="Run the Salesforce sandbox org.",
)
def standalone(data_dir: Path, port: int, host: str, sandbox: bool) -> None:
    """Run everything on this machine: embedded Postgres and Redis, the API, a worker, the sandbox."""
    from erasure.standalone import run

    run(data_dir=data_dir, host=host, port=port, with_sandbox=sandbox)


def _signing_key_from(settings: Settings) -> SigningKey:
    from erasure.audit.checkpoint import load_signing_key

    key = load_signing_key(settings.audit_signing_key_file)
    if key is None:
        raise click.ClickException(
            "ERASURE_AUDIT_SIGNING_KEY_FILE is not set (see `erasure keys generate`)"
        )
    return key


@click.command("sequence")
def audit_sequence() -> None:
    """Sequence queued audit leaves and sign a checkpoint now (the worker does it periodically)."""
    from erasure.audit import store
    from erasure.audit.origin import LogIdentityError

    settings = _settings()
    key = _signing_key_from(settings)
    with _session() as session:
        count = 0
        while batch := store.sequence(session):
            count += batch
        try:
            checkpoint = store.sign_checkpoint(session, key, origin=settings.audit_origin)
        except LogIdentityError as exc:
            raise click.ClickException(str(exc)) from None
        session.commit()
    click.echo(
        f"sequenced {count} leaves"
        + (f"; signed checkpoint at size {checkpoint.size}" if checkpoint else "")
    )


@click.command("export")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="A directory that does not exist yet.",
)
def audit_export(out_dir: Path) -> None:
    """Write an evidence bundle (leaves, checkpoints, public key) for offline verification."""
    from erasure.audit import store
    from erasure.errors import NotReady

    key = _signing_key_from(_settings())
    with _session() as session:
        try:
            summary = store.export(session, out_dir, verifier_key=key.verifier())
        except NotReady as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(
        f"wrote {out_dir}: {summary.leaf_count} leaves, {len(summary.checkpoint_sizes)} checkpoints"
    )


@click.command("certificate")
@click.argument("request_id", type=click.UUID)
@click.option(
    "--out", "out_file", type=click.Path(path_type=Path, dir_okay=False), help="Default: stdout."
)
def audit_certificate(request_id: uuid.UUID, out_file: Path | None) -> None:
    """Write the signed certificate of erasure of a completed request."""
    from erasure.audit.certificate import dump_certificate
    from erasure.audit.certify import certificate_for
    from erasure.errors import ErasureError

    key = _signing_key_from(_settings())
    with _session() as session:
        try:
            document = certificate_for(session, request_id, signing_key=key)
        except ErasureError as exc:
            raise click.ClickException(str(exc)) from None
    data = dump_certificate(document)
    if out_file is None:
        click.echo(data.decode(), nl=False)
    else:
        out_file.write_bytes(data)
        click.echo(f"wrote {out_file}", err=True)


@click.command("reencrypt")
def keys_reencrypt() -> None:
    """Re-seal identifiers, notes, cancel reasons and client secrets under the first
    ERASURE_ENCRYPTION_KEYS key; also seals the cancel reasons earlier versions kept in plain text
    in a request's outcome (run once after upgrading)."""
    from erasure.identifiers import Vault
    from erasure.key_rotation import reencrypt_batch

    vault = Vault(_settings().encryption_key_bytes)
    total = 0
    with _session() as session:
        while (count := reencrypt_batch(session, vault)).total:
            session.commit()
            total += count.total
    click.echo(
        f"re-encrypted {total} values under key {vault.active_key_id!r}; older keys can now be removed"
    )


def _register_capabilities() -> None:
    from erasure.audit.commands import audit_group, keys_group
    from erasure.salesforce.commands import salesforce_group, sandbox_command

    for command in (sandbox_command, salesforce_group, keys_group, audit_group):
        main.add_command(command)
    for audit_command in (audit_sequence, audit_export, audit_certificate):
        audit_group.add_command(audit_command)
    keys_group.add_command(keys_reencrypt)


_register_capabilities()

if __name__ == "__main__":
    main()
