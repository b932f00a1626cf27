"""Click commands of the audit log: `erasure signing-keys ...` and `erasure audit verify`.

These need no database and no network, so an auditor can run them on a bundle or certificate
alone. `erasure.cli` registers `signing_keys_group` and `audit_group`; the database-backed commands
(`audit export`, `audit certificate`) are added to `audit_group` elsewhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import BinaryIO

import click
from rich.console import Console
from rich.table import Table

from erasure.audit.certificate import looks_like_certificate, verify_certificate
from erasure.audit.checkpoint import SigningKey, VerifierKey
from erasure.audit.consistency import ProofNeededError, looks_like_checkpoint, verify_checkpoint
from erasure.audit.errors import NoteError
from erasure.audit.report import ExitCode, Report
from erasure.audit.verify import verify_bundle

PRIVATE_KEY_FILE = "private-key.txt"
PUBLIC_KEY_FILE = "public-key.txt"


@click.group("signing-keys")
def signing_keys_group() -> None:
    """Create and inspect the Ed25519 key that signs checkpoints and certificates."""


@signing_keys_group.command("generate")
@click.option(
    "--name",
    required=True,
    help="Key name, e.g. erasure.example.com/audit (no spaces, no '+'). It becomes the log's "
    "origin, on the first line of every checkpoint, for the life of the log.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write private-key.txt (mode 0600) and public-key.txt into.",
)
def generate_key(name: str, out_dir: Path) -> None:
    """Generate a signing key; print its public verifier key."""
    try:
        key = SigningKey.generate(name)
    except NoteError as exc:
        raise click.BadParameter(str(exc), param_hint="--name") from exc
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_path = out_dir / PRIVATE_KEY_FILE
    try:
        # O_EXCL: never overwrite a key that may already sign a live log. The mode is set at
        # creation, so the secret is never readable by others, not even briefly.
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise click.ClickException(f"{private_path} exists; refusing to overwrite a key") from exc
    with os.fdopen(fd, "w", encoding="ascii") as stream:
        stream.write(key.to_text() + "\n")
    (out_dir / PUBLIC_KEY_FILE).write_text(f"{key.verifier()}\n", encoding="utf-8")
    click.echo(f"private key: {private_path} (keep secret)", err=True)
    click.echo(f"public key:  {out_dir / PUBLIC_KEY_FILE}", err=True)
    click.echo(str(key.verifier()))


@signing_keys_group.command("public")
@click.argument(
    "keyfile", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def public_key(keyfile: Path | None) -> None:
    """Print the public verifier key of a private key file (default: a standalone's own)."""
    if keyfile is None:
        raise click.UsageError("give the private key file (KEYFILE)")
    try:
        key = SigningKey.parse(keyfile.read_text(encoding="utf-8"))
    except (NoteError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"not a signing key: {exc}", param_hint="KEYFILE") from exc
    click.echo(str(key.verifier()))


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log: verify (offline), export, certificates."""


def load_verifier_key(value: str) -> VerifierKey:
    """A verifier key given inline or as the path of a file holding it."""
    text = value
    candidate = Path(value)
    if "+" not in value or candidate.is_file():
        try:
            text = candidate.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(
                f"cannot read {value}: {exc}", param_hint="--public-key"
            ) from exc
    try:
        return VerifierKey.parse(text)
    except NoteError as exc:
        raise click.BadParameter(str(exc), param_hint="--public-key") from exc


@audit_group.command("verify")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--public-key",
    "public_key_value",
    required=True,
    help="The log's verifier key (name+keyid+base64), or a file containing it. "
    "Obtain it out of band: the copy inside a bundle proves nothing.",
)
@click.option(
    "--since",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An earlier signed checkpoint you kept: prove the log only grew since "
    "(a bundle, or a checkpoint file).",
)
@click.option(
    "--proof",
    type=click.File("rb"),
    help="Checkpoint files only: the consistency proof between --since and PATH, as served by "
    "GET /v1/audit/consistency?first=M&second=N ('-' reads it from standard input).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def verify_command(
    ctx: click.Context,
    *,
    path: Path,
    public_key_value: str,
    since: Path | None,
    proof: BinaryIO | None,
    as_json: bool,
) -> None:
    """Verify an evidence bundle (directory), a certificate of erasure or a checkpoint (file).

    Exit codes: 0 verified; 1 leaves tampered (first bad leaf named); 2 usage error;
    3 bad or missing checkpoint signature; 4 rolled back or forked (--since);
    5 malformed or incomplete input; 6 certificate signature or proof invalid.
    """
    key = load_verifier_key(public_key_value)
    if proof is not None and (path.is_dir() or since is None):
        raise click.UsageError("--proof goes with a checkpoint file and --since")
    if path.is_dir():
        report = verify_bundle(path, key, since=since.read_bytes() if since else None)
    else:
        report = _verify_file(path, key, since, proof)
        report.path = str(path)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, sort_keys=True))
    else:
        render(report, Console(highlight=False, soft_wrap=True))
    ctx.exit(int(report.exit_code))


def _verify_file(
    path: Path, key: VerifierKey, since: Path | None, proof: BinaryIO | None
) -> Report:
    data = path.read_bytes()
    if looks_like_certificate(data):
        if since is not None:
            raise click.UsageError("--since applies to bundles and checkpoints, not certificates")
        return verify_certificate(data, key)
    if not looks_like_checkpoint(data):
        raise click.BadParameter(
            "neither a bundle directory, a certificate nor a signed checkpoint", param_hint="PATH"
        )
    try:
        return verify_checkpoint(
            data,
            key,
            since=since.read_bytes() if since else None,
            proof=proof.read() if proof else None,
        )
    except ProofNeededError as exc:
        raise click.UsageError(f"{exc}; pass it with --proof") from None


def render(report: Report, console: Console) -> None:
    """A human-readable report."""
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("verified", f"{report.kind} {report.path}")
    if report.tree_size is not None and report.root_hash is not None:
        table.add_row("tree head", f"size {report.tree_size}, root {report.root_hash.hex()}")
    if report.kind == "bundle":
        table.add_row("leaves", str(report.leaf_count))
        table.add_row("checkpoints", f"{len(report.checkpoint_sizes)} with valid signatures")
        if report.since_size is not None:
            table.add_row("since", f"checkpoint at size {report.since_size}")
    elif report.kind == "checkpoint":
        if report.since_size is not None:
            table.add_row("since", f"extends the checkpoint at size {report.since_size}")
    else:
        proven = report.details.get("proven_leaves", [])
        count = len(proven) if isinstance(proven, list) else 0
        table.add_row("leaves", f"{count} of {report.leaf_count} proven included")
    console.print(table)
    for finding in report.findings:
        style = "yellow" if finding.warning else "red"
        label = "warning" if finding.warning else "error"
        console.print(f"[{style}]{label}[/{style}] {finding.code}: ", end="")
        console.print(finding.message, markup=False)
    if report.ok:
        console.print("[bold green]VERIFIED[/bold green]")
    else:
        where = ""
        if report.first_bad_leaf is not None:
            where = f": first bad leaf {report.first_bad_leaf}"
        elif report.first_bad_range is not None:
            low, high = report.first_bad_range
            where = f": first bad leaf in [{low}, {high})"
        code = ExitCode(report.exit_code)
        console.print(f"[bold red]FAILED[/bold red] ({code.name.lower()}, exit {int(code)}){where}")
