"""documents.services against the real database: uploads (and refusals that store nothing),
versions, restore, sharing, categories, share links and the pipeline hook."""

import hashlib
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core import signing
from django.core.files.base import ContentFile

from crm.errors import PermissionDenied, ValidationFailed
from crm.models import AuditEvent
from crm.permissions.documents import editable_documents, visible_documents
from documents import selectors, services, tokens
from documents.models import Document, DocumentAccess, DocumentCategory, DocumentFile
from leads.models import LeadActivity
from sales.models import Sale
from tests.documents import samples
from tests.documents.conftest import stored_files
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.django_db


# Upload -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(samples.ALLOWED))
def test_every_allowed_type_is_stored_under_a_generated_name(rep, media_root, name):
    build, mime_type = samples.ALLOWED[name]
    content = build()

    document = services.document_upload(
        actor=rep, upload=samples.upload(name, content), ip="198.51.100.7"
    )

    document.refresh_from_db()
    assert document.mime_type == mime_type
    assert document.original_name == name
    assert document.title == name.rsplit(".", 1)[0]
    assert document.file_size == len(content)
    assert document.sha256 == hashlib.sha256(content).hexdigest()
    assert (document.version, document.is_active, document.parent_document) == (1, True, None)
    assert document.uploaded_by == rep
    stored = Path(document.file.path)
    assert stored.is_relative_to(media_root / "documents")
    assert stored.read_bytes() == content
    assert name.rsplit(".", 1)[0] not in stored.name  # nothing of the user's name on disk
    assert stored.suffix == "." + DocumentFile.EXTENSIONS[mime_type]
    access = DocumentAccess.objects.get(document=document)
    assert (access.action, access.user, access.ip_address) == ("edit", rep, "198.51.100.7")
    assert AuditEvent.objects.filter(verb="create", object_id=str(document.pk)).exists()


def test_pdf_page_count_is_known_at_upload(rep):
    document = services.document_upload(
        actor=rep, upload=samples.upload("p.pdf", samples.pdf_with_text("a", "b"))
    )
    assert document.page_count == 2


def test_upload_takes_title_type_category_and_links(rep, customer, sale):
    category = services.category_save(actor=rep, name="Contracts", parent=None)
    document = services.document_upload(
        actor=rep,
        upload=samples.upload("c.docx", samples.docx("x")),
        title="Master agreement",
        description="Signed copy",
        document_type=Document.Type.CONTRACT,
        category=category,
        sale=sale,
        is_public=True,
    )
    assert (document.title, document.document_type, document.category) == (
        "Master agreement",
        "contract",
        category,
    )
    assert document.sale == sale
    assert document.customer == customer  # taken from the deal
    assert document.is_public


REFUSED = {
    "binary named .pdf": ("x.pdf", samples.BINARY, "not allowed"),
    "renamed windows program": ("invoice.pdf", samples.EXECUTABLE, "program"),
    "corrupt pdf": ("report.pdf", samples.CORRUPT_PDF, "damaged"),
    "docx zip bomb": ("bomb.docx", None, "zip bomb"),
    "zip declaring 4 GB": ("big.docx", samples.zip_declaring_huge_size(), "zip bomb"),
    "empty": ("empty.txt", b"", "empty"),
    "svg with a script": ("logo.svg", samples.SVG_WITH_SCRIPT, "markup"),
    "html page as .txt": ("page.txt", samples.HTML_PAGE, "markup"),
    "html page as .html": ("page.html", samples.HTML_PAGE, "markup"),
    "xml with a script": ("order.xml", samples.XML_WITH_SCRIPT, "markup"),
    "pdf with a zip appended": ("invoice.pdf", samples.pdf_with_appended_zip(), "appended"),
    "pdf that is a zip too": ("i.pdf", samples.pdf_with_appended_zip_and_a_new_end(), "zip"),
    "pdf with shifted xref": ("p.pdf", samples.pdf_with_shifted_xref(), "cross-reference"),
    "pdf with wrong startxref": ("p.pdf", samples.pdf_with_wrong_startxref(), "cross-reference"),
    "macro-enabled workbook": ("prices.xlsm", samples.xlsm(), "contains macros"),
    "macro-enabled presentation": ("deck.pptm", samples.pptm(), "contains macros"),
    "macro workbook renamed": ("prices.xlsx", samples.xlsx_hiding_a_vba_project(), "macros"),
}


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return samples.zip_bomb(megabytes=300)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_files_store_nothing(rep, media_root, bomb, case):
    name, content, reason = REFUSED[case]
    with pytest.raises(ValidationFailed) as caught:
        services.document_upload(
            actor=rep, upload=samples.upload(name, bomb if content is None else content)
        )
    assert reason in caught.value.message
    assert caught.value.field == "file"
    assert not Document.objects.exists()
    assert not DocumentAccess.objects.exists()
    assert stored_files(media_root) == []


