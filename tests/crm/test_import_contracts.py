"""The layer contracts of .importlinter (DESIGN.md section 2) hold, and they fail when a
module imports an app above it: checked on a copy of the source tree, so the real one is
never touched."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def _root_packages() -> list[str]:
    lines = (ROOT / ".importlinter").read_text().split("[importlinter:contract")[0]
    return [line.strip() for line in lines.splitlines()[2:] if line.strip()]


@pytest.fixture
def source_copy(tmp_path):
    for package in _root_packages():
        skipped = shutil.ignore_patterns("__pycache__", "templates", "static")
        shutil.copytree(ROOT / package, tmp_path / package, ignore=skipped)
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def _lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_contracts_are_kept(source_copy):
    result = _lint(source_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        ("customers/probe_upward.py", "from analytics import selectors"),
        ("crm/probe_upward.py", "import customers.models"),
        ("sales/probe_upward.py", "from leads import models"),
        ("leads/probe_upward.py", "from sales import models"),
        ("documents/probe_upward.py", "from campaigns import models"),
    ],
)
def test_an_upward_or_sideways_import_breaks_the_build(source_copy, module, imported):
    (source_copy / module).write_text(f"{imported}  # the probe\n")
    result = _lint(source_copy)
    assert result.returncode != 0
    assert "probe_upward" in result.stdout
