"""crm.permissions.documents: who may see a document and who may change it."""

import pytest
from django.http import Http404

from crm.errors import PermissionDenied
from crm.permissions.documents import (
    access_document_by_id,
    editable_documents,
    visible_documents,
    visible_library_documents,
)
from documents import services
from tests.documents import samples

pytestmark = pytest.mark.django_db


def test_visibility_rule(
    rep, teammate, other_rep, manager, other_manager, admin_user, customer, make_document
):
    private = make_document(rep)
    on_customer = make_document(teammate, customer=None)
    on_customer.customer = customer
    on_customer.save(update_fields=["customer"])

    def visible(user):
        return set(visible_documents(user).values_list("pk", flat=True))

    assert visible(rep) == {private.pk, on_customer.pk}  # own, and on the rep's customer
    assert visible(manager) == {private.pk, on_customer.pk}
    assert visible(admin_user) == {private.pk, on_customer.pk}
    assert visible(other_rep) == set()
    assert visible(other_manager) == set()
    customer.shared_with.add(other_rep)
    other_rep._crm_shared_customer_ids = None  # per-request cache
    assert visible(other_rep) == {on_customer.pk}


def test_a_new_version_by_the_manager_stays_the_uploaders(rep, manager, other_rep, make_document):
    first = make_document(rep)
    second = services.document_upload_version(
        actor=manager, document=first, upload=samples.upload("v2.txt", b"v2\n")
    )
    assert set(editable_documents(rep).values_list("pk", flat=True)) == {first.pk, second.pk}
    assert set(editable_documents(manager).values_list("pk", flat=True)) == {first.pk, second.pk}
    assert not editable_documents(other_rep).exists()


def test_public_and_shared_documents_are_visible_but_not_editable(
    rep, other_rep, admin_user, make_document
):
    public = make_document(rep, is_public=True)
    shared = make_document(rep)
    shared.allowed_users.add(other_rep)
    assert set(visible_documents(other_rep).values_list("pk", flat=True)) == {public.pk, shared.pk}
    assert not editable_documents(other_rep).exists()
    assert editable_documents(admin_user).count() == 2


def test_access_document_by_id(rep, other_rep, make_document):
    private = make_document(rep)
    public = make_document(rep, is_public=True)
    assert access_document_by_id(rep, private.pk, for_change=True) == private
    assert access_document_by_id(other_rep, public.pk) == public
    with pytest.raises(PermissionDenied):  # seeing is not changing
        access_document_by_id(other_rep, public.pk, for_change=True)
    for document_id in (private.pk, 987654):  # out of sight or gone: the same 404
        with pytest.raises(Http404):
            access_document_by_id(other_rep, document_id)
        with pytest.raises(Http404):
            access_document_by_id(other_rep, document_id, for_change=True)


def test_library_visibility_is_the_rule_on_documents_attached_to_nothing(
    rep, teammate, other_rep, manager, other_manager, admin_user, customer, make_document
):
    own, public = make_document(rep), make_document(teammate, is_public=True)
    shared = make_document(other_rep)
    shared.allowed_users.add(rep)
    teammates = make_document(teammate)
    on_customer = make_document(rep)
    on_customer.customer = customer
    on_customer.save(update_fields=["customer"])
    library = {own.pk, public.pk, shared.pk, teammates.pk}
    for user in (rep, teammate, other_rep, manager, other_manager, admin_user):
        expected = set(visible_documents(user).values_list("pk", flat=True)) & library
        assert set(visible_library_documents(user).values_list("pk", flat=True)) == expected
    assert set(visible_library_documents(rep).values_list("pk", flat=True)) == {
        own.pk, public.pk, shared.pk
    }  # fmt: skip
