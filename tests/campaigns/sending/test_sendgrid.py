"""campaigns.sending.sendgrid: the v3 mail/send payload."""

import pytest

from campaigns.models import (
    EmailMessage,
)

pytestmark = pytest.mark.django_db


def test_the_payload_carries_substitutions_custom_args_and_unsubscribe_headers(
    send_now, campaign, audience, fake_sendgrid
):
    send_now(campaign)
    payload = fake_sendgrid.accepted[0].payload
    by_email = {p["to"][0]["email"]: p for p in payload["personalizations"]}
    bob = by_email["bob@b.example"]
    message = EmailMessage.objects.get(email="bob@b.example")
    assert bob["custom_args"] == {"email_message_id": str(message.pk)}
    assert bob["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert bob["headers"]["List-Unsubscribe"].startswith("<http://")
    html = payload["content"][1]["value"]
    for key, value in bob["substitutions"].items():
        html = html.replace(key, value)
    # Values are escaped in HTML; the template's own markup is not. A template without the
    # unsubscribe link gets it in a footer, Bob's own link.
    body, footer = html.split('<p style="font-size:12px;color:#666">')
    assert body == "<p>Hi Bob,</p><p>B &amp; Co</p>"
    assert f'href="{bob["headers"]["List-Unsubscribe"][1:-1]}"' in footer
    assert payload["custom_args"]["batch_key"].startswith("batch-")
