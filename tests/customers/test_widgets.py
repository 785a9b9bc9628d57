"""The customer search select renders whatever id a hostile form posts, without a 500."""

import pytest
from django import forms

from customers.models import Customer
from customers.widgets import CustomerSearchSelect
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


class DealForm(forms.Form):
    customer = forms.ModelChoiceField(queryset=Customer.objects.all(), widget=CustomerSearchSelect)


@pytest.mark.parametrize("value", ["²", "abc", "\u0000", "99999999999999999999999", "-1", "1.5"])
def test_a_garbage_customer_id_renders_the_empty_choice(value):
    form = DealForm(data={"customer": value})
    assert not form.is_valid()
    html = form["customer"].as_widget()
    assert "search for a customer" in html


def test_a_real_customer_id_renders_that_customer():
    customer = CustomerFactory(name="Ada Lovelace")
    form = DealForm(data={"customer": str(customer.pk)})
    assert "Ada Lovelace" in form["customer"].as_widget()
