"""The import contract (pyproject.toml's [tool.importlinter]) holds, and is no formality: an
import against a rule of the layers breaks it. `make lint` and CI run the same command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("server", "events", "streaming", "frontend")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(folder: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    options = [f"--contract={contract}" for contract in contracts]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", *options], cwd=folder,
        capture_output=True, text=True, timeout=120,
        # Wide enough that no module name is wrapped in the report.
        env={**os.environ, "COLUMNS": "200"})


def test_the_packages_keep_the_import_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The packages' Python files and the contract, in a folder of their own to break."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for package in PACKAGES:
        for source in (ROOT / package).rglob("*.py"):
            target = tmp_path / source.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    return tmp_path


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("events/seats.py", "import streaming", "events-without-streaming"),
    ("events/seats.py", "from server.deps import SessionDep", "layers"),
    ("server/config.py", "import server.app", "layers"),
    ("events/api.py", "import frontend", "layers"),
    ("events/sessions.py", "from events import api_feeds", "routers-mounted-by-the-root"),
    ("frontend/portal.py", "from events.api import router", "routers-mounted-by-the-root"),
    ("events/units.py", "from fastapi import Request", "domain-without-web"),
    ("server/broker.py", "from server.config import Settings", "server-modules-placed"),
])
def test_an_import_against_a_rule_breaks_the_contract(
        tree: Path, module: str, line: str, contract: str) -> None:
    assert lint_imports(tree, contract).returncode == 0
    with (tree / module).open("a") as source:
        source.write(f"\n{line}\n")
    result = lint_imports(tree, contract)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout
    assert module.removesuffix(".py").replace("/", ".") in result.stdout
