"""The sequence pages, a lead's sequences panel, the lead email settings and the email
drafts: who may see and change what, and what each page shows."""

from datetime import time

import pytest
from django.urls import reverse

from campaigns.models import EmailDraft, LeadEmailSettings, Sequence, SequenceEnrollment
from campaigns.sequences.builder import StepDraft, sequence_save
from campaigns.sequences.enrolment import customers_enrol
from customers.models import Customer
from tests.factories import CustomerFactory, CustomerSegmentFactory, EmailTemplateFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sequence(manager, teams):
    templates = [EmailTemplateFactory(created_by=manager) for _ in range(2)]
    return sequence_save(
        actor=manager,
        data={"name": "Nurture", "description": "", "is_active": True,
              "window_start": time(9), "window_end": time(17), "stop_at_grade": "warm"},
        steps=[StepDraft(template=templates[0], delay_days=0),
               StepDraft(template=templates[1], delay_days=3)],
    )  # fmt: skip


@pytest.fixture
def enrolled(sequence, rep, other_rep):
    mine = CustomerFactory(owner=rep, name="Mine Lead")
    theirs = CustomerFactory(owner=other_rep, name="Their Lead")
    customers_enrol(
        sequence=sequence, customers=Customer.objects.filter(pk__in=[mine.pk, theirs.pk])
    )
    return {"mine": mine, "theirs": theirs}


def test_a_manager_builds_a_sequence_from_templates(manager_client, manager):
    first, second = (EmailTemplateFactory(created_by=manager) for _ in range(2))
    response = manager_client.post(
        reverse("campaigns:sequence_new"),
        {"name": "Welcome", "description": "", "is_active": "on", "window_start": "09:00",
         "window_end": "17:00", "stop_at_grade": "warm",
         "steps-TOTAL_FORMS": "3", "steps-INITIAL_FORMS": "0", "steps-MIN_NUM_FORMS": "1",
         "steps-MAX_NUM_FORMS": "20",
         "steps-0-template": first.pk, "steps-0-delay_days": "0",
         "steps-1-template": second.pk, "steps-1-delay_days": "4",
         "steps-2-template": "", "steps-2-delay_days": "3"},
    )  # fmt: skip
    sequence = Sequence.objects.get(name="Welcome")
    assert response.status_code == 302
    steps = list(sequence.steps.order_by("position"))
    assert [(s.template_id, s.delay_days) for s in steps] == [(first.pk, 0), (second.pk, 4)]
    # Each step's campaign is hidden from the campaign list.
    listing = manager_client.get(reverse("campaigns:campaign_list"))
    assert steps[0].campaign.name not in listing.content.decode()


def test_a_bad_window_re_renders_the_builder_with_the_message(manager_client, manager):
    template = EmailTemplateFactory(created_by=manager)
    response = manager_client.post(
        reverse("campaigns:sequence_new"),
        {"name": "Late", "window_start": "18:00", "window_end": "09:00", "stop_at_grade": "",
         "steps-TOTAL_FORMS": "1", "steps-INITIAL_FORMS": "0", "steps-MIN_NUM_FORMS": "1",
         "steps-MAX_NUM_FORMS": "20", "steps-0-template": template.pk, "steps-0-delay_days": "1"},
    )  # fmt: skip
    assert response.status_code == 422
    assert "must end after it starts" in response.content.decode()
    assert not Sequence.objects.filter(name="Late").exists()


def test_a_rep_cannot_build_or_change_sequences(rep_client, sequence):
    for name, args in [("sequence_new", []), ("sequence_edit", [sequence.pk]),
                       ("sequence_delete", [sequence.pk]),
                       ("sequence_enrol_segment", [sequence.pk])]:  # fmt: skip
        assert rep_client.get(reverse(f"campaigns:{name}", args=args)).status_code in (403, 404)
    assert rep_client.post(
        reverse("campaigns:sequence_toggle", args=[sequence.pk])
    ).status_code in (403, 404)
    assert rep_client.get(reverse("campaigns:lead_email_settings")).status_code == 403
    assert (
        rep_client.get(
            reverse("campaigns:sequence_step_preview", args=[sequence.pk, 0])
        ).status_code
        == 403
    )
    sequence.refresh_from_db()
    assert sequence.is_active


def test_another_manager_cannot_change_a_sequence_outside_their_circle(
    client, other_manager, sequence, teams
):
    client.force_login(other_manager)
    assert client.get(reverse("campaigns:sequence_edit", args=[sequence.pk])).status_code == 404
    assert client.post(reverse("campaigns:sequence_toggle", args=[sequence.pk])).status_code == 404


