"""Document pages: uploads, the permission matrix, downloads, versions, sharing, share
links, the access audit with client IPs, the admin access log and pinned query counts."""

import re
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core import signing
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from crm.forms import person_name
from crm.models import AuditEvent
from documents import services, tokens
from documents.models import Document, DocumentAccess, DocumentCategory
from leads.models import LeadActivity
from tests.documents import samples
from tests.documents.conftest import stored_files
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}


def _url(name: str, document=None) -> str:
    return reverse(f"documents:{name}", args=[document.pk] if document else [])


def _body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


# Upload -------------------------------------------------------------------------------------


def test_upload_several_files_from_a_plain_form(rep_client, rep, media_root):
    response = rep_client.post(
        _url("upload"),
        {
            "files": [
                samples.upload("offer.pdf", samples.pdf_with_text("Offer")),
                samples.upload("notes.txt", samples.TXT),
            ],
            "document_type": "proposal",
            "title": "ignored for several files",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == _url("list")
    documents = Document.objects.order_by("original_name")
    assert [(d.original_name, d.title, d.document_type) for d in documents] == [
        ("notes.txt", "notes", "proposal"),
        ("offer.pdf", "offer", "proposal"),
    ]
    assert all(d.uploaded_by == rep for d in documents)
    assert len(stored_files(media_root)) == 2
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == ["offer.pdf uploaded.", "notes.txt uploaded."]


def test_several_files_each_with_its_own_type(rep_client):
    response = rep_client.post(
        _url("upload"),
        {
            "files": [
                samples.upload("offer.pdf", samples.pdf_with_text("Offer")),
                samples.upload("meeting-notes.txt", samples.TXT),
            ],
            "document_type": ["proposal", "other"],  # in the files' order
        },
        **JSON,
    )
    assert response.status_code == 200
    assert dict(Document.objects.values_list("original_name", "document_type")) == {
        "offer.pdf": "proposal",
        "meeting-notes.txt": "other",
    }


@pytest.mark.parametrize(
    "types,error",
    [
        (["proposal", "other", "invoice"], "one type for all the files, or one for each"),
        (["nonsense", "other"], "not one of the available choices"),
    ],
)
def test_types_that_do_not_fit_the_files_are_refused(rep_client, media_root, types, error):
    response = rep_client.post(
        _url("upload"),
        {
            "files": [samples.upload("a.txt", samples.TXT), samples.upload("b.txt", samples.TXT)],
            "document_type": types,
        },
        **JSON,
    )
    assert response.status_code == 400
    assert error in response.json()["error"]
    assert not Document.objects.exists()
    assert stored_files(media_root) == []


def test_upload_one_file_with_a_title_as_json(rep_client):
    response = rep_client.post(
        _url("upload"),
        {
            "files": samples.upload("c.docx", samples.docx("x")),
            "document_type": "contract",
            "title": "Master agreement",
            "is_public": "on",
        },
        **JSON,
    )
    assert response.status_code == 200
    document = Document.objects.get()
    assert response.json() == {
        "files": [{"name": "c.docx", "id": document.pk, "url": document.get_absolute_url()}]
    }
    assert (document.title, document.is_public) == ("Master agreement", True)


def test_a_refused_upload_answers_with_the_reason_and_stores_nothing(rep_client, media_root):
    response = rep_client.post(
        _url("upload"),
        {"files": samples.upload("invoice.pdf", samples.EXECUTABLE), "document_type": "other"},
        **JSON,
    )
    assert response.status_code == 400
    [result] = response.json()["files"]
    assert result["name"] == "invoice.pdf"
    assert "program" in result["error"]
    assert not Document.objects.exists()
    assert stored_files(media_root) == []


@pytest.mark.parametrize(
    "name,content",
    [
        ("page.txt", samples.HTML_PAGE),
        ("page.html", samples.HTML_PAGE),
        ("evil.svg", samples.SVG_WITH_SCRIPT),
    ],
)
def test_markup_is_refused_whatever_its_name(rep_client, media_root, name, content):
    response = rep_client.post(
        _url("upload"), {"files": samples.upload(name, content, "text/plain"),
                         "document_type": "other"}, **JSON,
    )  # fmt: skip
    assert response.status_code == 400
    [result] = response.json()["files"]
    assert "markup (HTML, SVG or XML" in result["error"]
    assert not Document.objects.exists()
    assert stored_files(media_root) == []


@pytest.mark.parametrize(
    "build,reason",
    [
        (samples.pdf_with_appended_zip, "appended after its end"),
        (samples.pdf_with_shifted_xref, "cross-reference table is broken"),
        (samples.pdf_without_xref, "cross-reference table is broken"),
    ],
)
def test_a_hostile_or_repaired_pdf_is_refused_with_the_reason(
    rep_client, media_root, build, reason
):
    response = rep_client.post(
        _url("upload"), {"files": samples.upload("invoice.pdf", build(), "application/pdf"),
                         "document_type": "invoice"}, **JSON,
    )  # fmt: skip
    assert response.status_code == 400
    assert reason in response.json()["files"][0]["error"]
    assert not Document.objects.exists()
    assert stored_files(media_root) == []


def test_a_mixed_upload_stores_the_good_files_and_explains_the_bad(rep_client):
    response = rep_client.post(
        _url("upload"),
        {
            "files": [
                samples.upload("good.txt", samples.TXT),
                samples.upload("bad.pdf", samples.CORRUPT_PDF),
            ],
            "document_type": "other",
        },
        **JSON,
    )
    assert response.status_code == 200
    good, bad = response.json()["files"]
    assert "id" in good and "damaged" in bad["error"]
    assert Document.objects.count() == 1


def test_an_oversized_upload_is_refused(rep_client, settings, media_root):
    settings.DOCUMENT_MAX_BYTES = 100
    response = rep_client.post(
        _url("upload"),
        {"files": samples.upload("big.txt", b"x" * 101), "document_type": "other"},
        **JSON,
    )
    assert response.status_code == 400
    assert "limit" in response.json()["files"][0]["error"]
    assert stored_files(media_root) == []


def test_an_upload_without_files_is_refused(rep_client):
    response = rep_client.post(_url("upload"), {"document_type": "other"}, **JSON)
    assert response.status_code == 400
    assert "Choose at least one file" in response.json()["error"]
    response = rep_client.post(_url("upload"), {"document_type": "other"})
    assert response.status_code == 302
    assert not Document.objects.exists()


def test_a_traversal_file_name_is_reduced(rep_client, media_root, tmp_path):
    upload = samples.upload("../../x.pdf", samples.pdf_with_text("x"))
    upload.name = "../../x.pdf"  # what a hostile client puts in the multipart header
    rep_client.post(_url("upload"), {"files": upload, "document_type": "other"}, **JSON)
    document = Document.objects.get()
    assert document.original_name == "x.pdf"
    assert document.file.name.startswith("documents/")
    assert [p for p in tmp_path.rglob("*") if p.is_file() and media_root not in p.parents] == []


def test_upload_from_a_customer_page_links_the_customer(rep_client, customer):
    next_url = reverse("customers:detail", args=[customer.pk])
    response = rep_client.post(
        _url("upload"),
        {
            "files": samples.upload("n.txt", samples.TXT),
            "document_type": "other",
            "customer": customer.pk,
            "next": next_url,
        },
    )
    assert response["Location"] == next_url
    assert Document.objects.get().customer == customer


def test_upload_to_a_deal_of_someone_else_is_refused(rep_client, other_rep, media_root):
    theirs = CustomerFactory(owner=other_rep)
    response = rep_client.post(
        _url("upload"),
        {
            "files": samples.upload("n.txt", samples.TXT),
            "document_type": "other",
            "customer": theirs.pk,
        },
    )
    assert response.status_code == 404
    assert not Document.objects.exists()
    assert stored_files(media_root) == []


def test_a_deal_shared_to_read_takes_no_documents(rep_client, rep, other_rep, media_root):
    """Attaching changes the deal (a proposal would even move its stage): the panel offers
    no upload box and a posted upload is refused with the reason."""
    shared = CustomerFactory(owner=other_rep, shared_with=[rep])
    sale = SaleFactory(customer=shared, assigned_to=other_rep, status="CONTACTED")
    panel = rep_client.get(reverse("documents:panel", args=["sale", sale.pk])).content.decode()
    assert "data-upload-refused" in panel and "data-upload>" not in panel
    customer_panel = rep_client.get(reverse("documents:panel", args=["customer", shared.pk]))
    assert b"data-upload-refused" in customer_panel.content
    response = rep_client.post(
        _url("upload"),
        {"files": samples.upload("offer.txt", samples.TXT), "document_type": "proposal",
         "sale": sale.pk},
        HTTP_ACCEPT="application/json",
    )  # fmt: skip
    assert response.status_code == 400
    [result] = response.json()["files"]
    assert "shared with you to read" in result["error"]
    assert not Document.objects.exists() and stored_files(media_root) == []
    sale.refresh_from_db()
    assert sale.status == "CONTACTED"


def test_the_panel_of_ones_own_deal_offers_the_upload_box(rep_client, sale):
    panel = rep_client.get(reverse("documents:panel", args=["sale", sale.pk])).content.decode()
    assert "data-upload>" in panel and "data-upload-refused" not in panel


@pytest.mark.parametrize("target", ["https://evil.example/phish", "//evil.example/x"])
def test_upload_never_redirects_off_site(rep_client, target):
    response = rep_client.post(
        _url("upload"),
        {"files": samples.upload("n.txt", samples.TXT), "document_type": "other", "next": target},
    )
    assert response["Location"] == _url("list")
    response = rep_client.post(_url("upload"), {"document_type": "other", "next": target})
    assert response["Location"] == _url("list")


def test_upload_needs_a_login_and_a_post(client, rep_client):
    assert rep_client.get(_url("upload")).status_code == 405
    rep_client.logout()
    response = client.post(
        _url("upload"), {"files": samples.upload("n.txt", samples.TXT), "document_type": "other"}
    )
    assert response.status_code == 302
    assert reverse("login") in response["Location"]
    assert not Document.objects.exists()


def test_the_upload_box_defaults_to_other_and_shows_the_limit(rep_client, settings):
    settings.DOCUMENT_MAX_BYTES = 10 * 1024 * 1024
    page = rep_client.get(_url("list")).content.decode()
    assert '<option value="other" selected>' in page
    assert '<option value="contract" selected>' not in page
    assert "up to 10 MB each" in page


# The permission matrix ------------------------------------------------------------------------

ALLOWED_ALL = {
    "list": True,
    "detail": 200,
    "download": 200,
    "preview": 200,
    "share": 302,
    "share_link": 200,
    "audit": 200,
}
READ_ONLY = {**ALLOWED_ALL, "share": 403, "share_link": 403, "audit": 403}
HIDDEN = {
    "list": False,
    "detail": 404,
    "download": 404,
    "preview": 404,
    "share": 404,
    "share_link": 404,
    "audit": 404,
}

MATRIX = {
    # viewer: (who looks, how the rep's document is set up, what they get)
    "owner": ("rep", {}, ALLOWED_ALL),
    "same team manager": ("manager", {}, ALLOWED_ALL),
    "admin": ("admin_user", {}, ALLOWED_ALL),
    "public document": ("other_rep", {"is_public": True}, READ_ONLY),
    "allowed user": ("other_rep", {"allowed": True}, READ_ONLY),
    "other rep": ("other_rep", {}, HIDDEN),
    "other manager": ("other_manager", {}, HIDDEN),
}
ENDPOINTS = ["list", "detail", "download", "preview", "share", "share_link", "audit"]


@pytest.fixture
def secret_png(rep, other_rep, make_document):
    def make(is_public=False, allowed=False):
        document = make_document(
            rep, "secret-plan.png", samples.png(), title="Secret plan", is_public=is_public
        )
        if allowed:
            document.allowed_users.add(other_rep)
        return document

    return make


def _request(client, endpoint: str, document):
    if endpoint == "list":
        return client.get(_url("list"))
    url = _url(endpoint, document)
    if endpoint == "share":
        return client.post(url, {"is_public": "on" if document.is_public else ""})
    if endpoint == "share_link":
        return client.post(url)
    return client.get(url)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("case", list(MATRIX))
def test_permission_matrix(request, client, secret_png, case, endpoint):
    viewer_fixture, setup, expected = MATRIX[case]
    document = secret_png(**setup)
    assert document.preview_image  # processed: the preview exists
    client.force_login(request.getfixturevalue(viewer_fixture))
    DocumentAccess.objects.all().delete()

    response = _request(client, endpoint, document)

    if endpoint == "list":
        assert response.status_code == 200
        assert (b"Secret plan" in response.content) is expected["list"]
        return
    assert response.status_code == expected[endpoint]
    if response.status_code in (403, 404):
        assert not DocumentAccess.objects.exists()  # a refusal is not an access
        if endpoint == "share":
            document.refresh_from_db()
            assert list(document.allowed_users.all()) == (
                [request.getfixturevalue("other_rep")] if setup.get("allowed") else []
            )


@pytest.mark.parametrize("endpoint", ENDPOINTS + ["version_upload", "restore", "access_log"])
def test_anonymous_is_sent_to_login(client, secret_png, endpoint):
    document = secret_png(is_public=True)
    if endpoint in ("version_upload", "restore"):
        response = client.post(_url(endpoint, document))
    elif endpoint == "access_log":
        response = client.get(_url("access_log"))
    else:
        response = _request(client, endpoint, document)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert not DocumentAccess.objects.filter(action__in=["view", "download"]).exists()


def test_a_customer_linked_document_is_visible_to_whoever_sees_the_customer(
    client, rep, teammate, customer, make_document
):
    document = make_document(rep, customer=customer)
    customer.shared_with.add(teammate)
    client.force_login(teammate)
    assert client.get(_url("detail", document)).status_code == 200
    assert client.get(_url("download", document)).status_code == 200
    assert client.get(_url("audit", document)).status_code == 403  # seeing is not editing


# Downloads -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,build,content_type",
    [
        ("Angebot für ACME.pdf", lambda: samples.pdf_with_text("x"), "application/pdf"),
        ("notes.txt", lambda: samples.TXT, "text/plain"),
        ("photo.jpg", samples.jpeg, "image/jpeg"),
        (
            "contract.docx",
            samples.docx,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
    ],
)
def test_download_headers(rep_client, rep, make_document, name, build, content_type):
    content = build()
    document = make_document(rep, name, content)
    response = rep_client.get(_url("download", document))
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["X-Content-Type-Options"] == "nosniff"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    if name.isascii():
        assert f'filename="{name}"' in disposition
    else:
        assert "filename*=utf-8''Angebot%20f%C3%BCr%20ACME.pdf" in disposition
    assert "sandbox" in response["Content-Security-Policy"]
    assert _body(response) == content


def test_the_type_is_the_detected_one_not_the_name(rep_client, rep, make_document):
    document = make_document(rep, "looks-like.pdf", samples.TXT)
    response = rep_client.get(_url("download", document))
    assert response["Content-Type"] == "text/plain"
    # Saved and opened, it opens as what it is, whatever the uploader called it.
    assert 'filename="looks-like.txt"' in response["Content-Disposition"]


@pytest.mark.parametrize(
    "original_name,content,download_name",
    [
        # Stored before markup was refused: saved locally as .svg or .html it would render.
        ("evil.svg", samples.TXT, "evil.txt"),
        ("page.html", samples.TXT, "page.txt"),
        ("invoice.pdf.exe", samples.pdf_with_text("x"), "invoice.pdf.pdf"),
        ("report", samples.pdf_with_text("x"), "report.pdf"),
        ("scan.PDF", samples.pdf_with_text("x"), "scan.PDF"),
        ("photo.jpeg", samples.jpeg(size=(8, 8)), "photo.jpeg"),
        ("photo.png", samples.jpeg(size=(8, 8)), "photo.jpg"),
        ("contacts.csv", b"one column\nonly\n", "contacts.csv"),  # text, and a CSV to Excel
        ("prices.xls", samples.xlsx(), "prices.xlsx"),
    ],
    ids=["svg", "html", "double extension", "none", "upper case", "jpeg", "png", "csv", "xls"],
)
def test_the_download_name_ends_in_the_detected_types_extension(
    client, rep, make_document, original_name, content, download_name
):
    document = make_document(rep, "upload", content)
    Document.objects.filter(pk=document.pk).update(original_name=original_name)
    client.force_login(rep)
    for response in (
        client.get(_url("download", document)),
        client.get(reverse("document_share_open", args=[tokens.share_token(document.pk)])),
    ):
        assert response.status_code == 200
        assert f'filename="{download_name}"' in response["Content-Disposition"]


def test_media_files_are_not_served_by_url(client, rep, make_document):
    document = make_document(rep, "n.txt", samples.TXT)
    for path in ("/media/" + document.file.name, "/" + document.file.name):
        assert client.get(path).status_code == 404
        client.force_login(rep)
        assert client.get(path).status_code == 404  # even the owner: only through download/
        client.logout()


# Access audit with the client's address ---------------------------------------------------------


def test_every_view_download_and_edit_is_recorded_with_the_ip(client, rep, make_document):
    client.force_login(rep)
    ip = {"REMOTE_ADDR": "203.0.113.5"}
    first = make_document(rep, "n.txt", samples.TXT)
    DocumentAccess.objects.all().delete()

    client.get(_url("detail", first), **ip)
    client.get(_url("download", first), **ip)
    client.post(
        _url("version_upload", first), {"file": samples.upload("n2.txt", b"second\n")}, **ip
    )
    second = Document.objects.get(version=2)
    client.post(_url("restore", first), **ip)
    third = Document.objects.get(version=3)
    client.post(_url("share", third), {"is_public": "on"}, **ip)
    client.post(_url("share_link", third), **ip)

    recorded = list(
        DocumentAccess.objects.order_by("id").values_list(
            "document", "action", "detail", "ip_address", "user"
        )
    )
    assert recorded == [
        (first.pk, "view", "", "203.0.113.5", rep.pk),
        (first.pk, "download", "", "203.0.113.5", rep.pk),
        (second.pk, "edit", "uploaded version 2", "203.0.113.5", rep.pk),
        (third.pk, "edit", "restored version 1", "203.0.113.5", rep.pk),
        (third.pk, "edit", "sharing changed", "203.0.113.5", rep.pk),
        (third.pk, "edit", "share link created", "203.0.113.5", rep.pk),
    ]


def test_an_upload_through_the_page_is_recorded_with_the_ip(rep_client):
    rep_client.post(
        _url("upload"),
        {"files": samples.upload("n.txt", samples.TXT), "document_type": "other"},
        REMOTE_ADDR="198.51.100.20",
    )
    access = DocumentAccess.objects.get()
    assert (access.action, access.detail, access.ip_address) == (
        "edit",
        "uploaded",
        "198.51.100.20",
    )


@pytest.mark.parametrize("behind_proxy,recorded", [(False, "203.0.113.5"), (True, "198.51.100.1")])
def test_x_forwarded_for_counts_only_behind_our_proxy(
    client, rep, make_document, settings, behind_proxy, recorded
):
    settings.BEHIND_TLS_PROXY = behind_proxy
    document = make_document(rep, "n.txt", samples.TXT)
    client.force_login(rep)
    headers = {"REMOTE_ADDR": "203.0.113.5", "HTTP_X_FORWARDED_FOR": "198.51.100.1, 10.0.0.2"}
    client.get(_url("detail", document), **headers)
    client.get(_url("download", document), **headers)
    assert set(
        DocumentAccess.objects.filter(action__in=["view", "download"]).values_list(
            "ip_address", flat=True
        )
    ) == {recorded}


def test_a_forged_forwarded_address_that_is_not_an_ip_is_not_recorded(
    client, rep, make_document, settings
):
    settings.BEHIND_TLS_PROXY = True
    document = make_document(rep, "n.txt", samples.TXT)
    client.force_login(rep)
    client.get(_url("detail", document), HTTP_X_FORWARDED_FOR="<script>, 1.2.3.4")
    assert DocumentAccess.objects.get(action="view").ip_address is None


def test_the_audit_page_lists_accesses_of_every_version(client, rep, manager, make_document):
    first = make_document(rep, "n.txt", samples.TXT)
    services.document_upload_version(
        actor=rep, document=first, upload=samples.upload("n2.txt", b"v2\n"), ip="192.0.2.2"
    )
    client.force_login(manager)
    client.get(_url("download", first), REMOTE_ADDR="192.0.2.99")
    page = client.get(_url("audit", first)).content.decode()
    assert "192.0.2.99" in page and "192.0.2.2" in page
    assert "Downloaded" in page and "uploaded version 2" in page
    assert escape(person_name(manager)) in page


# Versions ----------------------------------------------------------------------------------------


def test_versions_through_the_pages(client, rep, manager, make_document):
    client.force_login(rep)
    first = make_document(rep, "plan.txt", b"first\n", title="Plan")

    response = client.post(
        _url("version_upload", first), {"file": samples.upload("plan-v2.txt", b"second\n")}
    )
    second = Document.objects.get(version=2)
    assert response["Location"] == second.get_absolute_url()
    assert second.parent_document == first

    client.force_login(manager)
    client.post(_url("version_upload", second), {"file": samples.upload("plan-v3.txt", b"3\n")})
    third = Document.objects.get(version=3)
    assert third.parent_document == first
    client.force_login(rep)

    listing = client.get(_url("list"))
    assert [d.pk for d in listing.context["page"].object_list] == [third.pk]

    detail = client.get(_url("detail", first)).content.decode()
    assert "(older version)" in detail
    for version in (first, second, third):
        assert _url("download", version) in detail
        assert f"v{version.version}" in detail
        assert timezone.localtime(version.uploaded_at).strftime("%Y-%m-%d %H:%M") in detail
    assert escape(person_name(rep)) in detail and escape(person_name(manager)) in detail
    assert detail.count('action="' + _url("restore", first)) == 1
    assert 'action="' + _url("restore", third) not in detail  # the newest has no restore

    assert _body(client.get(_url("download", first))) == b"first\n"  # any version downloads

    response = client.post(_url("restore", first))
    restored = Document.objects.get(version=4)
    assert response["Location"] == restored.get_absolute_url()
    assert _body(client.get(_url("download", restored))) == b"first\n"
    assert [d.pk for d in client.get(_url("list")).context["page"].object_list] == [restored.pk]


def test_a_refused_new_version_stores_nothing(rep_client, rep, make_document, media_root):
    first = make_document(rep, "n.txt", samples.TXT)
    before = stored_files(media_root)
    response = rep_client.post(
        _url("version_upload", first), {"file": samples.upload("v2.pdf", samples.CORRUPT_PDF)}
    )
    assert response.status_code == 302
    assert Document.objects.count() == 1
    assert stored_files(media_root) == before
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("damaged" in m for m in messages)


@pytest.mark.parametrize("setup,status", [({}, 404), ({"is_public": True}, 403)])
def test_another_rep_cannot_upload_a_version_or_restore(
    other_rep_client, rep, make_document, media_root, setup, status
):
    first = make_document(rep, "n.txt", samples.TXT, **setup)
    services.document_upload_version(
        actor=rep, document=first, upload=samples.upload("n2.txt", b"2\n")
    )
    before = stored_files(media_root)
    response = other_rep_client.post(
        _url("version_upload", first), {"file": samples.upload("mine.txt", b"mine\n")}
    )
    assert response.status_code == status
    assert other_rep_client.post(_url("restore", first)).status_code == status
    assert Document.objects.count() == 2
    assert stored_files(media_root) == before


def test_restoring_the_newest_version_is_explained(rep_client, rep, make_document):
    first = make_document(rep)
    response = rep_client.post(_url("restore", first))
    assert response.status_code == 302
    assert Document.objects.count() == 1


def test_version_and_restore_need_a_post(rep_client, rep, make_document):
    first = make_document(rep)
    assert rep_client.get(_url("version_upload", first)).status_code == 405
    assert rep_client.get(_url("restore", first)).status_code == 405


# Sharing ------------------------------------------------------------------------------------------


def test_sharing_through_the_page(client, rep, other_rep, make_document):
    document = make_document(rep, title="Secret plan")
    client.force_login(other_rep)
    assert client.get(_url("detail", document)).status_code == 404
    client.force_login(rep)
    response = client.post(_url("share", document), {"allowed_users": [other_rep.pk]})
    assert response.status_code == 302
    client.force_login(other_rep)
    assert client.get(_url("detail", document)).status_code == 200
    assert b"Secret plan" in client.get(_url("list")).content


def test_the_share_form_is_only_for_editors(client, rep, other_rep, make_document):
    document = make_document(rep, is_public=True)
    client.force_login(rep)
    assert client.get(_url("detail", document)).context["share_form"] is not None
    client.force_login(other_rep)
    response = client.get(_url("detail", document))
    assert response.context["share_form"] is None
    assert _url("share_link", document) not in response.content.decode()


# Share links --------------------------------------------------------------------------------------


def _share_link(client, document) -> str:
    html = client.post(_url("share_link", document)).content.decode()
    return re.search(r'value="([^"]+)"', html).group(1)


def test_a_share_link_serves_the_file_and_records_the_open(client, rep, customer, make_document):
    content = samples.pdf_with_text("Our offer")
    document = make_document(rep, "offer.pdf", content, document_type="proposal", customer=customer)
    client.force_login(rep)
    link = _share_link(client, document)
    client.logout()  # the customer has no account

    response = client.get(link.removeprefix("http://127.0.0.1:8000"), REMOTE_ADDR="203.0.113.77")

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert 'filename="offer.pdf"' in response["Content-Disposition"]
    assert response["Content-Type"] == "application/pdf"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert _body(response) == content
    opened = DocumentAccess.objects.get(action=DocumentAccess.Action.SHARE_OPEN)
    assert (opened.document, opened.user, opened.ip_address) == (document, None, "203.0.113.77")
    activity = LeadActivity.objects.get(customer=customer)
    assert activity.activity_type == "download"
    assert activity.details["document_id"] == document.pk


def _token_made_at(document, seconds_ago: int, monkeypatch) -> str:
    from documents import tokens

    with monkeypatch.context() as patch:
        patch.setattr(signing, "time", SimpleNamespace(time=lambda: time.time() - seconds_ago))
        return tokens.share_token(document.pk)


def test_an_expired_share_link_is_gone(client, rep, customer, make_document, settings, monkeypatch):
    document = make_document(rep, customer=customer)
    settings.DOCUMENT_SHARE_MAX_AGE_SECONDS = 3600
    response = client.get(
        reverse("document_share_open", args=[_token_made_at(document, 3700, monkeypatch)])
    )
    assert response.status_code == 410
    assert b"expired" in response.content
    assert not DocumentAccess.objects.filter(action="share_open").exists()
    assert not LeadActivity.objects.exists()
    fresh = _token_made_at(document, 60, monkeypatch)
    assert client.get(reverse("document_share_open", args=[fresh])).status_code == 200


def test_a_zero_max_age_expires_every_link(client, rep, make_document, settings, monkeypatch):
    document = make_document(rep)
    settings.DOCUMENT_SHARE_MAX_AGE_SECONDS = 0
    token = _token_made_at(document, 2, monkeypatch)
    assert client.get(reverse("document_share_open", args=[token])).status_code == 410


@pytest.mark.parametrize("how", ["signature", "payload", "garbage", "other salt"])
def test_a_tampered_share_link_is_not_found(client, rep, customer, make_document, how):
    from documents import tokens

    document = make_document(rep, customer=customer)
    token = tokens.share_token(document.pk)
    if how == "signature":
        token = token[:-3] + ("abc" if not token.endswith("abc") else "xyz")
    elif how == "payload":
        token = "x" + token[1:] if not token.startswith("x") else "y" + token[1:]
    elif how == "garbage":
        token = "not-a-token"
    else:
        token = signing.TimestampSigner(salt="campaigns.unsubscribe").sign_object(
            {"d": document.pk}
        )
    response = client.get(reverse("document_share_open", args=[token]))
    assert response.status_code == 404
    assert b"not valid" in response.content
    assert not DocumentAccess.objects.filter(action="share_open").exists()
    assert not LeadActivity.objects.exists()


def test_a_share_link_to_a_deleted_document_is_not_found(client, rep, make_document):
    from documents import tokens

    document = make_document(rep)
    token = tokens.share_token(document.pk)
    Document.objects.filter(pk=document.pk).delete()
    assert client.get(reverse("document_share_open", args=[token])).status_code == 404


# The admin access log -------------------------------------------------------------------------


@pytest.fixture
def logged_accesses(rep, manager, make_document):
    document = make_document(rep, title="Logged")
    DocumentAccess.objects.all().delete()
    now = timezone.now()
    rows = [
        (rep, "view", "10.0.0.1", now),
        (rep, "download", "10.0.0.1", now),
        (manager, "download", "10.0.0.2", now - timedelta(days=10)),
        (None, "share_open", "203.0.113.1", now - timedelta(days=3)),
    ]
    return [
        DocumentAccess.objects.create(
            document=document, user=user, action=action, ip_address=ip, timestamp=when
        )
        for user, action, ip, when in rows
    ]


def _log(client, **params):
    response = client.get(_url("access_log"), params)
    assert response.status_code == 200
    return sorted(a.pk for a in response.context["page"].object_list)


def test_the_access_log_is_for_admins(client, rep, manager, admin_user, logged_accesses):
    for user in (rep, manager):
        client.force_login(user)
        assert client.get(_url("access_log")).status_code == 403
    client.force_login(admin_user)
    response = client.get(_url("access_log"))
    assert response.status_code == 200
    assert b"203.0.113.1" in response.content and b"Logged" in response.content


def test_the_access_log_filters(client, admin_user, rep, manager, logged_accesses):
    view, download, old_download, share_open = (a.pk for a in logged_accesses)
    client.force_login(admin_user)
    assert _log(client) == sorted([view, download, old_download, share_open])
    assert _log(client, action="download") == sorted([download, old_download])
    assert _log(client, user=manager.pk) == [old_download]
    assert _log(client, ip="10.0.0.1") == sorted([view, download])
    today = timezone.localdate()
    assert _log(client, since=(today - timedelta(days=5)).isoformat()) == sorted(
        [view, download, share_open]
    )
    assert _log(client, until=(today - timedelta(days=5)).isoformat()) == [old_download]
    assert _log(client, action="download", user=rep.pk) == [download]
    # A bad filter value is ignored, not a 500.
    assert _log(client, ip="not-an-ip", action="nonsense") == sorted(
        [view, download, old_download, share_open]
    )


# Lists, search, panels and query counts --------------------------------------------------------


def test_the_list_searches_title_and_extracted_text(rep_client, rep, make_document):
    make_document(rep, "a.txt", b"Nothing to see\n", title="Alpha")
    make_document(rep, "b.pdf", samples.pdf_with_text("Confidential pricing"), title="Beta")
    response = rep_client.get(_url("list"), {"q": "pricing"})
    assert [d.title for d in response.context["page"].object_list] == ["Beta"]
    response = rep_client.get(_url("list"), {"q": "alpha"})
    assert [d.title for d in response.context["page"].object_list] == ["Alpha"]
    response = rep_client.get(_url("list"), {"document_type": "contract"})
    assert list(response.context["page"].object_list) == []


# Session, user, role, team, shared customers, count, categories (filter form), documents.
LIST_QUERIES = 7


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(_url("list"))
    assert response.status_code == 200
    return len(queries)


def test_the_list_query_count_does_not_grow_with_documents(
    client, rep, manager, customer, sale, make_document, django_assert_max_num_queries
):
    def add(count):
        for index in range(count):
            make_document(
                rep,
                f"n{index}.txt",
                samples.TXT,
                customer=customer,
                sale=sale if index % 2 else None,
                process=False,
            )

    client.force_login(manager)
    add(5)
    with django_assert_max_num_queries(LIST_QUERIES):
        response = client.get(_url("list"))
    assert len(response.context["page"].object_list) == 5
    small = _list_queries(client)
    add(25)
    with django_assert_max_num_queries(LIST_QUERIES):
        response = client.get(_url("list"))
    assert len(response.context["page"].object_list) == 25  # one page of 30
    assert _list_queries(client) == small


def test_the_access_log_and_audit_query_counts_do_not_grow(client, rep, admin_user, make_document):
    document = make_document(rep)
    client.force_login(admin_user)

    def counts():
        with CaptureQueriesContext(connection) as log_queries:
            assert client.get(_url("access_log")).status_code == 200
        with CaptureQueriesContext(connection) as audit_queries:
            assert client.get(_url("audit", document)).status_code == 200
        return len(log_queries), len(audit_queries)

    def add(count):
        users = [rep, admin_user, None]
        DocumentAccess.objects.bulk_create(
            DocumentAccess(
                document=document, user=users[i % 3], action="view", ip_address=f"10.0.0.{i % 250}"
            )
            for i in range(count)
        )

    add(5)
    small = counts()
    add(25)
    assert counts() == small
    assert max(small) <= 8


def test_the_detail_query_count_does_not_grow_with_versions(
    client, rep, manager, teammate, make_document
):
    first = make_document(rep, customer=None)
    services.document_share(actor=rep, document=first, user_ids=[teammate.pk], is_public=False)
    client.force_login(rep)

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(_url("detail", first)).status_code == 200
        return len(queries)

    services.document_upload_version(
        actor=manager, document=first, upload=samples.upload("v2.txt", b"2\n")
    )
    small = count()
    for index in range(8):
        services.document_upload_version(
            actor=rep, document=first, upload=samples.upload(f"v{index}.txt", b"n\n")
        )
    assert count() == small


def test_the_customer_panel(client, rep, other_rep, customer, make_document):
    make_document(rep, title="For ACME", customer=customer)
    make_document(rep, title="Unrelated")
    client.force_login(rep)
    url = reverse("documents:panel", args=["customer", customer.pk])
    response = client.get(url, {"next": "/customers/"})
    assert response.status_code == 200
    assert b"For ACME" in response.content and b"Unrelated" not in response.content
    assert f'name="customer" value="{customer.pk}"'.encode() in response.content
    client.force_login(other_rep)
    assert client.get(url).status_code == 404


def test_the_deal_panel_defaults_to_proposals(rep_client, sale):
    response = rep_client.get(reverse("documents:panel", args=["sale", sale.pk]))
    assert response.status_code == 200
    assert b'<option value="proposal" selected>' in response.content
    assert f'name="sale" value="{sale.pk}"'.encode() in response.content


def test_the_panels_list_alone_for_htmx_after_an_upload(
    client, rep, other_rep, sale, make_document
):
    url = reverse("documents:panel_documents", args=["sale", sale.pk])
    client.force_login(rep)
    empty = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "No documents yet." in empty and "<form" not in empty
    make_document(rep, "offer.pdf", samples.pdf_with_text("x"), document_type="proposal",
                  sale=sale)  # fmt: skip
    listed = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert ">offer</a>" in listed and "Proposal" in listed
    assert "No documents yet." not in listed
    # The panel holds the same list, refreshed when an upload in the panel finishes.
    panel = client.get(reverse("documents:panel", args=["sale", sale.pk])).content.decode()
    assert f'hx-get="{url}"' in panel
    assert 'hx-trigger="documents-uploaded from:closest [data-documents-panel]"' in panel
    client.force_login(other_rep)
    assert client.get(url).status_code == 404
    assert (
        client.get(reverse("documents:panel_documents", args=["nope", sale.pk])).status_code == 404
    )


def test_the_documents_table_alone_for_htmx_after_an_upload(rep_client, rep, make_document):
    make_document(rep, "notes.txt", samples.TXT, title="Notes")
    page = rep_client.get(_url("list")).content.decode()
    assert 'hx-trigger="documents-uploaded from:body"' in page
    table = rep_client.get(_url("list"), HTTP_HX_REQUEST="true").content.decode()
    assert ">Notes</a>" in table and "data-document-table" in table
    assert "<html" not in table and "data-upload" not in table  # the table only


def test_an_unknown_panel_is_not_found(rep_client, customer):
    assert rep_client.get(reverse("documents:panel", args=["nope", customer.pk])).status_code == 404


def test_a_proposal_uploaded_on_a_deal_page_moves_the_deal(
    rep_client, sale, django_capture_on_commit_callbacks
):
    from sales.models import Sale

    Sale.objects.filter(pk=sale.pk).update(status=Sale.Status.CONTACTED)
    with django_capture_on_commit_callbacks(execute=True):
        rep_client.post(
            _url("upload"),
            {
                "files": samples.upload("offer.pdf", samples.pdf_with_text("Offer")),
                "document_type": "proposal",
                "sale": sale.pk,
            },
            **JSON,
        )
    sale.refresh_from_db()
    assert sale.status == Sale.Status.PROPOSAL
    assert Document.objects.get().processing_status == Document.Processing.DONE


def test_the_django_admin_refuses_a_category_cycle_too(admin_client_, admin_user):
    a = services.category_save(actor=admin_user, name="A", parent=None)
    b = services.category_save(actor=admin_user, name="B", parent=a)
    url = reverse("admin:documents_documentcategory_change", args=[a.pk])
    response = admin_client_.post(url, {"name": "A", "parent": b.pk})
    assert response.status_code == 200  # the form again, with the error
    assert b"cannot sit inside itself" in response.content
    a.refresh_from_db()
    assert a.parent is None
    response = admin_client_.post(url, {"name": "A renamed", "parent": ""})
    assert response.status_code == 302
    a.refresh_from_db()
    assert a.name == "A renamed"
    assert AuditEvent.objects.filter(verb="update", object_id=str(a.pk)).exists()


def test_the_django_admin_saves_categories_through_the_service(admin_client_, admin_user):
    add = reverse("admin:documents_documentcategory_add")
    assert admin_client_.post(add, {"name": " Legal ", "parent": ""}).status_code == 302
    legal = DocumentCategory.objects.get()
    assert legal.name == "Legal"
    assert AuditEvent.objects.filter(verb="create", object_id=str(legal.pk)).exists()
    response = admin_client_.post(add, {"name": "legal", "parent": ""})
    assert response.status_code == 200  # the form again: the same name in another case
    assert "There is already a category" in response.content.decode()
    assert DocumentCategory.objects.count() == 1
