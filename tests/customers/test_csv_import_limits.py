"""Size and memory (issue 15): a 50,000-row, 30-column export fits the byte cap, and the
file is stored and read a piece at a time, so memory does not grow with the file."""

import csv
import random
import tracemalloc

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile

from customers import csv_import
from customers.csv_import import files
from customers.models import Customer, CustomerImportChunk
from tests.customers.test_csv_import import _run, _upload

pytestmark = pytest.mark.django_db

# A HubSpot-like export of 30 columns.
WIDE_HEADERS = [
    "Record ID", "First Name", "Last Name", "Email", "Email (other)", "Company Name",
    "Job Title", "Phone Number", "Mobile Phone Number", "Lifecycle Stage", "Lead Status",
    "Contact owner", "Create Date", "Last Modified Date", "Last Seen", "Has Newsletter",
    "Tags", "Industry", "Number of Employees", "Annual Revenue", "Website URL",
    "Street Address", "City", "State/Region", "Postal Code", "Country/Region",
    "Original Source", "Notes", "Twitter Username", "LinkedIn URL",
]  # fmt: skip


def wide_export(path, rows: int) -> int:
    """Write a 30-column export of `rows` rows (realistic cell sizes) to path; its size."""
    rng = random.Random(15)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(WIDE_HEADERS)
        for i in range(rows):
            first = rng.choice(["Shelley", "Marcus", "Aiko", "Bruno", "Chioma", "Dmitri"])
            last = rng.choice(["Kerluke", "Okafor", "Tanaka", "Schmidt", "Haddad"])
            writer.writerow(
                [
                    1_000_000 + i, first, last, f"{first}.{last}.{i}@wide.example".lower(),
                    f"{first}{i}@mail.example".lower(), "Stark Logistics", "Head of Sales",
                    "+1 555 201 3344", "+1 555 908 1122", "Marketing Qualified Lead",
                    "In progress", "", "2023-04-05 10:22", "2024-01-09T08:01:02.000Z",
                    "2024-02-10T17:45:00+00:00", "true", "webinar 2024;trade show",
                    "Logistics", "120", "1500000", "https://www.stark-logistics.example",
                    "221 Station Street", "Leeds", "West Yorkshire", "LS1 4AP",
                    "United Kingdom", "Organic Search",
                    "Met at the spring trade show; wants a demo in Q3.",
                    f"@{first.lower()}{i}", f"https://www.linkedin.com/in/{first}-{last}-{i}",
                ]
            )  # fmt: skip
    return path.stat().st_size


