import pytest
from django.conf import settings
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crm.errors import ValidationFailed
from customers import csv_import
from customers.models import Customer, CustomerImport
from leads.models import LeadScore
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

GOOD = (
    "Full Name,E-mail,Company,Region,Stage,Employees,Tags\n"
    'Ann Archer,ann@a.example,Archer Ltd,EMEA,prospect,120,"vip, renewal"\n'
    "Bob Baker,bob@b.example,Baker Inc,Asia-Pacific,lead,15,\n"
)


def _upload(actor, text, name="people.csv", mode="skip"):
    return csv_import.customer_import_upload(
        actor=actor,
        uploaded_file=SimpleUploadedFile(name, text.encode() if isinstance(text, str) else text),
        duplicate_mode=mode,
    )


def _run(actor, customer_import, mode=None):
    return csv_import.customer_import_run(
        actor=actor,
        customer_import=customer_import,
        mapping=customer_import.column_mapping,
        duplicate_mode=mode or customer_import.duplicate_mode,
    )


def test_upload_guesses_the_mapping_from_headers(rep, teams):
    customer_import = _upload(rep, GOOD)
    assert customer_import.row_count == 2
    assert customer_import.column_mapping == {
        "name": 0,
        "email": 1,
        "company": 2,
        "region": 3,
        "lifecycle_stage": 4,
        "company_size": 5,
        "tags": 6,
    }


def test_good_file_imports_every_row(rep, teams):
    result = _run(rep, _upload(rep, GOOD))
    assert (result.created_count, result.error_count) == (2, 0)
    ann = Customer.objects.get(email="ann@a.example")
    assert ann.owner == rep
    assert ann.region == "emea"  # label "EMEA" matched case-insensitively
    assert ann.lifecycle_stage == "prospect"
    assert ann.company_size == 120
    assert sorted(ann.tags.values_list("name", flat=True)) == ["renewal", "vip"]
    assert Customer.objects.get(email="bob@b.example").region == "apac"


def test_bad_rows_are_reported_and_good_rows_kept(rep, teams):
    text = (
        "name,email,company_size,last_contact_date\n"
        "Good One,good@x.example,10,2026-01-05\n"
        ",noname@x.example,10,\n"
        "Bad Email,not-an-email,10,\n"
        "Bad Size,size@x.example,-4,\n"
        "Bad Date,date@x.example,3,31/31/2026\n"
        "Good Two,good2@x.example,,\n"
    )
    result = _run(rep, _upload(rep, text))
    assert result.created_count == 2
    assert result.error_count == 4
    assert [error["row"] for error in result.row_errors] == [3, 4, 5, 6]
    assert "email" in result.row_errors[1]["errors"]
    assert set(Customer.objects.values_list("email", flat=True)) == {
        "good@x.example",
        "good2@x.example",
    }


def test_duplicates_skip_mode(rep, teams):
    existing = CustomerFactory(owner=rep, email="ann@a.example", company="Old")
    result = _run(rep, _upload(rep, GOOD, mode="skip"))
    assert (result.created_count, result.updated_count, result.skipped_count) == (1, 0, 1)
    existing.refresh_from_db()
    assert existing.company == "Old"


def test_duplicates_update_mode(rep, teams):
    existing = CustomerFactory(owner=rep, email="ANN@a.example", company="Old")
    result = _run(rep, _upload(rep, GOOD, mode="update"))
    assert (result.created_count, result.updated_count) == (1, 1)
    existing.refresh_from_db()
    assert existing.company == "Archer Ltd"
    assert existing.company_size == 120


def test_update_mode_does_not_touch_someone_elses_customer(rep, other_rep, teams):
    theirs = CustomerFactory(owner=other_rep, email="ann@a.example", company="Theirs")
    result = _run(rep, _upload(rep, GOOD, mode="update"))
    assert result.updated_count == 0
    assert result.error_count == 1
    theirs.refresh_from_db()
    assert theirs.company == "Theirs"


