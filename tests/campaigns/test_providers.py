"""campaigns.providers: connecting Mailgun imports its suppression lists (paged) into the
one list the email gate reads; the admin page shows which provider is active."""

import pytest
from django.urls import reverse

from campaigns import providers, tasks
from campaigns.models import ProviderConnection
from campaigns.sending import mailgun
from customers.email_gate import EmailKind, email_refusal
from customers.models import Suppression
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_connecting_mailgun_imports_its_bounces_complaints_and_unsubscribes_page_by_page(
    fake_mailgun, monkeypatch, rep
):
    monkeypatch.setattr(mailgun, "SUPPRESSIONS_PAGE_LIMIT", 2)
    for i in range(5):
        fake_mailgun.add_suppression("bounces", f"b{i}@x.example", error="Mailbox full")
    fake_mailgun.add_suppression("complaints", "angry@x.example")
    fake_mailgun.add_suppression("unsubscribes", "gone@x.example", tags=["newsletter"])
    fake_mailgun.add_suppression("unsubscribes", "b0@x.example")  # already bounced
    Suppression.objects.create(email="b1@x.example", reason="unsubscribe", source="sendgrid")
    angry = CustomerFactory(owner=rep, email="Angry@X.example", email_consent="granted")

    tasks.mailgun_connect()

    connection = ProviderConnection.objects.get()
    assert (connection.provider, connection.account, connection.status) == (
        "mailgun", "mg.example.com", "imported"
    )  # fmt: skip
    assert connection.seen == {"bounces": 5, "complaints": 1, "unsubscribes": 2}
    assert connection.imported == {"bounces": 4, "complaints": 1, "unsubscribes": 1}
    rows = {s.email: (s.reason, s.source) for s in Suppression.objects.all()}
    assert rows == {
        **{f"b{i}@x.example": ("bounce", "mailgun_import") for i in (0, 2, 3, 4)},
        "b1@x.example": ("unsubscribe", "sendgrid"),  # the first report stays
        "angry@x.example": ("spam", "mailgun_import"),
        "gone@x.example": ("unsubscribe", "mailgun_import"),
    }
    assert "Mailbox full" in Suppression.objects.get(email="b2@x.example").detail
    assert email_refusal(angry, EmailKind.MARKETING) == "spam_report"
    angry.refresh_from_db()
    assert angry.email_consent == "withdrawn" and angry.unsubscribed_at is not None
    # 3 pages of bounces and an empty one; a page and an empty one for each other list.
    assert fake_mailgun.suppression_pages_served == 4 + 2 + 2

    tasks.mailgun_connect()  # connected: not imported again
    assert fake_mailgun.suppression_pages_served == 8


def test_a_failed_import_is_recorded_and_tried_again(fake_mailgun, settings):
    fake_mailgun.add_suppression("bounces", "b@x.example")
    settings.MAILGUN_API_KEY = "key-wrong"
    providers.mailgun_connect()
    connection = ProviderConnection.objects.get()
    assert connection.status == "failed" and "401" in connection.last_error
    settings.MAILGUN_API_KEY = fake_mailgun.api_key
    providers.mailgun_connect()
    connection.refresh_from_db()
    assert (connection.status, connection.last_error) == ("imported", "")
    assert Suppression.objects.get().source == "mailgun_import"


def test_without_mailgun_nothing_is_connected(settings):
    settings.MAILGUN_API_KEY = ""
    assert providers.mailgun_connect() is None
    assert not ProviderConnection.objects.exists()


def test_a_new_domain_is_a_new_connection(fake_mailgun, settings):
    providers.mailgun_connect()
    fake_mailgun.domain = settings.MAILGUN_DOMAIN = "mg2.example.com"
    try:
        providers.mailgun_connect()
    finally:
        fake_mailgun.domain = "mg.example.com"
    assert sorted(ProviderConnection.objects.values_list("account", flat=True)) == [
        "mg.example.com",
        "mg2.example.com",
    ]


# The admin page --------------------------------------------------------------------------

PAGE = "admin:campaigns_providerconnection_changelist"


def test_the_admin_page_shows_which_providers_are_active_and_the_default(
    admin_client_, fake_sendgrid, fake_mailgun, settings
):
    settings.EMAIL_DEFAULT_PROVIDER = "mailgun"
    settings.SITE_URL = "https://crm.example.com"
    response = admin_client_.get(reverse(PAGE))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-provider="sendgrid" data-active="yes" data-default="no"' in html
    assert 'data-provider="mailgun" data-active="yes" data-default="yes"' in html
    assert 'data-provider="outbox" data-active="no" data-default="no"' in html
    assert "https://crm.example.com/webhooks/mailgun/" in html
    assert "domain mg.example.com" in html
    assert fake_mailgun.api_key not in html and settings.MAILGUN_WEBHOOK_SIGNING_KEY not in html


def test_with_no_key_the_admin_page_shows_the_outbox_as_the_default(admin_client_, settings):
    settings.SENDGRID_API_KEY = settings.MAILGUN_API_KEY = ""
    html = admin_client_.get(reverse(PAGE)).content.decode()
    assert 'data-provider="outbox" data-active="yes" data-default="yes"' in html
    assert 'data-provider="mailgun" data-active="no" data-default="no"' in html


def test_the_suppression_admin_shows_where_each_came_from(admin_client_):
    Suppression.objects.create(email="m@x.example", reason="bounce", source="mailgun")
    Suppression.objects.create(email="s@x.example", reason="spam", source="sendgrid")
    response = admin_client_.get(reverse("admin:customers_suppression_changelist"))
    html = response.content.decode()
    assert "Mailgun event" in html and "SendGrid event" in html
    filtered = admin_client_.get(
        reverse("admin:customers_suppression_changelist"), {"source": "mailgun"}
    )
    assert "m@x.example" in filtered.content.decode()
    assert "s@x.example" not in filtered.content.decode()


def test_the_import_again_action_queues_the_import(
    admin_client_, fake_mailgun, django_capture_on_commit_callbacks
):
    providers.mailgun_connect()
    fake_mailgun.add_suppression("complaints", "late@x.example")
    connection = ProviderConnection.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_.post(
            reverse(PAGE), {"action": "import_again", "_selected_action": [connection.pk]}
        )
    assert response.status_code == 302
    assert Suppression.objects.filter(email="late@x.example", reason="spam").exists()


@pytest.mark.parametrize("who", ["manager_client", "rep_client"])
def test_the_admin_page_is_refused_to_non_staff(request, who):
    client = request.getfixturevalue(who)
    response = client.get(reverse(PAGE))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
