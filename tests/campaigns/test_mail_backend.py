"""Single emails (lead workflows, test sends) go the way campaigns go."""

import pytest
from django.core.mail import get_connection

from campaigns.models import OutboxMessage
from crm.services import send_email

pytestmark = pytest.mark.django_db


@pytest.fixture
def crm_backend(settings):
    settings.EMAIL_BACKEND = "campaigns.mail.CrmEmailBackend"


def test_without_a_key_single_emails_land_in_the_outbox(crm_backend, settings):
    settings.SENDGRID_API_KEY = ""
    send_email(to="ann@a.example", subject="Hello", text="Plain", html="<p>Rich</p>")
    message = OutboxMessage.objects.get()
    assert (message.to_email, message.subject, message.text_body, message.html_body) == (
        "ann@a.example",
        "Hello",
        "Plain",
        "<p>Rich</p>",
    )


def test_with_a_key_single_emails_go_through_sendgrid(crm_backend, fake_sendgrid):
    send_email(to="ann@a.example", subject="Hello", text="Plain")
    (request,) = fake_sendgrid.accepted
    assert request.payload["personalizations"][0]["to"] == [{"email": "ann@a.example"}]
    assert request.payload["from"]["email"] == "crm@example.com"


def test_a_refused_email_raises_unless_told_to_fail_silently(crm_backend, fake_sendgrid):
    from django.core.mail import EmailMessage

    from campaigns.sending.provider import PermanentSendError

    fake_sendgrid.fail_next(400, count=2)
    with pytest.raises(PermanentSendError):
        send_email(to="ann@a.example", subject="Hello", text="Plain")
    connection = get_connection(fail_silently=True)
    assert connection.send_messages([EmailMessage("s", "b", to=["x@y.example"])]) == 0