def test_duplicate_email_within_the_file_is_a_row_error(rep, teams):
    text = "name,email\nA,same@x.example\nB,SAME@x.example\n"
    result = _run(rep, _upload(rep, text))
    assert result.created_count == 1
    assert result.row_errors[0]["row"] == 3


def test_owner_column_must_name_an_assignable_user(rep, other_rep, teams):
    text = f"name,email,owner\nA,a@x.example,{rep.username}\nB,b@x.example,{other_rep.username}\n"
    result = _run(rep, _upload(rep, text))
    assert result.created_count == 1
    assert "owner" in result.row_errors[0]["errors"]


@pytest.mark.parametrize(
    "content,message",
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00IHDR", "not a CSV file"),
        (b"", "empty"),
        (b"name,email\n", "at least one customer row"),
        (b"\xff\xfe\x00n\x00a", "not a CSV file"),
    ],
)
def test_files_that_are_not_usable_csv_are_refused(rep, teams, content, message):
    with pytest.raises(ValidationFailed) as error:
        _upload(rep, content, name="people.csv")
    assert message in error.value.message
    assert not CustomerImport.objects.exists()


def test_mapping_must_include_name_and_email(rep, teams):
    customer_import = _upload(rep, "who,where\nA,B\n")
    with pytest.raises(ValidationFailed) as error:
        _run(rep, customer_import)
    assert "Name" in error.value.message


def test_an_import_runs_once(rep, teams):
    customer_import = _upload(rep, GOOD)
    _run(rep, customer_import)
    with pytest.raises(ValidationFailed):
        _run(rep, customer_import)
    assert Customer.objects.count() == 2


def test_semicolon_separated_files_work(rep, teams):
    result = _run(rep, _upload(rep, "name;email\nSemi Colon;semi@x.example\n"))
    assert result.created_count == 1


# Through the pages ---------------------------------------------------------------------------


def test_import_flow_through_the_pages(rep_client, django_capture_on_commit_callbacks):
    upload = rep_client.post(
        reverse("customers:import_upload"),
        {"file": SimpleUploadedFile("c.csv", GOOD.encode()), "duplicate_mode": "skip"},
    )
    customer_import = CustomerImport.objects.get()
    assert upload["Location"] == reverse("customers:import_mapping", args=[customer_import.pk])
    mapping_page = rep_client.get(upload["Location"])
    assert b"Ann Archer" in mapping_page.content  # preview
    post = {f"map_{field}": "" for field in csv_import.IMPORTABLE_FIELDS}
    post.update({"map_name": "0", "map_email": "1", "map_company": "2", "duplicate_mode": "skip"})
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        done = rep_client.post(upload["Location"], post)
    # The background import, queued after commit; it queues one rescore for all its rows
    # (and, done, tells its uploader: a notification, pushed to their pages).
    queued = [c.__qualname__.split(".")[0] for c in callbacks]
    assert queued.count("customer_import_start") == 1
    assert queued.count("lead_rescore_later") == 1
    assert LeadScore.objects.filter(customer__in=Customer.objects.all()).count() == 2
    assert done["Location"] == reverse("customers:import_report", args=[customer_import.pk])
    report = rep_client.get(done["Location"])
    assert b"Every row was imported" in report.content
    assert Customer.objects.count() == 2


def test_non_csv_upload_shows_a_clear_error(rep_client):
    response = rep_client.post(
        reverse("customers:import_upload"),
        {"file": SimpleUploadedFile("x.csv", b"\x00\x01binary"), "duplicate_mode": "skip"},
    )
    assert response.status_code == 200
    assert "not a CSV file" in response.content.decode()


def test_mapping_the_same_column_twice_is_an_error(rep_client, rep):
    customer_import = _upload(rep, GOOD)
    post = {f"map_{field}": "" for field in csv_import.IMPORTABLE_FIELDS}
    post.update({"map_name": "0", "map_email": "0", "duplicate_mode": "skip"})
    response = rep_client.post(reverse("customers:import_mapping", args=[customer_import.pk]), post)
    assert response.status_code == 200
    assert "one field only" in response.content.decode()
    assert not Customer.objects.exists()