def test_a_utf16_text_is_stored_as_utf8(rep, make_document):
    text = "Besprechung mit Müller GmbH\nNächster Termin: Montag\n"
    document = make_document(rep, "notes.txt", samples.utf16(text))
    stored = Path(document.file.path).read_bytes()
    assert stored == b"\xef\xbb\xbf" + text.encode()  # UTF-8, its mark kept for Notepad and Excel
    assert document.mime_type == "text/plain"
    assert (document.file_size, document.sha256) == (
        len(stored),
        hashlib.sha256(stored).hexdigest(),
    )
    assert document.processing_status == Document.Processing.DONE
    assert document.extracted_text == text


def test_a_utf16_text_without_a_byte_order_mark_is_stored_as_utf8(rep, make_document):
    text = "Notizen ohne Byte-Order-Mark: Grüße\n"
    document = make_document(rep, "notes.txt", samples.utf16_without_bom(text))
    assert Path(document.file.path).read_bytes() == b"\xef\xbb\xbf" + text.encode()
    assert document.mime_type == "text/plain"
    assert document.extracted_text == text


def test_a_utf8_csv_with_a_byte_order_mark_is_stored_as_it_is(rep, make_document):
    content = b"\xef\xbb\xbf" + samples.CSV
    document = make_document(rep, "export.csv", content)
    assert Path(document.file.path).read_bytes() == content
    assert document.mime_type == "text/csv"
    assert document.extracted_text == samples.CSV.decode()  # without the mark


def test_a_new_version_in_utf16_is_stored_as_utf8(rep, make_document):
    first = make_document(rep, "notes.txt", samples.TXT)
    second = services.document_upload_version(
        actor=rep, document=first, upload=samples.upload("notes.txt", samples.utf16("zwei\n"))
    )
    assert Path(second.file.path).read_bytes() == b"\xef\xbb\xbfzwei\n"
    assert second.file_size == 8


def test_oversized_files_are_refused_before_being_read(rep, media_root, settings):
    settings.DOCUMENT_MAX_BYTES = 1024
    with pytest.raises(ValidationFailed) as caught:
        services.document_upload(actor=rep, upload=samples.upload("big.txt", b"a" * 1025))
    assert "the limit is" in caught.value.message
    assert not Document.objects.exists()
    assert stored_files(media_root) == []
    # At the limit is fine.
    services.document_upload(actor=rep, upload=samples.upload("ok.txt", b"a" * 1024))


@pytest.mark.parametrize(
    "name,shown",
    [
        ("../../x.pdf", "x.pdf"),
        ("..\\..\\windows\\x.pdf", "x.pdf"),
        ("/etc/passwd", "passwd"),
        ("....", "document"),
        (".htaccess", "htaccess"),
    ],
)
def test_path_names_are_reduced_and_never_reach_the_file_system(
    rep, media_root, tmp_path, name, shown
):
    """A raw file object (not Django's UploadedFile, which already strips directories) with a
    traversal name: stored under a generated name inside MEDIA_ROOT."""
    upload = ContentFile(samples.pdf_with_text("Hello"), name=name)
    document = services.document_upload(actor=rep, upload=upload)
    assert document.original_name == shown
    assert document.file.name.startswith("documents/")
    assert ".." not in document.file.name
    assert Path(document.file.path).resolve().is_relative_to(media_root.resolve())
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and media_root not in p.parents]
    assert outside == []


def test_a_customer_out_of_reach_is_refused(rep, other_rep, media_root, teams):
    theirs = CustomerFactory(owner=other_rep)
    with pytest.raises(ValidationFailed) as caught:
        services.document_upload(
            actor=rep, upload=samples.upload("n.txt", samples.TXT), customer=theirs
        )
    assert caught.value.field == "customer"
    with pytest.raises(ValidationFailed):
        services.document_upload(
            actor=rep,
            upload=samples.upload("n.txt", samples.TXT),
            sale=SaleFactory(customer=theirs),
        )
    assert not Document.objects.exists()
    assert stored_files(media_root) == []


