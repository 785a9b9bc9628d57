"""What a process carries before it does anything: the URLconf (which every web worker,
and a Celery worker the first time it reverses a URL, loads) and the Celery tasks (which a
worker imports at start) must not import pandas or scikit-learn (with scipy, ~150 MB a
process); the code that trains or recommends imports them when it runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ["pandas", "scipy", "sklearn", "shap"]
PROBE = f"""
import json, sys
import django
django.setup()
from django.urls import get_resolver
get_resolver().url_patterns
from crm.celery import app
app.loader.import_default_modules()
assert "ai.tasks" in sys.modules and "customers.tasks" in sys.modules
print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))
"""


def test_the_urlconf_and_the_tasks_load_without_pandas_or_scikit_learn():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings", "DEBUG": "true"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
