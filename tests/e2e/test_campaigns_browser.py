"""A manager builds a segment, a template and a campaign in Chromium, sends it and reads the
outbox (no SendGrid key: the local outbox)."""

import pytest
from playwright.sync_api import Page, expect

from campaigns.models import EmailCampaign, OutboxMessage
from tests.factories import CustomerFactory

pytestmark = pytest.mark.browser


def test_manager_builds_and_sends_a_campaign(page: Page, login, manager, rep, teams, settings):
    settings.SENDGRID_API_KEY = ""
    CustomerFactory(owner=rep, name="Ann Archer", email="ann@a.example", region="emea")
    CustomerFactory(owner=rep, name="Bob Baker", email="bob@b.example", region="apac")
    login(manager)

    page.goto("/campaigns/segments/new/")
    page.get_by_label("Name", exact=True).fill("EMEA")
    expect(page.locator("[data-segment-count]")).to_contain_text("2 customers match")
    page.get_by_label("Region").select_option("emea")
    expect(page.locator("[data-segment-count]")).to_contain_text("1 customer match")
    page.get_by_role("button", name="Save segment").click()
    expect(page.get_by_role("link", name="EMEA")).to_be_visible()

    page.goto("/campaigns/templates/new/")
    page.get_by_label("Name").fill("Hello")
    page.get_by_label("Subject").fill("Hello {{ company }}")
    page.get_by_label("Html body").fill("<p>Hi {{ first_name }} {{ nickname }}</p>")
    page.get_by_label("Text body").fill("Hi {{ first_name }}")
    page.get_by_role("button", name="Save template").click()
    expect(page.get_by_text("Unknown variable “nickname”")).to_be_visible()
    page.get_by_label("Html body").fill("<p>Hi {{ first_name }}</p>")
    page.get_by_role("button", name="Save template").click()
    expect(page.locator("[data-preview]")).to_contain_text("For ")

    page.goto("/campaigns/new/")
    page.get_by_label("Name").fill("Launch")
    page.get_by_label("Template").select_option(label="Hello")
    page.get_by_label("Segment").select_option(label="EMEA")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name="Launch")).to_be_visible()

    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Send now").click()
    expect(page.locator("[data-progress]")).to_contain_text("1 sent of 1")
    expect(page.locator("[data-funnel]")).to_contain_text("Sent")
    assert EmailCampaign.objects.get(name="Launch").status == "sent"

    page.goto("/campaigns/outbox/")
    page.get_by_role("link", name="Hello").first.click()
    expect(page.get_by_text("To: ann@a.example")).to_be_visible()
    assert OutboxMessage.objects.get().to_email == "ann@a.example"


def test_a_campaign_page_left_open_while_sending_agrees_with_itself_when_done(
    page: Page, login, manager, rep, teams, settings, monkeypatch
):
    """The page shows Sending; the send finishes behind it; without the user reloading,
    badge, buttons, funnel and recipients all say Sent."""
    from campaigns import services
    from campaigns.models import CampaignRun
    from campaigns.sending import run_send
    from tests.factories import CustomerSegmentFactory, EmailCampaignFactory, EmailTemplateFactory

    settings.SENDGRID_API_KEY = ""
    monkeypatch.setattr("campaigns.sending.runs.send_run_later", lambda run_id: None)
    for name in ("Ann Archer", "Bob Baker"):
        CustomerFactory(owner=rep, name=name, email=f"{name.split()[0].lower()}@x.example")
    campaign = EmailCampaignFactory(
        name="Held", created_by=manager, template=EmailTemplateFactory(created_by=manager),
        segment=CustomerSegmentFactory(created_by=manager),
    )  # fmt: skip
    services.campaign_send_now(actor=manager, campaign=campaign)
    login(manager)
    page.goto(f"/campaigns/{campaign.pk}/")
    expect(page.locator("h1 .badge")).to_have_text("Sending")
    expect(page.locator("[data-action=pause]")).to_be_visible()

    run_send(run_id=CampaignRun.objects.get(campaign=campaign).pk)

    expect(page.locator("h1 .badge")).to_have_text("Sent")
    expect(page.locator("[data-action=pause]")).to_have_count(0)
    expect(page.locator("[data-action=cancel]")).to_have_count(0)
    expect(page.locator("[data-progress]")).to_contain_text("2 sent of 2")
    expect(page.locator("[data-funnel]")).to_contain_text("2")
    expect(page.get_by_text("ann@x.example")).to_be_visible()