def test_a_rep_sees_only_their_customers_enrolments(rep_client, sequence, enrolled):
    page = rep_client.get(reverse("campaigns:sequence_detail", args=[sequence.pk])).content.decode()
    assert "Mine Lead" in page
    assert "Their Lead" not in page
    theirs = SequenceEnrollment.objects.get(customer=enrolled["theirs"])
    response = rep_client.post(reverse("campaigns:enrollment_stop", args=[theirs.pk]))
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "active"
    other_panel = rep_client.get(
        reverse("campaigns:customer_sequences", args=[enrolled["theirs"].pk])
    )
    assert other_panel.status_code == 404


def test_a_lead_is_enrolled_and_stopped_from_its_page(rep_client, rep, sequence):
    lead = CustomerFactory(owner=rep)
    panel = rep_client.get(reverse("campaigns:customer_sequences", args=[lead.pk]))
    assert "Not in any sequence" in panel.content.decode()
    rep_client.post(reverse("campaigns:customer_enrol", args=[lead.pk]), {"sequence": sequence.pk})
    enrollment = SequenceEnrollment.objects.get(customer=lead, sequence=sequence)
    assert enrollment.status == "active" and enrollment.next_send_at is not None
    rep_client.post(reverse("campaigns:enrollment_stop", args=[enrollment.pk]))
    enrollment.refresh_from_db()
    assert (enrollment.status, enrollment.stop_reason) == ("stopped", "Stopped by hand")


def test_enrolling_a_lead_the_gate_refuses_says_why(rep_client, rep, sequence):
    lead = CustomerFactory(owner=rep, email_consent="withdrawn")
    response = rep_client.post(
        reverse("campaigns:customer_enrol", args=[lead.pk]), {"sequence": sequence.pk}, follow=True
    )
    assert "cannot be emailed: consent withdrawn" in response.content.decode()
    assert not SequenceEnrollment.objects.filter(customer=lead).exists()


def test_a_segment_shows_the_gates_counts_before_it_is_enrolled(
    manager_client, manager, rep, sequence
):
    CustomerFactory.create_batch(3, owner=rep, industry="retail")
    CustomerFactory(owner=rep, industry="retail", email_consent="unknown")
    CustomerFactory(owner=rep, industry="retail", email_consent="withdrawn")
    segment = CustomerSegmentFactory(created_by=manager, criteria={"industry": ["retail"]})
    url = reverse("campaigns:sequence_enrol_segment", args=[sequence.pk])
    preview = manager_client.get(url, {"segment": segment.pk}).content.decode()
    assert "<strong data-allowed>3</strong>" in preview
    assert "Skipped 2: 2 no consent" in preview
    assert not SequenceEnrollment.objects.exists()
    manager_client.post(url, {"segment": segment.pk})
    assert SequenceEnrollment.objects.filter(sequence=sequence).count() == 3


def test_the_sequence_list_and_detail_keep_a_fixed_number_of_queries(
    manager_client, rep, sequence, enrolled, django_assert_max_num_queries
):
    CustomerFactory.create_batch(30, owner=rep)
    customers_enrol(sequence=sequence, customers=Customer.objects.filter(owner=rep))
    with django_assert_max_num_queries(12):
        assert manager_client.get(reverse("campaigns:sequence_list")).status_code == 200
    with django_assert_max_num_queries(16):
        response = manager_client.get(reverse("campaigns:sequence_detail", args=[sequence.pk]))
    assert response.status_code == 200
    assert response.content.decode().count("data-enrollment=") == 25  # a page


def test_lead_email_settings_are_saved_by_a_manager(manager_client, manager, sequence):
    template = EmailTemplateFactory(created_by=manager)
    response = manager_client.post(
        reverse("campaigns:lead_email_settings"),
        {"cold_sequence": sequence.pk, "warm_template": template.pk, "hot_template": template.pk},
    )
    assert response.status_code == 302
    current = LeadEmailSettings.current()
    assert (current.cold_sequence, current.warm_template, current.send_automatically) == (
        sequence, template, False,
    )  # fmt: skip


