"""The audit and key commands that need the database or the settings: `erasure audit sequence`,
`export` and `certificate` (added to the offline `audit` group), `erasure encryption-keys
reencrypt`; and the key groups' names (`signing-keys` for the Ed25519 key of the audit log,
`encryption-keys` for the keys that seal identifiers), with `keys` kept as a hidden alias."""

from __future__ import annotations

import uuid
from pathlib import Path

import click

from erasure.audit.commands import generate_key, public_key, signing_keys_group
from erasure.cli.target import Target, pass_target


@click.command("sequence")
@pass_target
def audit_sequence(target: Target) -> None:
    """Sequence queued audit leaves and sign a checkpoint now (the worker does it periodically)."""
    from erasure.audit import store
    from erasure.audit.origin import LogIdentityError

    settings = target.settings()
    key = target.signing_key(settings)
    with target.session(settings) as session:
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
@pass_target
def audit_export(target: Target, out_dir: Path) -> None:
    """Write an evidence bundle (leaves, checkpoints, public key) for offline verification."""
    from erasure.audit import store
    from erasure.errors import NotReady

    settings = target.settings()
    key = target.signing_key(settings)
    with target.session(settings) as session:
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
@pass_target
def audit_certificate(target: Target, request_id: uuid.UUID, out_file: Path | None) -> None:
    """Write the signed certificate of erasure of a completed request."""
    from erasure.audit.certificate import dump_certificate
    from erasure.audit.certify import certificate_for
    from erasure.errors import ErasureError

    settings = target.settings()
    key = target.signing_key(settings)
    with target.session(settings) as session:
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


DATABASE_AUDIT_COMMANDS = (audit_sequence, audit_export, audit_certificate)


@click.command("reencrypt")
@pass_target
def reencrypt(target: Target) -> None:
    """Re-seal everything encrypted under the first key of ERASURE_ENCRYPTION_KEYS.

    Identifiers, notes, cancel reasons, legal holds' and override reasons, client secrets,
    notices, and access requests' identifiers, notes, entries and exports; also seals the
    cancel reasons earlier versions kept in plain text in a request's outcome (run it once after
    upgrading)."""
    from erasure.identifiers import Vault
    from erasure.key_rotation import reencrypt_batch

    settings = target.settings()
    vault = Vault(settings.encryption_key_bytes)
    total = 0
    with target.session(settings) as session:
        while (count := reencrypt_batch(session, vault)).total:
            session.commit()
            total += count.total
    click.echo(
        f"re-encrypted {total} values under key {vault.active_key_id!r}; older keys can now be removed"
    )


@click.group("encryption-keys")
def encryption_keys() -> None:
    """The AES keys that seal identifiers, notes and client secrets (ERASURE_ENCRYPTION_KEYS)."""


encryption_keys.add_command(reencrypt)
signing_keys = signing_keys_group

#: The old `erasure keys` group, which mixed both kinds of key: it still works, out of --help.
keys_alias = click.Group(
    "keys",
    commands={"generate": generate_key, "public": public_key, "reencrypt": reencrypt},
    help="Old name: see `signing-keys` and `encryption-keys`.",
    hidden=True,
)