def test_a_deal_of_another_customer_is_refused(rep, customer, media_root):
    elsewhere = SaleFactory(customer=CustomerFactory(owner=rep), assigned_to=rep)
    with pytest.raises(ValidationFailed) as caught:
        services.document_upload(
            actor=rep,
            upload=samples.upload("n.txt", samples.TXT),
            customer=customer,
            sale=elsewhere,
        )
    assert caught.value.field == "sale"
    assert stored_files(media_root) == []


def test_processing_is_queued_only_after_commit(rep, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        document = services.document_upload(actor=rep, upload=samples.upload("n.txt", samples.TXT))
    assert len(callbacks) == 1
    document.refresh_from_db()
    assert document.processing_status == Document.Processing.PENDING


# Versions ---------------------------------------------------------------------------------


def _new_version(actor, document, content=b"version text\n", name="notes-v2.txt"):
    return services.document_upload_version(
        actor=actor, document=document, upload=samples.upload(name, content)
    )


def test_a_new_version_extends_the_chain(rep, make_document):
    first = make_document(rep)
    second = _new_version(rep, first)
    third = _new_version(rep, second, name="notes-v3.txt")  # from any version of the chain

    assert (second.version, second.parent_document) == (2, first)
    assert (third.version, third.parent_document) == (3, first)
    assert list(Document.objects.filter(is_active=True).values_list("pk", flat=True)) == [third.pk]
    assert third.original_name == "notes-v3.txt"
    assert third.title == first.title
    assert list(selectors.document_versions(document=first)) == [third, second, first]
    assert list(selectors.document_list(user=rep, filters={})) == [third]


def test_a_new_version_keeps_type_links_and_sharing(rep, teammate, sale, make_document):
    first = make_document(rep, document_type=Document.Type.PROPOSAL, sale=sale, is_public=True)
    services.document_share(actor=rep, document=first, user_ids=[teammate.pk], is_public=True)
    second = _new_version(rep, first)
    assert (second.document_type, second.sale, second.customer) == (
        "proposal",
        sale,
        sale.customer,
    )
    assert second.is_public
    assert list(second.allowed_users.all()) == [teammate]


def test_a_new_version_is_checked_like_an_upload(rep, media_root, make_document):
    first = make_document(rep)
    before = stored_files(media_root)
    with pytest.raises(ValidationFailed):
        _new_version(rep, first, content=samples.EXECUTABLE, name="v2.pdf")
    assert Document.objects.count() == 1
    assert stored_files(media_root) == before


def test_only_editors_may_add_a_version(
    rep, teammate, other_rep, manager, media_root, make_document
):
    first = make_document(rep, is_public=True)
    before = stored_files(media_root)
    for outsider in (teammate, other_rep):
        with pytest.raises(PermissionDenied):
            _new_version(outsider, first)
    assert stored_files(media_root) == before
    assert Document.objects.count() == 1
    assert _new_version(manager, first).version == 2  # the uploader's manager may


def test_the_owner_keeps_their_document_after_the_manager_adds_a_version(
    rep, manager, make_document
):
    """Ownership is the chain's: after the manager uploads v2, the rep still sees the
    document in their list and can add v3 (it used to vanish from the rep's list)."""
    first = make_document(rep)
    second = _new_version(manager, first)
    assert list(selectors.document_list(user=rep, filters={})) == [second]
    assert editable_documents(rep).filter(pk=second.pk).exists()
    assert _new_version(rep, second, name="v3.txt").version == 3


def test_restore_makes_an_old_version_the_newest(rep, make_document):
    first = make_document(rep, content=b"first text\n")
    second = _new_version(rep, first)

    restored = services.document_restore(actor=rep, version=first, ip="192.0.2.1")

    assert (restored.version, restored.parent_document, restored.is_active) == (3, first, True)
    assert restored.file.name == first.file.name
    assert restored.sha256 == first.sha256
    assert restored.original_name == first.original_name
    assert restored.extracted_text == "first text\n"
    second.refresh_from_db()
    first.refresh_from_db()
    assert not second.is_active and not first.is_active
    assert restored.file.read() == b"first text\n"
    access = DocumentAccess.objects.get(document=restored)
    assert (access.action, access.ip_address, access.detail) == (
        "edit",
        "192.0.2.1",
        "restored version 1",
    )


def test_restoring_the_newest_version_is_refused(rep, make_document):
    first = make_document(rep)
    with pytest.raises(ValidationFailed):
        services.document_restore(actor=rep, version=first)
    assert Document.objects.count() == 1


def test_only_editors_may_restore(rep, other_rep, make_document):
    first = make_document(rep, is_public=True)
    _new_version(rep, first)
    with pytest.raises(PermissionDenied):
        services.document_restore(actor=other_rep, version=first)
    assert Document.objects.count() == 2


def test_restoring_an_unprocessed_version_processes_the_copy(
    rep, make_document, django_capture_on_commit_callbacks
):
    first = make_document(rep, process=False)
    _new_version(rep, first)
    with django_capture_on_commit_callbacks(execute=True):
        restored = services.document_restore(actor=rep, version=first)
    restored.refresh_from_db()
    assert restored.processing_status == Document.Processing.DONE
    assert "discount" in restored.extracted_text


# Sharing and visibility --------------------------------------------------------------------


def test_sharing_applies_to_every_version(rep, teammate, other_rep, make_document):
    first = make_document(rep)
    second = _new_version(rep, first)
    services.document_share(
        actor=rep, document=second, user_ids=[teammate.pk, other_rep.pk], is_public=False
    )
    for version in (first, second):
        assert set(version.allowed_users.all()) == {teammate, other_rep}
        assert visible_documents(other_rep).filter(pk=version.pk).exists()
    services.document_share(actor=rep, document=first, user_ids=[], is_public=True)
    assert not Document.allowed_users.through.objects.exists()
    assert set(Document.objects.values_list("is_public", flat=True)) == {True}
    assert DocumentAccess.objects.filter(detail="sharing changed").count() == 2


def test_only_editors_may_share(rep, other_rep, make_document):
    document = make_document(rep, is_public=True)
    with pytest.raises(PermissionDenied):
        services.document_share(actor=other_rep, document=document, user_ids=[], is_public=False)
    document.refresh_from_db()
    assert document.is_public


def test_sharing_with_unknown_users_is_refused(rep, make_document):
    document = make_document(rep)
    with pytest.raises(ValidationFailed):
        services.document_share(actor=rep, document=document, user_ids=[999999], is_public=False)


# Categories ---------------------------------------------------------------------------------


def test_categories_form_a_tree(rep):
    legal = services.category_save(actor=rep, name=" Legal ", parent=None)
    ndas = services.category_save(actor=rep, name="NDAs", parent=legal)
    assert legal.name == "Legal"
    assert ndas.parent == legal
    assert AuditEvent.objects.filter(verb="create", object_id=str(ndas.pk)).exists()


def test_a_category_cycle_is_refused(rep):
    a = services.category_save(actor=rep, name="A", parent=None)
    b = services.category_save(actor=rep, name="B", parent=a)
    with pytest.raises(ValidationFailed) as caught:
        services.category_save(actor=rep, name="A", parent=b, category=a)  # A under B under A
    assert caught.value.field == "parent"
    with pytest.raises(ValidationFailed):
        services.category_save(actor=rep, name="A", parent=a, category=a)  # A under itself
    a.refresh_from_db()
    assert a.parent is None


def test_a_deep_cycle_is_refused_even_through_stale_instances(rep):
    a = services.category_save(actor=rep, name="A", parent=None)
    b = services.category_save(actor=rep, name="B", parent=a)
    c = services.category_save(actor=rep, name="C", parent=None)
    stale_c = DocumentCategory.objects.get(pk=c.pk)  # still a root in memory
    services.category_save(actor=rep, name="C", parent=b, category=c)  # A > B > C
    with pytest.raises(ValidationFailed):
        services.category_save(actor=rep, name="A", parent=stale_c, category=a)
    a.refresh_from_db()
    assert a.parent is None


def test_moving_a_category_elsewhere_is_fine(rep):
    a = services.category_save(actor=rep, name="A", parent=None)
    b = services.category_save(actor=rep, name="B", parent=None)
    services.category_save(actor=rep, name="B", parent=a, category=b)
    b.refresh_from_db()
    assert b.parent == a


def test_duplicate_and_blank_category_names_are_refused(rep):
    a = services.category_save(actor=rep, name="A", parent=None)
    services.category_save(actor=rep, name="Child", parent=a)
    with pytest.raises(ValidationFailed):
        services.category_save(actor=rep, name="child", parent=a)
    with pytest.raises(ValidationFailed):
        services.category_save(actor=rep, name="a", parent=None)
    with pytest.raises(ValidationFailed):
        services.category_save(actor=rep, name="   ", parent=None)
    services.category_save(actor=rep, name="Child", parent=None)  # another parent: fine
    assert DocumentCategory.objects.count() == 3


# Share links ----------------------------------------------------------------------------------


def test_share_tokens_round_trip_and_refuse_tampering(settings):
    token = tokens.share_token(42)
    assert tokens.share_token_read(token) == 42
    assert tokens.share_url(42).startswith(settings.SITE_URL + "/d/")
    with pytest.raises(signing.BadSignature):
        tokens.share_token_read(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    forged = signing.TimestampSigner(salt="another.salt").sign_object({"d": 42})
    with pytest.raises(signing.BadSignature):
        tokens.share_token_read(forged)


def test_share_tokens_expire(settings, monkeypatch):
    settings.DOCUMENT_SHARE_MAX_AGE_SECONDS = 3600
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: time.time() - 3601))
    token = tokens.share_token(42)
    monkeypatch.undo()
    with pytest.raises(signing.SignatureExpired):
        tokens.share_token_read(token)


