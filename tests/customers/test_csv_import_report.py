"""The import's report (issue 15): every refused value shown, the refused rows downloadable
as CSV, and mapped again and imported without uploading anything."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crm.errors import ValidationFailed
from customers import csv_import
from customers.models import Customer, CustomerImport
from tests.customers.test_csv_import import _run, _upload
from tests.customers.test_csv_import_other_crms import export

pytestmark = pytest.mark.django_db

# A bad email, a size range where a number is wanted, a consent the import does not know,
# and a formula: each refused with its value.
HEADERS = ["first_name", "last_name", "email", "employees", "has_newsletter"]
ROWS = [
    ["Shelley", "Kerluke", "shelley@x.example", "12", "yes"],
    ["Ann", "Archer", "not-an-email", "40", "no"],
    ["Bo", "Baker", "bo@x.example", "51-200", "maybe"],
    ["Cy", "Cole", "cy@x.example", "=1+2", ""],
]


def _report_import(rep, rows=ROWS):
    return _run(rep, _upload(rep, export(HEADERS, rows)))


def _download(client, customer_import) -> list[list[str]]:
    url = reverse("customers:import_rejected_csv", args=[customer_import.pk])
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "not imported.csv" in response["Content-Disposition"]
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_each_refused_value_is_kept_with_its_error(rep, teams):
    result = _report_import(rep)
    assert result.created_count == 1
    assert [(item["row"], item["cells"]) for item in result.row_errors] == [
        (3, {"email": "not-an-email"}),
        (4, {"company_size": "51-200", "email_consent": "maybe"}),
        (5, {"company_size": "=1+2"}),
    ]


def test_the_report_page_shows_each_value_and_sums_problems_up_by_column(rep_client, rep):
    result = _report_import(rep)
    page = rep_client.get(reverse("customers:import_report", args=[result.pk])).content.decode()
    assert "<code>not-an-email</code>" in page
    assert "<code>51-200</code>" in page
    assert "<code>maybe</code>" in page
    # By problem: one line for the company size, with the column it came from.
    assert 'Company size</strong> <span class="muted">(employees)</span>' in page
    assert "data-rejected-download" in page and "data-rejected-retry" in page


def test_the_refused_rows_download_as_csv_as_they_were_with_why(rep_client, rep):
    result = _report_import(rep)
    rows = _download(rep_client, result)
    assert rows[0] == ["Problems", *HEADERS]
    assert [row[1:] for row in rows[1:]] == [
        ROWS[1],
        ROWS[2],
        ["Cy", "Cole", "cy@x.example", "'=1+2", ""],  # spreadsheet-safe, like every export
    ]
    assert rows[1][0] == 'Email "not-an-email": Enter a valid email address.'
    assert rows[2][0].startswith('Company size "51-200": Enter a whole number.; Email consent')


def test_the_downloaded_rows_import_again_once_fixed(rep_client, rep):
    rows = _download(rep_client, _report_import(rep))
    fixed = [[cell.replace("not-an-email", "ann@x.example") for cell in row] for row in rows]
    for row in fixed[1:]:
        row[4] = "7"
        row[5] = "yes"
    again = _run(rep, _upload(rep, export(fixed[0], fixed[1:])))
    assert (again.created_count, again.error_count) == (3, 0)
    assert Customer.objects.count() == 4


def test_refused_rows_are_mapped_again_and_imported_without_uploading(
    rep_client, rep, django_capture_on_commit_callbacks
):
    # Every row refused: the ISO date-times of last_seen mapped to the company size.
    headers = ["first_name", "last_name", "email", "last_seen"]
    rows = [[f"P{i}", "Kerluke", f"p{i}@x.example", "2024-03-01T10:22:33Z"] for i in range(3)]
    customer_import = _upload(rep, export(headers, rows))
    first = csv_import.customer_import_run(
        actor=rep,
        customer_import=customer_import,
        mapping={"name": [0, 1], "email": 2, "company_size": 3},
        duplicate_mode="skip",
    )
    assert (first.created_count, first.error_count) == (0, 3)
    uploads = CustomerImport.objects.count()

    response = rep_client.post(reverse("customers:import_retry", args=[first.pk]))
    retry = CustomerImport.objects.latest("pk")
    assert response["Location"] == reverse("customers:import_mapping", args=[retry.pk])
    assert CustomerImport.objects.count() == uploads + 1
    assert (retry.status, retry.row_count, retry.headers) == ("mapping", 3, headers)
    assert retry.column_mapping == first.column_mapping  # suggested: the mapping just used
    page = rep_client.get(response["Location"]).content.decode()
    assert "2024-03-01T10:22:33Z" in page  # the preview

    post = {"duplicate_mode": "skip", "map_name": "0", "map_name_2": "1", "map_email": "2"}
    post["map_last_contact_date"] = "3"
    with django_capture_on_commit_callbacks(execute=True):
        rep_client.post(response["Location"], post)
    retry.refresh_from_db()
    assert (retry.status, retry.created_count, retry.error_count) == ("done", 3, 0)
    assert set(Customer.objects.values_list("name", flat=True)) == {
        "P0 Kerluke",
        "P1 Kerluke",
        "P2 Kerluke",
    }


def test_only_a_finished_import_with_refused_rows_can_be_retried(rep_client, rep):
    clean = _run(rep, _upload(rep, "name,email\nA,a@x.example\n"))
    with pytest.raises(ValidationFailed):
        csv_import.customer_import_retry_rejected(actor=rep, customer_import=clean)
    waiting = _upload(rep, "name,email\nB,b@x.example\n")
    response = rep_client.post(reverse("customers:import_retry", args=[waiting.pk]), follow=True)
    assert response.status_code == 200
    assert "no refused rows" in response.content.decode()
    assert not Customer.objects.filter(email="b@x.example").exists()
    download = rep_client.get(reverse("customers:import_rejected_csv", args=[waiting.pk]))
    assert download.status_code == 302  # nothing to download before the import ran


def test_someone_elses_import_cannot_be_downloaded_or_retried(other_rep_client, rep, teams):
    result = _report_import(rep)
    for name, method in (("import_rejected_csv", "get"), ("import_retry", "post")):
        url = reverse(f"customers:{name}", args=[result.pk])
        assert getattr(other_rep_client, method)(url).status_code == 404
    assert CustomerImport.objects.count() == 1


def test_the_retry_page_needs_a_post(rep_client, rep):
    result = _report_import(rep)
    response = rep_client.get(reverse("customers:import_retry", args=[result.pk]))
    assert response.status_code == 405


def test_a_report_of_many_refused_rows_shows_the_first_and_downloads_all(rep_client, rep):
    rows = [[f"P{i}", "X", f"bad{i}", "1", ""] for i in range(250)]
    result = _report_import(rep, rows)
    page = rep_client.get(reverse("customers:import_report", args=[result.pk])).content.decode()
    assert "<code>bad0</code>" in page and "<code>bad249</code>" not in page
    assert "And 50 more rows" in page
    assert ">250</td>" in page  # the summary counts them all
    assert len(_download(rep_client, result)) == 251


def test_an_import_made_before_the_file_was_stored_in_pieces_still_works(rep_client, rep):
    legacy = CustomerImport.objects.create(
        uploaded_by=rep,
        filename="old.csv",
        content="name,email\nOld One,old@x.example\nBad,bad\n",
        headers=["name", "email"],
        row_count=2,
        column_mapping={"name": 0, "email": 1},
    )
    page = rep_client.get(reverse("customers:import_mapping", args=[legacy.pk]))
    assert b"Old One" in page.content
    result = _run(rep, legacy)
    assert (result.created_count, result.error_count) == (1, 1)
    assert _download(rep_client, result)[1][1:] == ["Bad", "bad"]


def test_the_progress_of_a_running_import_is_read_from_the_cache(rep_client, rep):
    customer_import = _upload(rep, "name,email\nA,a@x.example\n")
    CustomerImport.objects.filter(pk=customer_import.pk).update(status="queued")
    from django.core.cache import cache

    cache.set(f"customers:import-progress:{customer_import.pk}", 1)
    url = reverse("customers:import_report", args=[customer_import.pk])
    progress = rep_client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert 'value="1"' in progress


def test_a_bad_upload_through_the_page_is_a_form_error_never_a_500(rep_client, settings):
    settings.CUSTOMER_IMPORT_MAX_BYTES = 100
    big = SimpleUploadedFile("big.csv", b"name,email\n" + b"A,a@x.example\n" * 20)
    response = rep_client.post(
        reverse("customers:import_upload"), {"file": big, "duplicate_mode": "skip"}
    )
    assert response.status_code == 200
    assert "The file is 291\xa0bytes; the limit is 100\xa0bytes." in response.content.decode()
    assert not CustomerImport.objects.exists()
