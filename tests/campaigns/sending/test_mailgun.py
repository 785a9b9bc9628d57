"""campaigns.sending.mailgun: campaigns and sequence steps sent through Mailgun's batch
sending (recipient-variables), through the official SDK, against the fake Mailgun."""

import json

import pytest
from django.urls import reverse

from campaigns import sending
from campaigns.forms import CampaignForm, SequenceForm
from campaigns.models import CampaignRun, EmailCampaign, EmailMessage, SendBatch
from campaigns.sending import batches, provider
from campaigns.sending import mailgun as mailgun_module
from campaigns.sending.mailgun import Mailgun
from campaigns.sending.provider import OutgoingBatch, Recipient, TransientSendError
from campaigns.services import campaign_save
from campaigns.templating import SubstitutionPlan
from crm.errors import ValidationFailed
from crm.services import send_email
from tests.factories import EmailCampaignFactory

pytestmark = pytest.mark.django_db


def test_a_campaign_goes_out_in_batches_nobody_seeing_anyone_elses_address(
    send_now, campaign, audience, fake_mailgun, settings
):
    settings.SENDGRID_API_KEY = ""
    settings.CAMPAIGN_BATCH_SIZE = 3
    campaign = send_now(campaign)
    assert len(fake_mailgun.accepted) == 2
    deliveries = fake_mailgun.deliveries()
    mine = sorted(c.email for c in audience["mine"])
    assert sorted(address for d in deliveries for address in d.to) == mine
    assert all(len(d.to) == 1 for d in deliveries)  # To: only the recipient
    for delivery in deliveries:
        others = set(mine) - set(delivery.to)
        seen = delivery.subject + delivery.text + delivery.html + str(delivery.headers)
        assert not any(other in seen for other in others)
    bob = next(d for d in deliveries if d.to == ["bob@b.example"])
    message = EmailMessage.objects.get(email="bob@b.example")
    assert bob.variables["email_message_id"] == str(message.pk)
    assert bob.variables["batch_key"].startswith("batch-")
    assert bob.tags == [f"campaign-{campaign.pk}"]
    assert bob.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = bob.headers["List-Unsubscribe"][1:-1]
    assert "/u/" in link and f'href="{link}"' in bob.html
    assert "B &amp; Co" in bob.html and "Hi Bob," in bob.html
    assert campaign.status == "sent" and campaign.sent_count == 5
    assert message.provider_message_id.endswith("@mg.example.com")
    assert set(SendBatch.objects.values_list("status", flat=True)) == {"sent"}
    assert provider.provider_name() == "mailgun"


# Which provider sends ----------------------------------------------------------------------


@pytest.fixture
def both(fake_sendgrid, fake_mailgun, settings):
    """SendGrid and Mailgun both configured; SendGrid, listed first, is the default."""
    settings.EMAIL_DEFAULT_PROVIDER = ""
    return fake_sendgrid, fake_mailgun


def test_with_both_configured_a_campaign_may_pick_mailgun_and_others_use_the_default(
    send_now, campaign, audience, both, manager, settings
):
    sendgrid, mailgun = both
    assert provider.configured_providers() == ["sendgrid", "mailgun"]
    assert provider.provider_name() == "sendgrid"
    other = EmailCampaignFactory(
        created_by=manager, template=campaign.template, segment=campaign.segment, status="draft"
    )
    campaign.provider = "mailgun"
    campaign.save()
    send_now(campaign)
    send_now(other)
    assert sorted(mailgun.recipients()) == sorted(c.email for c in audience["mine"])
    assert sorted(sendgrid.recipients()) == sorted(c.email for c in audience["mine"])
    assert {run.campaign_id: run.provider for run in CampaignRun.objects.all()} == {
        campaign.pk: "mailgun",
        other.pk: "sendgrid",
    }
    settings.EMAIL_DEFAULT_PROVIDER = "mailgun"
    assert provider.provider_name() == "mailgun"


def test_single_emails_go_through_the_default_provider(both, settings):
    settings.EMAIL_BACKEND = "campaigns.mail.CrmEmailBackend"
    sendgrid, mailgun = both
    settings.EMAIL_DEFAULT_PROVIDER = "mailgun"
    send_email(to="Ann <ann@a.example>", subject="Hello", text="Plain", html="<p>Rich</p>")
    assert not sendgrid.accepted
    (delivery,) = mailgun.deliveries()
    assert (delivery.to, delivery.subject, delivery.text, delivery.html) == (
        ["ann@a.example"],
        "Hello",
        "Plain",
        "<p>Rich</p>",
    )
    settings.EMAIL_DEFAULT_PROVIDER = ""
    send_email(to="bob@b.example", subject="Hi", text="Plain")
    assert len(sendgrid.accepted) == 1 and len(mailgun.accepted) == 1


def test_the_provider_field_is_offered_only_when_both_are_configured(manager, both, settings):
    form = CampaignForm(user=manager)
    assert [value for value, _ in form.fields["provider"].choices] == ["", "sendgrid", "mailgun"]
    settings.SENDGRID_API_KEY = ""
    assert "provider" not in CampaignForm(user=manager).fields
    assert "provider" not in SequenceForm().fields