def test_another_users_import_is_404(other_rep_client, rep):
    customer_import = _upload(rep, GOOD)
    for name in ("import_mapping", "import_report"):
        url = reverse(f"customers:{name}", args=[customer_import.pk])
        assert other_rep_client.get(url).status_code == 404


def test_negative_revenue_is_a_row_error_not_a_failed_import(rep, teams):
    text = "name,email,annual_revenue\nGood,g@x.example,10\nBad,b@x.example,-5\n"
    result = _run(rep, _upload(rep, text))
    assert (result.created_count, result.error_count) == (1, 1)
    assert "annual_revenue" in result.row_errors[0]["errors"]


def test_import_runs_in_the_background_with_progress(rep_client, rep):
    customer_import = _upload(rep, GOOD)
    mapping_url = reverse("customers:import_mapping", args=[customer_import.pk])
    report_url = reverse("customers:import_report", args=[customer_import.pk])
    post = {f"map_{field}": "" for field in csv_import.IMPORTABLE_FIELDS}
    post.update({"map_name": "0", "map_email": "1", "duplicate_mode": "skip"})
    rep_client.post(mapping_url, post)  # on_commit never fires here: the task stays queued
    customer_import.refresh_from_db()
    assert customer_import.status == CustomerImport.Status.QUEUED
    progress = rep_client.get(report_url, headers={"HX-Request": "true"})
    assert b"<progress" in progress.content
    assert rep_client.get(mapping_url)["Location"] == report_url  # no second start

    csv_import.customer_import_execute(import_id=customer_import.pk)
    finished = rep_client.get(report_url, headers={"HX-Request": "true"})
    assert finished.status_code == 204
    assert finished["HX-Refresh"] == "true"
    assert b"Every row was imported" in rep_client.get(report_url).content


def test_execute_runs_a_queued_import_once(rep, teams):
    customer_import = _upload(rep, GOOD)
    csv_import.customer_import_start(
        actor=rep,
        customer_import=customer_import,
        mapping=customer_import.column_mapping,
        duplicate_mode="skip",
    )
    assert csv_import.customer_import_execute(import_id=customer_import.pk).created_count == 2
    assert csv_import.customer_import_execute(import_id=customer_import.pk) is None
    assert Customer.objects.count() == 2


def test_a_failing_import_records_why_and_writes_nothing(rep, teams, monkeypatch):
    customer_import = _upload(rep, GOOD)
    csv_import.customer_import_start(
        actor=rep,
        customer_import=customer_import,
        mapping=customer_import.column_mapping,
        duplicate_mode="skip",
    )

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(csv_import.writes.ImportWriter, "write", broken)
    with pytest.raises(RuntimeError):
        csv_import.customer_import_execute(import_id=customer_import.pk)
    customer_import.refresh_from_db()
    assert customer_import.status == CustomerImport.Status.FAILED
    assert "disk on fire" in customer_import.failure_reason
    assert not Customer.objects.exists()


# Consent and "an import never starts an email by itself" --------------------------------


@pytest.mark.parametrize("header", ["email_consent", "Consent", "has_newsletter", "Opt-In"])
def test_a_consent_column_is_recognised_by_its_usual_names(rep, teams, header):
    customer_import = _upload(rep, f"name,email,{header}\nAnn,ann@a.example,yes\n")
    assert customer_import.column_mapping["email_consent"] == 2


def test_consent_values_map_to_granted_or_withdrawn_and_a_blank_is_unknown(rep, teams):
    values = ["yes", "No", "TRUE", "false", "1", "0", "Opt-In", "opt-out", " ", "YES "]
    rows = "".join(f"P{i},p{i}@x.example,{value}\n" for i, value in enumerate(values))
    result = _run(rep, _upload(rep, "name,email,has_newsletter\n" + rows))
    assert (result.created_count, result.error_count) == (len(values), 0)
    found = dict(Customer.objects.values_list("email", "email_consent"))
    granted, withdrawn, unknown = "granted", "withdrawn", "unknown"
    expected = [granted, withdrawn, granted, withdrawn, granted, withdrawn, granted, withdrawn]
    assert [found[f"p{i}@x.example"] for i in range(len(values))] == [
        *expected,
        unknown,
        granted,
    ]
    assert set(Customer.objects.values_list("email_consent_source", flat=True)) == {"import"}


