"""Sale.customer_owner follows the customer's owner whoever writes: the database triggers of
sales migration 0012, on PostgreSQL (the suite) and on SQLite (the embedded default)."""

import os
import subprocess
import sys
from pathlib import Path

from crm.permissions import visible_sales
from customers.models import Customer
from sales.models import Sale
from tests.factories import CustomerFactory, RepFactory, SaleFactory

ROOT = Path(__file__).resolve().parents[2]


def _owner_on_deal(sale) -> int | None:
    return Sale.objects.values_list("customer_owner_id", flat=True).get(pk=sale.pk)


def test_a_new_deal_takes_its_customers_owner(rep, teammate):
    sale = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=teammate)
    assert _owner_on_deal(sale) == rep.pk


def test_a_customer_given_another_owner_moves_its_deals_along(rep, teammate):
    customer = CustomerFactory(owner=rep)
    deals = SaleFactory.create_batch(2, customer=customer, assigned_to=rep)
    customer.owner = teammate
    customer.save()
    assert [_owner_on_deal(deal) for deal in deals] == [teammate.pk, teammate.pk]
    Customer.objects.filter(pk=customer.pk).update(owner=None)  # a bulk write, no save()
    assert [_owner_on_deal(deal) for deal in deals] == [None, None]


def test_a_deal_moved_to_another_customer_or_saved_stale_is_right(rep, teammate):
    sale = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep)
    stale = Sale.objects.get(pk=sale.pk)
    Customer.objects.filter(pk=sale.customer_id).update(owner=teammate)
    stale.title = "Saved from an instance loaded before the owner changed"
    stale.save()
    assert _owner_on_deal(sale) == teammate.pk
    sale.customer = CustomerFactory(owner=rep)
    sale.save()
    assert _owner_on_deal(sale) == rep.pk


def test_visibility_follows_the_customer_to_its_new_owner(rep, teammate, teams):
    stranger = RepFactory()
    sale = SaleFactory(customer=CustomerFactory(owner=stranger), assigned_to=stranger)
    assert not visible_sales(rep).filter(pk=sale.pk).exists()
    Customer.objects.filter(pk=sale.customer_id).update(owner=rep)
    assert visible_sales(rep).filter(pk=sale.pk).exists()
    Customer.objects.filter(pk=sale.customer_id).update(owner=stranger)
    assert not visible_sales(rep).filter(pk=sale.pk).exists()


SQLITE_CHECK = """
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from customers.models import Customer
from sales.models import Sale
User = get_user_model()
first, second = User.objects.create(username="a"), User.objects.create(username="b")
customer = Customer.objects.create(name="C", email="c@example.com", owner=first)
sale = Sale.objects.create(title="D", customer=customer, currency="USD", status="NEW")
owner = lambda: Sale.objects.values_list("customer_owner_id", flat=True).get(pk=sale.pk)
assert owner() == first.pk, owner()
Customer.objects.filter(pk=customer.pk).update(owner=second)
assert owner() == second.pk, owner()
other = Customer.objects.create(name="E", email="e@example.com", owner=first)
sale.customer = other
sale.save()
assert owner() == first.pk, owner()
print("ok")
"""


def test_the_embedded_sqlite_database_keeps_it_too(tmp_path):
    database = f"sqlite:///{tmp_path / 'embedded.sqlite3'}"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings", "DEBUG": "true",
           "DATABASE_URL": database, "REDIS_URL": ""}  # fmt: skip
    env.pop("STATEMENT_TIMEOUT_SECONDS", None)
    result = subprocess.run([sys.executable, "-c", SQLITE_CHECK], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=180)  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