def test_a_campaign_cannot_name_a_provider_that_is_not_configured(manager, fake_sendgrid):
    with pytest.raises(ValidationFailed) as refused:
        campaign_save(
            actor=manager,
            data={"name": "x", "provider": "mailgun", "campaign_type": "newsletter"},
        )
    assert refused.value.field == "provider"


def test_a_run_whose_provider_was_unconfigured_pauses_with_the_reason(
    campaign, audience, fake_mailgun, settings
):
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    # A first sender fixed Mailgun (and sent part of it); then the key was removed.
    CampaignRun.objects.filter(pk=run.pk).update(provider="mailgun")
    settings.MAILGUN_API_KEY = ""
    assert sending.run_send(run_id=run.pk) == "provider not configured"
    run.refresh_from_db()
    assert run.status == "paused" and "Mailgun is no longer configured" in run.last_error
    assert not fake_mailgun.accepted


# Failures and the exactly-once machinery ---------------------------------------------------


def test_a_429_or_5xx_requeues_the_batch_and_the_retry_sends_it_once(
    campaign, audience, fake_mailgun, settings
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    fake_mailgun.fail_next(429)
    with pytest.raises(TransientSendError, match="429"):
        sending.run_send(run_id=run.pk, sender="task-1")
    fake_mailgun.fail_next(503)
    with pytest.raises(TransientSendError, match="503"):
        sending.run_send(run_id=run.pk, sender="task-1")  # the task's retry: same sender
    assert sending.run_send(run_id=run.pk, sender="task-1") == "sent"
    recipients = fake_mailgun.recipients()
    assert sorted(recipients) == sorted(c.email for c in audience["mine"])
    assert len(set(recipients)) == len(recipients) == 5
    statuses = list(SendBatch.objects.order_by("id").values_list("status", flat=True))
    assert statuses == ["requeued", "requeued", "sent", "sent", "sent"]
    assert fake_mailgun.requests_seen == 5


def test_a_4xx_fails_its_batch_with_mailguns_message_and_the_rest_still_go(
    send_now, campaign, audience, fake_mailgun, settings
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    fake_mailgun.fail_next(400, message="'from' parameter is not a valid address")
    campaign = send_now(campaign)
    failed = SendBatch.objects.get(status="failed")
    assert failed.error == "Mailgun 400: 'from' parameter is not a valid address"
    assert len(fake_mailgun.recipients()) == 3
    assert (campaign.failed_count, campaign.sent_count) == (2, 3)
    assert "not a valid address" in CampaignRun.objects.get().last_error


def test_a_wrong_api_key_fails_the_batches_with_mailguns_answer(
    send_now, campaign, audience, fake_mailgun, settings
):
    settings.MAILGUN_API_KEY = "key-wrong"
    campaign = send_now(campaign)
    assert campaign.failed_count == 5 and not fake_mailgun.accepted
    assert SendBatch.objects.get().error.startswith("Mailgun 401")


def test_a_timeout_leaves_the_batch_in_flight_and_mailguns_events_settle_it(
    campaign, audience, fake_mailgun, settings
):
    settings.MAILGUN_TIMEOUT_SECONDS = 0.3
    fake_mailgun.delay = 1  # accepted, then too slow to answer
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    with pytest.raises(TransientSendError, match="did not answer in time"):
        sending.run_send(run_id=run.pk, sender="task-1")
    assert SendBatch.objects.get().status == "sending"  # not re-queued: it may have gone
    fake_mailgun.delay = 0
    assert sending.run_send(run_id=run.pk, sender="task-1") == "sent"  # the task's retry
    recipients = fake_mailgun.recipients()
    assert sorted(recipients) == sorted(c.email for c in audience["mine"])
    assert len(fake_mailgun.accepted) == 1 and len(recipients) == 5
    assert SendBatch.objects.get().error == "Accepted before its worker stopped."


def test_connection_refused_requeues_the_batch(campaign, audience, fake_mailgun, settings):
    settings.MAILGUN_API_URL = "http://127.0.0.1:9"  # nothing listens: never sent
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    with pytest.raises(TransientSendError, match="unreachable"):
        sending.run_send(run_id=run.pk, sender="task-1")
    assert SendBatch.objects.get().status == "requeued"


def test_a_batch_in_flight_when_its_worker_died_and_accepted_is_not_sent_again(
    claimed_batch, campaign, audience, fake_mailgun, settings
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    run, batch = claimed_batch(campaign)
    plan = SubstitutionPlan(subject="s", html="h", text="t")
    Mailgun().send_batch(batches.batch_outgoing(run, batch, plan))  # accepted; then the crash
    assert sending.run_send(run_id=run.pk) == "sent"
    recipients = fake_mailgun.recipients()
    assert sorted(recipients) == sorted(c.email for c in audience["mine"])
    assert len(recipients) == 5
    batch.refresh_from_db()
    assert (batch.status, batch.error) == ("sent", "Accepted before its worker stopped.")


def test_a_batch_in_flight_that_never_arrived_is_sent_on_resume(
    claimed_batch, campaign, audience, fake_mailgun, settings
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    settings.CAMPAIGN_INFLIGHT_SETTLE_SECONDS = 0
    run, batch = claimed_batch(campaign)
    # Another batch's accepted event for the same recipient is no proof for this one.
    fake_mailgun.add_event(
        {"event": "accepted", "recipient": "ann@a.example",
         "user-variables": {"batch_key": "batch-999999"}}
    )  # fmt: skip
    assert sending.run_send(run_id=run.pk) == "sent"
    assert sorted(fake_mailgun.recipients()) == sorted(c.email for c in audience["mine"])
    assert SendBatch.objects.get(pk=batch.pk).status == "requeued"


def test_a_recent_unconfirmed_batch_waits_for_mailguns_events(
    claimed_batch, campaign, audience, fake_mailgun, settings
):
    settings.CAMPAIGN_BATCH_SIZE = 2
    run, batch = claimed_batch(campaign)
    assert sending.run_send(run_id=run.pk) == "waiting for the provider"
    assert {"ann@a.example", "bob@b.example"}.isdisjoint(fake_mailgun.recipients())
    assert len(fake_mailgun.recipients()) == 3


def test_the_payload_uses_recipient_variables_and_at_most_1000_recipients(settings):
    recipients = [
        Recipient(i, f"user{i}@x.example", f"User, {i}", {"[[k-0]]": f"v{i}"}, f"https://u/{i}")
        for i in range(3)
    ]
    batch = OutgoingBatch(key="batch-7", campaign_id=9, from_email="CRM <crm@example.com>",
                          subject="Hi [[k-0]]", html="<p>[[k-0]]</p>", text="[[k-0]]",
                          recipients=recipients)  # fmt: skip
    fields = mailgun_module.batch_payload(batch)
    values = dict(fields)
    assert [v for k, v in fields if k == "to"][0] == '"User, 0" <user0@x.example>'
    assert values["subject"] == "Hi %recipient.s0%"
    assert json.loads(values["recipient-variables"])["user2@x.example"] == {
        "s0": "v2", "message_id": "2", "unsubscribe_url": "https://u/2"
    }  # fmt: skip
    assert values["v:email_message_id"] == "%recipient.message_id%"
    assert values["h:List-Unsubscribe"] == "<%recipient.unsubscribe_url%>"
    assert values["o:tag"] == "campaign-9"
    settings.MAILGUN_API_URL, settings.MAILGUN_REGION = "", "eu"
    assert mailgun_module.api_url() == "https://api.eu.mailgun.net"
    settings.MAILGUN_REGION = "us"
    assert mailgun_module.api_url() == "https://api.mailgun.net"


def test_a_manager_picks_mailgun_in_the_campaign_form(
    manager_client, campaign, audience, both, django_capture_on_commit_callbacks
):
    sendgrid, mailgun = both
    page = manager_client.get(reverse("campaigns:campaign_new")).content.decode()
    assert 'name="provider"' in page and "Default (SendGrid)" in page
    response = manager_client.post(
        reverse("campaigns:campaign_new"),
        {"name": "Via Mailgun", "campaign_type": "announcement", "template": campaign.template_id,
         "segment": campaign.segment_id, "subject": "", "provider": "mailgun"},
    )  # fmt: skip
    created = EmailCampaign.objects.get(name="Via Mailgun")
    assert response["Location"] == created.get_absolute_url() and created.provider == "mailgun"
    with django_capture_on_commit_callbacks(execute=True):
        manager_client.post(reverse("campaigns:campaign_action", args=[created.pk, "send"]))
    assert len(mailgun.recipients()) == 5 and not sendgrid.accepted
    detail = manager_client.get(created.get_absolute_url()).content.decode()
    assert "via Mailgun" in detail
    refused = manager_client.post(
        reverse("campaigns:campaign_new"),
        {"name": "Bad", "campaign_type": "announcement", "template": campaign.template_id,
         "segment": campaign.segment_id, "subject": "", "provider": "postmark"},
    )  # fmt: skip
    assert refused.status_code == 422 and not EmailCampaign.objects.filter(name="Bad").exists()


def test_names_are_quoted_and_non_ascii_addresses_go_as_they_are(fake_mailgun):
    recipients = [
        Recipient(1, "müller@example.de", 'Jo "JJ" Müller', {}, "https://u/1"),
        Recipient(2, "ann@a.example", "Smith, Ann\r\nBcc: x@evil.example", {}, "https://u/2"),
    ]
    batch = OutgoingBatch(key="batch-1", campaign_id=1, from_email="CRM <crm@example.com>",
                          subject="s", html="", text="t", recipients=recipients)  # fmt: skip
    to = [value for key, value in mailgun_module.batch_payload(batch) if key == "to"]
    assert to == ['"Jo \\"JJ\\" Müller" <müller@example.de>',
                  '"Smith, Ann Bcc: x@evil.example" <ann@a.example>']  # fmt: skip
    Mailgun().send_batch(batch)
    assert sorted(fake_mailgun.recipients()) == ["ann@a.example", "müller@example.de"]