def test_without_a_consent_column_consent_is_unknown(rep, teams):
    _run(rep, _upload(rep, GOOD))
    assert set(Customer.objects.values_list("email_consent", flat=True)) == {"unknown"}


def test_any_other_consent_value_is_a_row_error_with_a_clear_message(rep, teams):
    result = _run(
        rep, _upload(rep, "name,email,consent\nAnn,ann@a.example,maybe\nBo,bo@b.example,y\n")
    )
    assert (result.created_count, result.error_count) == (0, 2)
    assert result.row_errors[0]["errors"] == {
        "email_consent": [
            "Email consent 'maybe' is not one of yes, no, true, false, 1, 0, opt-in, opt-out."
        ]
    }


def test_an_update_never_turns_a_withdrawal_back_into_consent(rep, teams):
    gone = CustomerFactory(owner=rep, email="gone@x.example", email_consent="withdrawn")
    unsure = CustomerFactory(owner=rep, email="unsure@x.example", email_consent="unknown")
    text = "name,email,consent\nGone,gone@x.example,yes\nUnsure,unsure@x.example,yes\n"
    result = _run(rep, _upload(rep, text, mode="update"))
    assert result.updated_count == 2
    gone.refresh_from_db()
    unsure.refresh_from_db()
    assert gone.email_consent == "withdrawn"
    assert (unsure.email_consent, unsure.email_consent_source) == ("granted", "import")


def test_a_1000_row_import_sends_nothing_even_after_every_beat_task_has_run(
    rep_client, rep, django_capture_on_commit_callbacks
):
    from campaigns.models import EmailDraft, OutboxMessage, SequenceEnrollment
    from crm.celery import app
    from leads.models import WorkflowRun

    hot = "5000,over_250k,immediate,decision_maker,referral"
    cold = ",,,,other"
    rows = "".join(
        f"Lead {i},lead{i}@x.example,{'false' if i % 3 == 0 else 'true'},"
        f"{hot if i % 10 == 0 else cold}\n"
        for i in range(1000)
    )
    header = "name,email,has_newsletter,employees,budget,timeline,authority,source\n"
    upload = rep_client.post(
        reverse("customers:import_upload"),
        {"file": SimpleUploadedFile("c.csv", (header + rows).encode()), "duplicate_mode": "skip"},
    )
    post = {f"map_{field}": "" for field in csv_import.IMPORTABLE_FIELDS}
    post.update(
        {
            f"map_{field}": str(column)
            for field, column in _upload(rep, header + rows).column_mapping.items()
        }
    )
    post["duplicate_mode"] = "skip"
    with django_capture_on_commit_callbacks(execute=True):
        rep_client.post(upload["Location"], post)
    assert Customer.objects.count() == 1000
    assert Customer.objects.filter(email_consent="granted").count() == 666
    graded = LeadScore.objects.exclude(grade="")
    assert graded.count() == 1000  # scored and graded
    assert graded.filter(grade="cold").count() > 0 and graded.exclude(grade="cold").count() > 0

    app.loader.import_default_modules()
    with django_capture_on_commit_callbacks(execute=True):
        for entry in settings.CELERY_BEAT_SCHEDULE.values():
            app.tasks[entry["task"]].apply(throw=True)
        for run_id in WorkflowRun.objects.values_list("pk", flat=True):
            app.tasks["leads.run_workflow"].apply(args=[run_id], throw=True)
    assert not SequenceEnrollment.objects.exists()
    assert not WorkflowRun.objects.exists() and not EmailDraft.objects.exists()
    assert mail.outbox == []
    assert not OutboxMessage.objects.exists()


# The mapping step's preview: the first rows under the chosen mapping ------------------------