def test_a_draft_is_sent_by_its_rep_and_refused_to_another(
    rep_client, rep, other_rep, client, teams, settings
):
    settings.EMAIL_BACKEND = "campaigns.mail.CrmEmailBackend"  # the outbox, as in production
    customer = CustomerFactory(owner=rep)
    draft = EmailDraft.objects.create(
        customer=customer, rep=rep, subject="Hello", text_body="Hi there"
    )
    client.force_login(other_rep)
    assert client.get(reverse("campaigns:draft_detail", args=[draft.pk])).status_code == 404
    assert client.post(reverse("campaigns:draft_send", args=[draft.pk])).status_code == 404
    client.force_login(rep)
    assert (
        "Hi there"
        in client.get(reverse("campaigns:draft_detail", args=[draft.pk])).content.decode()
    )
    client.post(reverse("campaigns:draft_send", args=[draft.pk]))
    draft.refresh_from_db()
    assert draft.status == "sent"
    from campaigns.models import OutboxMessage

    sent = OutboxMessage.objects.get(to_email=customer.email)
    assert sent.headers.get("Reply-To") == rep.email


def test_a_draft_sent_through_sendgrid_replies_to_the_rep(rep, settings, fake_sendgrid, teams):
    from campaigns.drafts import draft_send

    settings.EMAIL_BACKEND = "campaigns.mail.CrmEmailBackend"
    rep.first_name, rep.last_name = "Rita", "Rep"
    rep.save()
    customer = CustomerFactory(owner=rep, email="lead@client.example")
    draft = EmailDraft.objects.create(customer=customer, rep=rep, subject="Hi", text_body="Hi")
    draft_send(actor=rep, draft=draft)
    [request] = fake_sendgrid.accepted
    assert request.payload["reply_to"] == {"email": rep.email}
    assert request.payload["from"]["name"] == "Rita Rep"
    assert "headers" not in request.payload


def test_the_import_confirmation_offers_enrolment_off_by_default_and_enrols_on_choice(
    rep_client, rep, sequence, django_capture_on_commit_callbacks
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from customers import csv_import
    from customers.models import CustomerImport

    rows = "name,email,consent\nAnn Yes,ann@new.example,yes\nBo No,bo@new.example,no\n"
    upload = rep_client.post(
        reverse("customers:import_upload"),
        {"file": SimpleUploadedFile("c.csv", rows.encode()), "duplicate_mode": "skip"},
    )
    page = rep_client.get(upload["Location"]).content.decode()
    assert "Enrol the new leads in an email sequence" in page
    assert '<option value="" selected>Do not enrol anyone</option>' in page
    post = {f"map_{field}": "" for field in csv_import.IMPORTABLE_FIELDS}
    post.update({"map_name": "0", "map_email": "1", "map_email_consent": "2",
                 "duplicate_mode": "skip", "enrol_sequence": str(sequence.pk)})  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        rep_client.post(upload["Location"], post)
    assert CustomerImport.objects.get().status == "done"
    enrolled = SequenceEnrollment.objects.filter(sequence=sequence)
    assert list(enrolled.values_list("customer__email", flat=True)) == ["ann@new.example"]


def test_an_import_cannot_enrol_in_a_sequence_that_is_not_offered(
    rep_client, rep, sequence, django_capture_on_commit_callbacks
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from customers import csv_import

    sequence.is_active = False
    sequence.save()
    upload = rep_client.post(
        reverse("customers:import_upload"),
        {"file": SimpleUploadedFile("c.csv", b"name,email\nAnn,ann@new.example\n"),
         "duplicate_mode": "skip"},
    )  # fmt: skip
    post = {f"map_{field}": "" for field in csv_import.IMPORTABLE_FIELDS}
    post.update({"map_name": "0", "map_email": "1", "duplicate_mode": "skip",
                 "enrol_sequence": str(sequence.pk)})  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = rep_client.post(upload["Location"], post)
    assert response.status_code == 302  # imported; a paused sequence is not on offer
    assert Customer.objects.filter(email="ann@new.example").exists()
    assert not SequenceEnrollment.objects.exists()


def test_another_rep_cannot_enrol_their_lead_or_discard_their_draft(
    other_rep_client, rep, sequence
):
    lead = CustomerFactory(owner=rep)
    draft = EmailDraft.objects.create(customer=lead, rep=rep, subject="Hi", text_body="Hi")
    enrol = reverse("campaigns:customer_enrol", args=[lead.pk])
    assert other_rep_client.post(enrol, {"sequence": sequence.pk}).status_code == 404
    discard = reverse("campaigns:draft_discard", args=[draft.pk])
    assert other_rep_client.post(discard).status_code == 404
    draft.refresh_from_db()
    assert draft.status == "draft" and not SequenceEnrollment.objects.filter(customer=lead).exists()
