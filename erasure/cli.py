"""The `erasure` command line: a plain click group, composed from each capability's commands."""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="erasure")
def main() -> None:
    """erasure: GDPR/CCPA erasure for Salesforce Enhanced Messaging, with proof."""