def test_a_share_open_is_an_access_and_a_lead_download(rep, customer, make_document):
    document = make_document(rep, customer=customer)
    services.document_share_opened(document=document, ip="203.0.113.9")
    access = DocumentAccess.objects.get(action=DocumentAccess.Action.SHARE_OPEN)
    assert (access.document, access.user, access.ip_address) == (document, None, "203.0.113.9")
    activity = LeadActivity.objects.get(customer=customer)
    assert activity.activity_type == "download"
    assert activity.details["document_id"] == document.pk


def test_a_share_open_without_customer_records_only_the_access(rep, make_document):
    document = make_document(rep)
    services.document_share_opened(document=document, ip=None)
    assert DocumentAccess.objects.filter(action="share_open").count() == 1
    assert not LeadActivity.objects.exists()


# Pipeline hook ---------------------------------------------------------------------------------


def test_the_reactions_file_links_proposals_and_the_pipeline():
    from crm import reactions

    path = "documents.selectors.sales_with_proposal_attached"
    assert reactions.ANSWERS[reactions.Question.DEALS_WITH_PROPOSAL] == [path]
    assert reactions.REACTIONS[reactions.Event.PROPOSAL_ATTACHED] == [
        "sales.services.deals.deals_advance_later"
    ]


def test_a_proposal_on_a_contacted_deal_moves_it_to_proposal_after_commit(
    rep, sale, make_document, django_capture_on_commit_callbacks
):
    Sale.objects.filter(pk=sale.pk).update(status=Sale.Status.CONTACTED)
    with django_capture_on_commit_callbacks(execute=False):
        services.document_upload(
            actor=rep,
            upload=samples.upload("p.pdf", samples.pdf_with_text("Offer")),
            document_type=Document.Type.PROPOSAL,
            sale=sale,
        )
    sale.refresh_from_db()
    assert sale.status == Sale.Status.CONTACTED  # nothing before commit

    Document.objects.all().delete()
    make_document(rep, "p.pdf", samples.pdf_with_text("Offer"), document_type="proposal", sale=sale)
    sale.refresh_from_db()
    assert sale.status == Sale.Status.PROPOSAL