def test_a_50000_row_30_column_export_fits_the_byte_cap(rep, teams, tmp_path, settings):
    path = tmp_path / "hubspot.csv"
    size = wide_export(path, settings.CUSTOMER_IMPORT_MAX_ROWS)
    assert size > 10 * 1024 * 1024  # the old cap refused it
    with open(path, "rb") as handle:
        upload = UploadedFile(handle, name="hubspot.csv", content_type="text/csv", size=size)
        tracemalloc.start()
        try:
            customer_import = csv_import.customer_import_upload(
                actor=rep, uploaded_file=upload, duplicate_mode="skip"
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert customer_import.row_count == 50_000
    # Read, decoded, stored and counted a piece at a time: never the file whole.
    assert peak < 12 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"
    assert CustomerImportChunk.objects.filter(customer_import=customer_import).count() > 10


def test_a_file_over_the_cap_or_the_row_limit_is_refused_with_both_sizes(rep, teams, settings):
    settings.CUSTOMER_IMPORT_MAX_BYTES = 2 * 1024 * 1024
    big = SimpleUploadedFile("big.csv", b"name,email\n" + b"x" * (3 * 1024 * 1024))
    with pytest.raises(csv_import.ValidationFailed) as error:
        _upload(rep, big.read(), name="big.csv")
    assert error.value.message.startswith("The file is 3.0\xa0MB; the limit is 2.0\xa0MB.")
    settings.CUSTOMER_IMPORT_MAX_ROWS = 3
    with pytest.raises(csv_import.ValidationFailed) as error:
        _upload(rep, "name,email\n" + "".join(f"P{i},p{i}@x.example\n" for i in range(4)))
    assert "The file has 4 rows; split it into files of at most 3 rows." in error.value.message


def test_pieces_cut_anywhere_read_back_as_the_same_rows(rep, teams, monkeypatch):
    """Tiny pieces split CRLF line ends, multi-byte characters and quoted cells with line
    breaks in them: the rows come back whole."""
    monkeypatch.setattr(files, "READ_BYTES", 5)
    text = (
        "name;email;notes\r\n"
        'Zoë Ünal;zoe@x.example;"Line one\r\nline two; with ""quotes"""\r\n'
        "Åsa Öberg;asa@x.example;plain\r\n"
    )
    customer_import = _upload(rep, text.encode("utf-8"))
    assert CustomerImportChunk.objects.filter(customer_import=customer_import).count() > 10
    result = _run(rep, customer_import)
    assert (result.created_count, result.error_count) == (2, 0)
    zoe = Customer.objects.get(email="zoe@x.example")
    assert (zoe.name, zoe.notes) == ("Zoë Ünal", 'Line one\nline two; with "quotes"')


def test_a_windows_1252_file_is_read_as_such(rep, teams, monkeypatch):
    monkeypatch.setattr(files, "READ_BYTES", 3)
    text = "name,email\nRenée Müller,renee@x.example\n".encode("cp1252")
    result = _run(rep, _upload(rep, text))
    assert result.created_count == 1
    assert Customer.objects.get().name == "Renée Müller"


def test_a_cell_bigger_than_csv_allows_is_refused_at_upload_with_its_line(rep, teams):
    text = "name,email,notes\nA,a@x.example,ok\nB,b@x.example," + "x" * 200_000 + "\n"
    with pytest.raises(csv_import.ValidationFailed) as error:
        _upload(rep, text)
    assert "not valid CSV (line 3)" in error.value.message


def test_the_import_writes_in_batches_so_its_memory_does_not_grow_with_the_file(
    rep, teams, monkeypatch
):
    def peak_of_import(rows: int, batch: int) -> int:
        monkeypatch.setattr(csv_import, "BATCH_ROWS", batch)
        text = "name,email,company,notes\n" + "".join(
            f"Person {i},p{batch}-{i}@x.example,Company {i % 7},{'note ' * 20}\n"
            for i in range(rows)
        )
        customer_import = _upload(rep, text)
        tracemalloc.start()
        try:
            _run(rep, customer_import)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    in_one_batch = peak_of_import(1200, batch=10_000)
    in_small_batches = peak_of_import(1200, batch=100)
    assert in_small_batches < in_one_batch / 2
    assert Customer.objects.count() == 2400


def test_reading_the_stored_file_keeps_one_piece_in_memory(rep, teams, monkeypatch, settings):
    monkeypatch.setattr(files, "READ_BYTES", 64 * 1024)
    settings.CUSTOMER_IMPORT_MAX_ROWS = 100_000
    text = "name,email\n" + "".join(f"Person {i},p{i}@x.example\n" for i in range(100_000))
    customer_import = _upload(rep, text)
    tracemalloc.start()
    try:
        count = sum(1 for _ in files.import_rows(customer_import))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert count == 100_001
    assert peak < len(text) / 3  # one 64 KB piece, its rows, the queries


def test_an_upload_is_stored_once_even_when_its_checks_fail(rep, teams):
    with pytest.raises(csv_import.ValidationFailed):
        _upload(rep, "name,email\n")
    assert not CustomerImportChunk.objects.exists()


def test_the_delimiter_found_at_upload_is_kept_for_the_import(rep, teams):
    customer_import = _upload(rep, "name;email;tags\nA;a@x.example;x,y\n")
    assert customer_import.delimiter == ";"
    result = _run(rep, customer_import)
    assert result.created_count == 1
    assert sorted(Customer.objects.get().tags.values_list("name", flat=True)) == ["x", "y"]