EXPORT = (
    "first_name,last_name,email,region,last_seen,employees\n"
    "Shelley,Kerluke,shelley@k.example,EMEA,2024-03-01T10:00:00Z,120\n"
    "Ada,Lovelace,ada@l.example,Asia-Pacific,yesterday,15\n"
    + "".join(f"P{n},Q{n},p{n}@x.example,EMEA,2024-01-0{n},{n}\n" for n in range(1, 8))
)


def test_the_mapped_preview_shows_the_first_five_rows_as_they_will_be_imported(rep, teams):
    customer_import = _upload(rep, EXPORT)
    mapping = {"name": [0, 1], "email": 2, "region": 3, "last_contact_date": 4}
    labels, rows = csv_import.customer_import_mapped_preview(
        actor=rep, customer_import=customer_import, mapping=mapping
    )
    assert labels == ["Name", "Email", "Region", "Last contact date"]
    assert [row.line for row in rows] == [2, 3, 4, 5, 6]
    first, second = rows[0], rows[1]
    assert [cell["value"] for cell in first.cells] == [
        "Shelley Kerluke", "shelley@k.example", "Europe, Middle East & Africa", "2024-03-01",
    ]  # fmt: skip
    assert not first.refused
    assert second.refused
    refused = {cell["field"]: cell for cell in second.cells if cell["errors"]}
    assert list(refused) == ["last_contact_date"]
    assert refused["last_contact_date"]["value"] == "yesterday"  # the value as written
    assert refused["last_contact_date"]["errors"]
    assert not Customer.objects.exists()  # a preview writes nothing


def test_the_mapped_preview_refuses_a_mapping_the_import_would_refuse(rep, teams):
    customer_import = _upload(rep, EXPORT)
    with pytest.raises(ValidationFailed, match="one field only"):
        csv_import.customer_import_mapped_preview(
            actor=rep, customer_import=customer_import, mapping={"name": 0, "email": 0}
        )
    with pytest.raises(ValidationFailed, match="Email"):
        csv_import.customer_import_mapped_preview(
            actor=rep, customer_import=customer_import, mapping={"name": 0}
        )


def _mapping_post(**columns):
    post = {f"map_{field}": "" for field in csv_import.IMPORTABLE_FIELDS}
    post.update({"duplicate_mode": "skip", "action": "preview"})
    post.update({key: str(value) for key, value in columns.items()})
    return post


def test_the_mapping_page_previews_the_suggested_mapping(rep_client, rep):
    customer_import = _upload(rep, EXPORT)
    page = rep_client.get(reverse("customers:import_mapping", args=[customer_import.pk]))
    html = page.content.decode()
    assert "How the first rows will be imported" in html
    assert html.count("data-preview-row=") == 5
    assert "the suggested mapping" in html


def test_previewing_a_chosen_mapping_shows_it_and_imports_nothing(rep_client, rep):
    customer_import = _upload(rep, EXPORT)
    url = reverse("customers:import_mapping", args=[customer_import.pk])
    response = rep_client.post(url, _mapping_post(map_name=0, map_name_2=1, map_email=2))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<td data-field="name">Shelley Kerluke</td>' in html
    assert '<td data-field="name">Ada Lovelace</td>' in html
    assert 'data-field="region"' not in html  # not mapped in this preview
    customer_import.refresh_from_db()
    assert customer_import.status == CustomerImport.Status.MAPPING
    assert not Customer.objects.exists()


def test_previewing_an_unusable_mapping_says_why(rep_client, rep):
    customer_import = _upload(rep, EXPORT)
    url = reverse("customers:import_mapping", args=[customer_import.pk])
    response = rep_client.post(url, _mapping_post(map_name=0, map_email=0))
    assert response.status_code == 200
    assert "Each column can be mapped to one field only." in response.content.decode()
    assert "data-preview-row=" not in response.content.decode()


def test_another_rep_cannot_preview_a_reps_import(other_rep_client, rep):
    customer_import = _upload(rep, EXPORT)
    url = reverse("customers:import_mapping", args=[customer_import.pk])
    response = other_rep_client.post(url, _mapping_post(map_name=0, map_email=2))
    assert response.status_code == 404
    assert b"Shelley" not in response.content
