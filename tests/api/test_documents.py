"""Documents through the API: the page's content checks, the permission-checked download."""

import pytest

from documents.models import Document, DocumentAccess
from tests.documents import samples
from tests.documents.conftest import stored_files
from tests.factories import CustomerFactory, SaleFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/documents/"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    root = tmp_path / "media"
    root.mkdir()
    settings.MEDIA_ROOT = str(root)
    return root


def _upload(api, name, content, **fields):
    return api.post(URL, {"file": samples.upload(name, content), **fields}, format="multipart")


def test_upload_download_and_the_access_log(rep_api, rep, other_rep_api):
    customer = CustomerFactory(owner=rep)
    response = _upload(rep_api, "notes.txt", samples.TXT, customer=customer.pk, title="Notes")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["mime_type"] == "text/plain" and body["customer"] == customer.pk
    download = rep_api.get(body["download_url"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == samples.TXT
    assert download["Content-Security-Policy"] == "default-src 'none'; sandbox"
    assert DocumentAccess.objects.filter(action="download", user=rep).exists()
    assert other_rep_api.get(body["download_url"]).status_code == 404
    assert other_rep_api.get(f"{URL}{body['id']}/").status_code == 404


@pytest.mark.parametrize(
    "name,content,reason",
    [
        ("invoice.pdf", samples.EXECUTABLE, "program"),
        ("page.txt", samples.HTML_PAGE, "markup (HTML, SVG or XML"),
        ("evil.svg", samples.SVG_WITH_SCRIPT, "markup (HTML, SVG or XML"),
        ("bad.pdf", samples.CORRUPT_PDF, "damaged"),
    ],
)
def test_uploads_are_refused_exactly_like_the_page(rep_api, media_root, name, content, reason):
    response = _upload(rep_api, name, content)
    assert response.status_code == 400
    [message] = response.json()["errors"]["file"]
    assert reason in message
    assert not Document.objects.exists() and stored_files(media_root) == []


def test_an_oversized_upload_is_413(rep_api, settings, media_root):
    settings.DOCUMENT_MAX_BYTES = 100
    response = _upload(rep_api, "big.txt", b"x" * 101)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert stored_files(media_root) == []


def test_upload_to_another_reps_deal_is_refused(rep_api, other_rep, media_root):
    sale = SaleFactory(customer=CustomerFactory(owner=other_rep))
    response = _upload(rep_api, "a.txt", samples.TXT, sale=sale.pk)
    assert response.status_code == 400 and "sale" in response.json()["errors"]
    assert stored_files(media_root) == []


def test_upload_to_a_shared_deal_is_403(rep_api, rep, other_rep, media_root):
    """A deal on a customer shared with the rep is readable, not writable: a proposal
    uploaded to it would move its stage (crm.reactions PROPOSAL_ATTACHED)."""
    customer = CustomerFactory(owner=other_rep, shared_with=[rep])
    sale = SaleFactory(customer=customer, assigned_to=other_rep, status="CONTACTED")
    assert rep_api.get(f"/api/v1/deals/{sale.pk}/").status_code == 200  # readable
    response = _upload(rep_api, "offer.txt", samples.TXT, sale=sale.pk, document_type="proposal")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not Document.objects.exists() and stored_files(media_root) == []
    sale.refresh_from_db()
    assert sale.status == "CONTACTED"


def test_upload_to_a_shared_customer_is_403(rep_api, rep, other_rep, media_root):
    customer = CustomerFactory(owner=other_rep, shared_with=[rep])
    response = _upload(rep_api, "notes.txt", samples.TXT, customer=customer.pk)
    assert response.status_code == 403
    assert not Document.objects.exists() and stored_files(media_root) == []


def test_upload_to_own_deal_on_another_reps_customer_is_allowed(rep_api, rep, other_rep):
    """Changing a deal needs its assignment, not the customer: the rep's own deal on a
    customer shared with them takes documents."""
    customer = CustomerFactory(owner=other_rep, shared_with=[rep])
    sale = SaleFactory(customer=customer, assigned_to=rep)
    response = _upload(rep_api, "offer.txt", samples.TXT, sale=sale.pk)
    assert response.status_code == 201, response.json()
    assert response.json()["customer"] == customer.pk


def test_an_upload_without_a_file_is_400(rep_api):
    response = rep_api.post(URL, {"title": "x"}, format="multipart")
    assert response.status_code == 400 and "file" in response.json()["errors"]


def test_list_queries_are_fixed(rep_api, rep, django_assert_max_num_queries):
    for n in range(3):
        _upload(rep_api, f"n{n}.txt", samples.TXT)
    with django_assert_max_num_queries(7):
        rep_api.get(URL)
    for n in range(10):
        _upload(rep_api, f"m{n}.txt", samples.TXT)
    with django_assert_max_num_queries(7):
        assert len(rep_api.get(URL).json()["results"]) == 13
