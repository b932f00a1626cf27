"""The layout is the architecture: every top-level module of erasure has a place in
import-linter's layers (a module left out would be free of the layering unnoticed), and
docs/architecture.md names every layer and only paths that exist."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "erasure"
ARCHITECTURE = ROOT / "docs" / "architecture.md"


def layered_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    return [name.strip() for layer in layers for name in re.split(r"[|:]", layer)]


def top_level_modules() -> set[str]:
    names = {f"erasure.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    names |= {f"erasure.{p.parent.name}" for p in PACKAGE.glob("*/__init__.py")}
    return names


def test_every_top_level_module_has_a_layer() -> None:
    layered = layered_modules()
    assert len(layered) == len(set(layered)), "a module is named in two layers"
    assert set(layered) == top_level_modules()


def test_no_contract_carries_exceptions() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for contract in config["tool"]["importlinter"]["contracts"]:
        assert "ignore_imports" not in contract, contract["name"]
        assert not contract.get("unmatched_ignore_imports_alerting"), contract["name"]


def test_the_architecture_doc_names_every_layer() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    named = set(re.findall(r"`(erasure(?:\.\w+)+)`", text))
    missing = [m for m in layered_modules() if m not in named]
    assert not missing, f"docs/architecture.md does not place {missing}"


def test_the_architecture_doc_points_at_paths_that_exist() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    paths = set(re.findall(r"`(erasure/[\w/.<>-]+)`", text))
    assert len(paths) > 20  # the "where does it go" table is there
    for path in paths:
        # A pattern such as erasure/tasks/<domain>.py: its folder exists.
        assert (ROOT / path.split("<")[0]).exists(), f"docs/architecture.md names {path}"


def test_the_readme_links_the_architecture_doc_and_names_real_paths() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## How it is built", 1)[1].split("\n## ", 1)[0]
    assert "(docs/architecture.md)" in section
    paths = set(re.findall(r"`(erasure/[\w/.<>-]+)`", section))
    assert len(paths) >= 5
    for path in paths:
        assert (ROOT / path.split("<")[0]).exists(), (
            f"the README names {path}, which does not exist"
        )


def test_each_domain_owns_its_tables() -> None:
    """erasure.tables gathers the models modules; each lives in the domain it names."""
    tree = ast.parse((PACKAGE / "tables.py").read_text(encoding="utf-8"))
    imported = {
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
        if alias.name == "models"
    }
    on_disk = {f"erasure.{p.parent.name}.models" for p in PACKAGE.glob("*/models.py")}
    # salesforce.models holds the client's dataclasses, not tables.
    assert imported == on_disk - {"erasure.salesforce.models"}


#: A module longer than this is doing more than one thing (the migrations are exempt: each is one
#: revision, however long).
MAX_LINES = 450


def test_no_module_is_over_the_limit() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for folder in (PACKAGE, ROOT / "bench", ROOT / "tests")
        for path in folder.rglob("*.py")
        if "migrations" not in path.parts
        and (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, long


def test_tests_share_helpers_through_tests_support_only() -> None:
    """A test module never imports another test module or a conftest: what tests share lives in
    tests/support, so moving or deleting a test cannot break another."""
    offenders = []
    for folder in (ROOT / "tests", ROOT / "bench"):
        for path in folder.rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.ImportFrom) or node.module is None:
                    continue
                last = node.module.rsplit(".", 1)[-1]
                if last == "conftest" or last.startswith("test_"):
                    offenders.append(f"{path.relative_to(ROOT)}: {node.module}")
    assert not offenders, offenders
