"""The embedded mode (`make run` without DATABASE_URL): the same search on SQLite, in a
process of its own (this suite runs on PostgreSQL)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = r"""
from django.contrib.auth.models import Group
from customers.services import customer_create, customer_note_add
from search import selectors
from search.query import parse
from tests.factories import RepFactory

rep, other = RepFactory(username="r1"), RepFactory(username="r2")
mine = customer_create(actor=rep, data={"name": "Anna Müller", "email": "anna@mueller-bau.de",
                                        "phone": "+49 30 123-4567", "company": "Bau GmbH"})
customer_note_add(actor=rep, customer=mine, text="Said <b>hello</b> about the crane")
customer_create(actor=other, data={"name": "Anna Other", "email": "anna@other.example"})

def found(user, q):
    return [(h.kind, h.title) for h in selectors.search(user=user, parsed=parse(q)).hits]

assert found(rep, "mül") == [("lead", "Anna Müller")], found(rep, "mül")
assert found(rep, "muller") == [("lead", "Anna Müller")]
assert found(rep, "mueller-bau.de") == [("lead", "Anna Müller")]
assert found(rep, "030 123 4567") == [("lead", "Anna Müller")]
assert found(rep, "4567") == [("lead", "Anna Müller")]
assert found(rep, "6543") == []  # the reversed digits are left out of the substring search
assert found(rep, "crane") == [("lead", "Anna Müller")]
assert found(rep, "anna -crane") == []
assert found(rep, '"anna müller" or nobody') == [("lead", "Anna Müller")]
assert found(rep, "anna") == [("lead", "Anna Müller")]  # not the other rep's
assert selectors.search(user=rep, parsed=parse("anna")).counts == {"lead": 1}
for hostile in ["'", "&|!:*()", "x" * 10_000, "%", "_"]:
    found(rep, hostile)
print("EMBEDDED OK")
"""


def test_search_works_on_sqlite(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'embedded.sqlite3'}",
        "DEBUG": "true",
        "REDIS_URL": "",
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "CELERY_TASK_ALWAYS_EAGER": "true",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, cwd=ROOT, check=True, timeout=300)
    run = subprocess.run(
        [*manage, "shell", "-c", SCRIPT],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert "EMBEDDED OK" in run.stdout, run.stdout + run.stderr
