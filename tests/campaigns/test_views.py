import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from campaigns import sending
from campaigns.models import CustomerSegment, EmailCampaign, EmailTemplate, OutboxMessage
from customers.models import Suppression
from tests.factories import (
    CustomerFactory,
    CustomerSegmentFactory,
    EmailCampaignFactory,
    EmailTemplateFactory,
    ManagerFactory,
    unreachable_customers,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_campaign(campaign, fake_sendgrid):
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    sending.run_send(run_id=run.pk)
    campaign.refresh_from_db()
    return campaign


def _manager_urls(campaign):
    template, segment = campaign.template, campaign.segment
    return [
        reverse("campaigns:campaign_new"),
        reverse("campaigns:campaign_edit", args=[campaign.pk]),
        reverse("campaigns:campaign_delete", args=[campaign.pk]),
        reverse("campaigns:template_list"),
        reverse("campaigns:template_new"),
        reverse("campaigns:template_edit", args=[template.pk]),
        reverse("campaigns:template_preview", args=[template.pk]),
        reverse("campaigns:segment_list"),
        reverse("campaigns:segment_new"),
        reverse("campaigns:segment_edit", args=[segment.pk]),
        reverse("campaigns:outbox"),
    ]


def test_manager_pages_render(manager_client, sent_campaign):
    for url in [
        reverse("campaigns:campaign_list"),
        reverse("campaigns:campaign_detail", args=[sent_campaign.pk]),
        reverse("campaigns:campaign_progress", args=[sent_campaign.pk]),
        *_manager_urls(sent_campaign),
    ]:
        assert manager_client.get(url).status_code == 200, url


def test_reps_are_refused_every_manager_page_and_action(rep_client, sent_campaign):
    for url in _manager_urls(sent_campaign):
        assert rep_client.get(url).status_code == 403, url
    for action in ("send", "pause", "resume", "cancel"):
        url = reverse("campaigns:campaign_action", args=[sent_campaign.pk, action])
        assert rep_client.post(url).status_code == 403
    url = reverse("campaigns:campaign_schedule", args=[sent_campaign.pk])
    assert rep_client.post(url, {"when": "cron", "cron": "0 9 * * 1"}).status_code == 403
    assert rep_client.post(reverse("campaigns:segment_count"), {}).status_code == 403


def test_a_rep_sees_the_campaign_that_mailed_their_customers_and_only_their_recipients(
    rep_client, sent_campaign, audience
):
    page = rep_client.get(reverse("campaigns:campaign_list")).content.decode()
    assert sent_campaign.name in page
    detail = rep_client.get(reverse("campaigns:campaign_detail", args=[sent_campaign.pk]))
    body = detail.content.decode()
    assert "ann@a.example" in body and "cy@c.example" not in body  # cy is the teammate's
    assert "Send now" not in body and "Pause" not in body


def test_another_rep_and_another_manager_get_404(
    other_rep_client, sent_campaign, client, other_manager
):
    for url in (
        reverse("campaigns:campaign_detail", args=[sent_campaign.pk]),
        reverse("campaigns:campaign_progress", args=[sent_campaign.pk]),
    ):
        assert other_rep_client.get(url).status_code == 404
    client.force_login(other_manager)
    assert (
        client.get(reverse("campaigns:campaign_detail", args=[sent_campaign.pk])).status_code == 404
    )
    url = reverse("campaigns:campaign_action", args=[sent_campaign.pk, "cancel"])
    assert client.post(url).status_code == 404
    assert sent_campaign.name not in client.get(reverse("campaigns:campaign_list")).content.decode()


def test_anonymous_users_are_sent_to_login(client, sent_campaign):
    response = client.get(reverse("campaigns:campaign_detail", args=[sent_campaign.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_campaign_page_shows_funnel_progress_and_recipients(manager_client, sent_campaign):
    body = manager_client.get(reverse("campaigns:campaign_detail", args=[sent_campaign.pk])).content
    body = body.decode()
    assert "<strong>5</strong> sent of <strong>5</strong>" in body
    assert "data-funnel" in body and "ann@a.example" in body


def test_template_save_reports_unknown_variables(manager_client):
    response = manager_client.post(
        reverse("campaigns:template_new"),
        {
            "name": "Hello",
            "category": "other",
            "subject": "Hi {{ first_name }}",
            "html_body": "<p>{{ nickname }}</p>",
            "text_body": "{{ settings.SECRET_KEY }}",
            "is_active": "on",
        },
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert "Unknown variable “nickname”" in body and "is not a variable" in body
    assert not EmailTemplate.objects.exists()


def test_template_preview_and_test_send(manager_client, manager, audience):
    template = EmailTemplateFactory(created_by=manager)
    ann = audience["mine"][0]
    preview = manager_client.get(
        reverse("campaigns:template_preview", args=[template.pk]), {"customer": ann.pk}
    )
    assert "Hi Ann" in preview.content.decode()
    manager.email = "manager@example.com"
    manager.save()
    response = manager_client.post(
        reverse("campaigns:template_send_test", args=[template.pk]), {"customer": ann.pk}
    )
    assert response.status_code == 302
    (sent,) = mail.outbox
    assert sent.to == ["manager@example.com"] and sent.subject.startswith("[Test] News for")


def test_a_test_send_to_yourself_bypasses_the_email_gate(manager_client, manager, rep):
    """The gate judges recipients; a test send's recipient is the manager, rendered for a
    customer the gate refuses (and the manager's own address is suppressed too)."""
    template = EmailTemplateFactory(created_by=manager)
    withdrawn, _refusal = unreachable_customers(owner=rep)["withdrawn"]
    manager.email = "manager@example.com"
    manager.save()
    Suppression.objects.create(email="manager@example.com", reason="bounce")
    response = manager_client.post(
        reverse("campaigns:template_send_test", args=[template.pk]), {"customer": withdrawn.pk}
    )
    assert response.status_code == 302
    assert [message.to for message in mail.outbox] == [["manager@example.com"]]


def test_preview_never_renders_a_customer_the_manager_cannot_see(manager_client, manager, audience):
    template = EmailTemplateFactory(created_by=manager)
    zed = audience["theirs"]
    preview = manager_client.get(
        reverse("campaigns:template_preview", args=[template.pk]), {"customer": zed.pk}
    )
    assert "Zed" not in preview.content.decode()


def test_segment_builder_saves_criteria_and_counts_live(manager_client, audience, rep):
    count = manager_client.post(reverse("campaigns:segment_count"), {"region": ["emea"]})
    assert "customer" in count.content.decode()
    response = manager_client.post(
        reverse("campaigns:segment_new"),
        {"name": "EMEA of rep", "region": ["emea"], "owner": [rep.pk]},
    )
    assert response.status_code == 302
    segment = CustomerSegment.objects.get(name="EMEA of rep")
    assert segment.criteria == {"region": ["emea"], "owner": [rep.pk]}
    # All audience customers default to region emea (factory), rep owns three of them.
    assert segment.customer_count == 3


def test_segment_count_reports_bad_ranges(manager_client):
    response = manager_client.post(
        reverse("campaigns:segment_count"), {"score_min": "80", "score_max": "20"}
    )
    assert "above" in response.content.decode()


def test_campaign_create_send_and_outbox(manager_client, manager, audience, settings):
    settings.SENDGRID_API_KEY = ""
    template = EmailTemplateFactory(created_by=manager)
    segment = CustomerSegmentFactory(created_by=manager)
    response = manager_client.post(
        reverse("campaigns:campaign_new"),
        {"name": "Launch", "campaign_type": "announcement", "template": template.pk,
         "segment": segment.pk, "subject": ""},
    )  # fmt: skip
    campaign = EmailCampaign.objects.get(name="Launch")
    assert response["Location"] == campaign.get_absolute_url()
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        manager_client.post(reverse("campaigns:campaign_action", args=[campaign.pk, "send"]))
    campaign.refresh_from_db()
    assert campaign.status == "sent" and campaign.sent_count == 5
    outbox = manager_client.get(reverse("campaigns:outbox")).content.decode()
    assert "ann@a.example" in outbox
    message = OutboxMessage.objects.get(to_email="ann@a.example")
    page = manager_client.get(reverse("campaigns:outbox_message", args=[message.pk]))
    assert "News for" in page.content.decode()


def test_schedule_once_and_cron_create_beat_tasks_and_cancel_removes_them(manager_client, campaign):
    url = reverse("campaigns:campaign_schedule", args=[campaign.pk])
    later = (timezone.localtime() + timezone.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    manager_client.post(url, {"when": "at", "send_at": later})
    campaign.refresh_from_db()
    assert campaign.status == "scheduled" and campaign.periodic_task.clocked is not None
    assert campaign.periodic_task.one_off
    manager_client.post(url, {"when": "cron", "cron": "0 9 * * 1"})
    campaign.refresh_from_db()
    task = campaign.periodic_task
    assert task.task == "campaigns.start_cron_run" and task.crontab.hour == "9"
    assert str(task.crontab.timezone) == settings.TIME_ZONE
    assert PeriodicTask.objects.filter(name__startswith=f"Campaign {campaign.pk}:").count() == 1
    manager_client.post(reverse("campaigns:campaign_action", args=[campaign.pk, "cancel"]))
    assert not PeriodicTask.objects.filter(name__startswith=f"Campaign {campaign.pk}:").exists()


def test_bad_cron_and_past_dates_are_refused_with_a_message(manager_client, campaign):
    url = reverse("campaigns:campaign_schedule", args=[campaign.pk])
    response = manager_client.post(url, {"when": "cron", "cron": "every monday"}, follow=True)
    assert "five fields" in response.content.decode()
    response = manager_client.post(url, {"when": "at", "send_at": "2001-01-01T09:00"}, follow=True)
    assert "in the past" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_campaign_list_query_count_is_fixed(manager_client, manager, django_assert_max_num_queries):
    for _ in range(15):
        EmailCampaignFactory(created_by=manager)
    with django_assert_max_num_queries(5):
        assert manager_client.get(reverse("campaigns:campaign_list")).status_code == 200


def test_delete_asks_first_then_deletes(manager_client, campaign):
    url = reverse("campaigns:campaign_delete", args=[campaign.pk])
    assert "cannot be undone" in manager_client.get(url).content.decode()
    manager_client.post(url)
    assert not EmailCampaign.objects.filter(pk=campaign.pk).exists()


def test_a_co_manager_of_the_team_sees_the_campaign(client, sent_campaign, teams):
    co_manager = ManagerFactory(username="co_manager")
    teams["mine"].managers.add(co_manager)
    client.force_login(co_manager)
    assert (
        client.get(reverse("campaigns:campaign_detail", args=[sent_campaign.pk])).status_code == 200
    )


def test_customer_page_panel_lists_the_campaign_emails_received(
    rep_client, sent_campaign, audience
):
    ann = audience["mine"][0]
    panel = rep_client.get(reverse("campaigns:customer_emails", args=[ann.pk]))
    assert sent_campaign.name in panel.content.decode()


def test_another_rep_cannot_read_a_customers_campaign_emails(other_rep_client, audience):
    url = reverse("campaigns:customer_emails", args=[audience["mine"][0].pk])
    assert other_rep_client.get(url).status_code == 404


@pytest.mark.parametrize("extra", [0, 20])
def test_list_pages_run_a_fixed_number_of_queries(
    manager_client, manager, sent_campaign, extra, django_assert_max_num_queries
):
    """The same query count with a few rows or many more."""
    from tests.factories import CustomerFactory

    for index in range(extra):
        EmailTemplateFactory(created_by=manager)
        CustomerSegmentFactory(created_by=manager)
        OutboxMessage.objects.create(
            to_email=f"manager{index}@example.com", from_email="x@y.example", subject="s",
            message_id=str(index),
        )  # fmt: skip
        CustomerFactory(owner=manager)
    for url, limit in [
        (reverse("campaigns:template_list"), 5),
        (reverse("campaigns:segment_list"), 5),
        (reverse("campaigns:outbox"), 5),
        (
            reverse("campaigns:campaign_detail", args=[sent_campaign.pk]),
            18,
        ),  # +1: the email gate's skip counts
    ]:
        with django_assert_max_num_queries(limit):
            assert manager_client.get(url).status_code == 200, url


def test_the_campaign_page_shows_whom_the_email_gate_skipped_and_why(
    manager_client, campaign, audience, fake_sendgrid, rep
):
    unreachable_customers(owner=rep)
    CustomerFactory(owner=rep, email="unknown@x.example", email_consent="unknown")
    campaign.status = EmailCampaign.Status.SENDING
    campaign.save()
    run = sending.run_start(campaign_id=campaign.pk, run_key="once")
    sending.run_send(run_id=run.pk)
    page = manager_client.get(reverse("campaigns:campaign_detail", args=[campaign.pk]))
    body = page.content.decode()
    assert 'data-skipped="6"' in body
    assert "Skipped 6: 4 suppressed, 2 no consent" in body
    for reason in (
        "bounced 1",
        "consent withdrawn 1",
        "dropped by the provider 1",
        "no consent 1",
        "spam report 1",
        "unsubscribed 1",
    ):
        assert reason in body


def test_the_live_segment_count_says_how_many_the_gate_lets_through(manager_client, rep, teams):
    CustomerFactory.create_batch(2, owner=rep, region="apac")
    CustomerFactory(owner=rep, region="apac", email_consent="unknown")
    CustomerFactory(owner=rep, region="apac", email="not-an-address")
    page = manager_client.post(reverse("campaigns:segment_count"), {"region": ["apac"]})
    text = " ".join(page.content.decode().split())
    assert "<strong>4</strong> customers match" in text
    assert "<strong data-reachable>2</strong> may get marketing email" in text
    assert "(not 2: 1 invalid, 1 no consent)" in text


def test_the_polled_progress_reloads_the_page_once_sending_stopped(manager_client, manager):
    campaign = EmailCampaignFactory(created_by=manager, status="sent")
    url = reverse("campaigns:campaign_progress", args=[campaign.pk])
    polled = manager_client.get(url, HTTP_HX_REQUEST="true")
    assert (polled.status_code, polled["HX-Refresh"]) == (204, "true")
    assert manager_client.get(url).status_code == 200  # not polled: the partial itself


def test_segments_are_listed_in_words_not_python(manager_client, manager, rep):
    from tests.factories import TagFactory

    tag = TagFactory(name="vip")
    CustomerSegmentFactory(
        created_by=manager,
        criteria={"region": ["emea", "apac"], "score_min": 50, "tags": [tag.pk],
                  "owner": [rep.pk]},
    )  # fmt: skip
    page = manager_client.get(reverse("campaigns:segment_list")).content.decode()
    for clause in [
        "Region: Europe, Middle East &amp; Africa, Asia-Pacific",
        "Minimum lead score: 50",
        "Tags: vip",
        f"Owner: {rep.get_full_name()}",
    ]:
        assert clause in page
    assert "['emea'" not in page
