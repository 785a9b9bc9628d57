"""The production build step of the Dockerfile: collectstatic with DEBUG off, through
whitenoise's manifest storage, which fails on any asset that names a file the repo lacks
(e.g. a vendored script's source map). Without the manifest every page answers 500."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_collectstatic_in_production_mode_builds_the_manifest(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "SECRET_KEY": "build-only-not-secret",
        "DEBUG": "false",
        "STATIC_ROOT": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = (tmp_path / "staticfiles.json").read_text()
    assert "vendor/chart-4.6.1.umd.min.js" in manifest
    assert "vendor/htmx-2.0.11.min.js" in manifest
