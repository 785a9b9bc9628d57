import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from customers.models import Customer, Tag
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_email_is_unique_case_insensitively_in_the_database():
    CustomerFactory(email="ann@example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        Customer.objects.bulk_create([Customer(name="Ann again", email="ANN@Example.com")])


def test_email_is_stored_lower_case():
    customer = CustomerFactory(email="  Mixed.Case@Example.COM ")
    customer.refresh_from_db()
    assert customer.email == "mixed.case@example.com"


def test_full_clean_reports_duplicate_email_clearly():
    CustomerFactory(email="dup@example.com")
    with pytest.raises(ValidationError) as error:
        Customer(name="X", email="DUP@example.com").full_clean()
    assert "A customer with this email already exists." in str(error.value)


def test_negative_annual_revenue_is_refused_by_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        CustomerFactory(annual_revenue=-1)


def test_tag_names_are_unique_case_insensitively():
    Tag.objects.create(name="VIP")
    with pytest.raises(IntegrityError), transaction.atomic():
        Tag.objects.create(name="vip")


def test_every_list_filter_has_an_index():
    indexed_first_columns = {index.fields[0] for index in Customer._meta.indexes}
    for field in ("owner", "lifecycle_stage", "engagement_level", "region", "industry", "name"):
        assert field in indexed_first_columns