def test_other_documents_do_not_move_the_deal(rep, sale, make_document):
    Sale.objects.filter(pk=sale.pk).update(status=Sale.Status.CONTACTED)
    make_document(rep, "c.pdf", samples.pdf_with_text("x"), document_type="contract", sale=sale)
    make_document(rep, "p.pdf", samples.pdf_with_text("x"), document_type="proposal")  # no deal
    sale.refresh_from_db()
    assert sale.status == Sale.Status.CONTACTED


def test_proposal_attached_only_counts_since_the_deal_entered_its_stage(rep, sale, make_document):
    make_document(rep, "p.pdf", samples.pdf_with_text("x"), document_type="proposal", sale=sale)
    assert Sale.objects.filter(selectors.sales_with_proposal_attached(), pk=sale.pk).exists()
    later = Document.objects.get().uploaded_at + timedelta(seconds=1)
    Sale.objects.filter(pk=sale.pk).update(stage_entered_at=later)
    assert not Sale.objects.filter(selectors.sales_with_proposal_attached(), pk=sale.pk).exists()


def test_a_new_proposal_version_also_moves_the_deal(
    rep, sale, make_document, django_capture_on_commit_callbacks
):
    first = make_document(
        rep, "p.pdf", samples.pdf_with_text("x"), document_type="contract", sale=sale
    )
    Document.objects.filter(pk=first.pk).update(document_type="proposal")
    first.refresh_from_db()
    Sale.objects.filter(pk=sale.pk).update(status=Sale.Status.CONTACTED)
    with django_capture_on_commit_callbacks(execute=True):
        _new_version(rep, first, content=samples.pdf_with_text("y"), name="p2.pdf")
    sale.refresh_from_db()
    assert sale.status == Sale.Status.PROPOSAL
