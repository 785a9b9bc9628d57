"""Checks of a person's input that deal and task writes share."""

from crm.errors import ValidationFailed
from crm.permissions import assignable_users, visible_customers


def check_assignee(actor, user, *, field: str = "assigned_to") -> None:
    if user is not None and not assignable_users(actor).filter(pk=user.pk).exists():
        raise ValidationFailed("You cannot assign work to this user.", field=field)


def check_customer(actor, customer) -> None:
    if not visible_customers(actor).filter(pk=customer.pk).exists():
        raise ValidationFailed("Choose one of your customers.", field="customer")
