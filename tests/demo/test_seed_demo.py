from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Count
from django.utils import timezone

from crm.models import Team
from crm.roles import Role, role_of
from customers.models import Customer
from sales.models import ForecastCalibration, Sale, SaleActivity, StageChange, StageWinRate, Task

pytestmark = pytest.mark.django_db


def _seed(**options):
    """The seed without the AI history unless a test asks for it (its own test below)."""
    out = StringIO()
    options.setdefault("lead_history", 0)
    call_command("seed_demo", stdout=out, allow_without_debug=True, **options)
    return out.getvalue()


def test_seed_demo_builds_a_complete_data_set():
    output = _seed(customers=200, deals=150)
    assert Customer.objects.count() == 200
    assert Sale.objects.count() == 150
    assert set(Sale.objects.values_list("status", flat=True)) == set(Sale.Status.values)
    assert SaleActivity.objects.exists()
    assert Task.objects.exists()
    assert Team.objects.count() == 2
    # Every deal's history starts with NEW and ends at its current status.
    first_and_last = StageChange.objects.values("sale").annotate(n=Count("id"))
    assert first_and_last.count() == 150
    for sale in Sale.objects.filter(status__in=["WON", "LOST"])[:20]:
        assert sale.closed_at is not None
        assert sale.stage_changes.last().to_status == sale.status
    User = get_user_model()
    roles = {role_of(user) for user in User.objects.all()}
    assert roles == {Role.REP, Role.MANAGER, Role.ADMIN}
    assert "Seeded 200 customers and 150 deals in" in output
    assert "demo-pass-2026" in output and "admin-pass-2026" in output
    assert User.objects.get(username="alex").check_password("demo-pass-2026")
    # The forecast's nightly statistics are computed once by the seed.
    assert (
        StageWinRate.objects.get(status="NEW").closed_deals
        == Sale.objects.filter(status__in=Sale.CLOSED_STATUSES).count()
    )
    assert ForecastCalibration.objects.filter(scope_key="all").exists()


def test_seed_demo_is_deterministic():
    _seed(customers=50, deals=40)
    first = list(Customer.objects.order_by("id").values_list("name", "email", "region"))
    amounts = list(Sale.objects.order_by("id").values_list("title", "amount", "status"))
    _seed(customers=50, deals=40, reset=True)
    assert list(Customer.objects.order_by("id").values_list("name", "email", "region")) == first
    assert list(Sale.objects.order_by("id").values_list("title", "amount", "status")) == amounts


def test_if_empty_does_nothing_when_data_exists():
    _seed(customers=10, deals=5)
    output = _seed(customers=10, deals=5, if_empty=True)
    assert "already present" in output
    assert Customer.objects.count() == 10


def test_seed_demo_refuses_to_run_without_debug(settings):
    from django.core.management.base import CommandError

    settings.DEBUG = False
    with pytest.raises(CommandError, match="publicly known password"):
        call_command("seed_demo", customers=1, deals=0, stdout=StringIO())
    assert not Customer.objects.exists()


def test_seed_demo_scores_its_leads_with_a_history_and_no_workflows():
    from leads.models import LeadActivity, LeadScore, ScoreChange, WorkflowRun

    _seed(customers=300, deals=0)
    leads = Customer.objects.leads()
    assert LeadScore.objects.count() == leads.count() > 0
    assert LeadActivity.objects.exists()
    assert set(LeadScore.objects.values_list("grade", flat=True)) >= {"cold", "warm"}
    # Scored as of several dates: some leads have more than one point on their chart.
    assert ScoreChange.objects.values("customer").annotate(n=Count("id")).filter(n__gt=1).exists()
    # The sequences' enrolments are the seed's own (demo.sequences), not a workflow's.
    assert not WorkflowRun.objects.exists()


def test_seed_demo_leaves_a_draft_campaign_ready_to_send():
    from campaigns.models import EmailCampaign

    _seed(customers=300, deals=0)
    # The other campaigns are the sequence steps' hidden ones.
    campaigns = EmailCampaign.objects.filter(sequence_step__isnull=True)
    campaign = campaigns.get()
    assert campaign.status == "draft" and campaign.created_by.username == "nora"
    assert campaign.segment.customer_count > 0
    _seed(customers=10, deals=0, reset=True)
    assert campaigns.count() == 1


def test_deals_without_customers_are_refused_with_a_clear_message(settings):
    from django.core.management import CommandError, call_command

    settings.DEBUG = True
    with pytest.raises(CommandError, match="Deals need customers"):
        call_command("seed_demo", "--customers", "0", "--deals", "5")


def test_seed_demo_builds_the_sequences_with_weeks_of_sends():
    from campaigns.models import (
        CampaignRun,
        EmailMessage,
        LeadEmailSettings,
        OutboxMessage,
        Sequence,
        SequenceEnrollment,
    )
    from demo.sequences import CASE_STUDIES, NURTURE, last_tick_day

    _seed(customers=600, deals=300)
    nurture, case_studies = (
        Sequence.objects.get(name=NURTURE),
        Sequence.objects.get(name=CASE_STUDIES),
    )
    assert nurture.steps.count() == 4 and case_studies.steps.count() == 3
    assert nurture.created_by.username == "nora" and nurture.is_active
    assert case_studies.steps.get(position=0).template.name == "Case study"
    settings = LeadEmailSettings.current()
    assert settings.cold_sequence == nurture
    assert settings.warm_template.name == "Case study"
    assert settings.hot_template.name == "Personal introduction"
    assert {"first_name", "owner_name"} <= set(settings.hot_template.variables)

    enrolments = SequenceEnrollment.objects.filter(sequence=nurture)
    Status = SequenceEnrollment.Status
    assert 50 <= enrolments.count() <= 300
    # At every step, the first cohort through to the end, and stops with their reasons.
    active_at = set(enrolments.filter(status=Status.ACTIVE).values_list("next_position", flat=True))
    assert active_at == {1, 2, 3}
    assert enrolments.filter(status=Status.COMPLETED, next_position=4).exists()
    reasons = set(enrolments.filter(status=Status.STOPPED).values_list("stop_reason", flat=True))
    assert {"Not emailed: unsubscribed", "Stopped by hand"} <= reasons
    assert SequenceEnrollment.objects.filter(sequence=case_studies).exists()
    # Only customers the gate let through were enrolled: nobody of unknown consent.
    assert not enrolments.filter(customer__email_consent="unknown").exists()

    # Every run the ticks queued was sent, into the outbox: one email per message, at most
    # one per step and customer.
    step_messages = EmailMessage.objects.filter(campaign__sequence_step__isnull=False)
    assert not CampaignRun.objects.exclude(status=CampaignRun.Status.SENT).exists()
    assert step_messages.count() > enrolments.count()
    assert set(step_messages.values_list("status", flat=True)) == {"sent"}
    per_step = step_messages.values("campaign", "customer").annotate(n=Count("id"))
    assert not per_step.filter(n__gt=1).exists()
    sequence_outbox = OutboxMessage.objects.filter(
        custom_args__campaign_id__in=[
            str(pk) for pk in step_messages.values_list("campaign_id", flat=True).distinct()
        ]
    )
    assert sequence_outbox.count() == step_messages.count()
    # The last tick, at the latest weekday 10:00, sent the newest cohort its first email.
    newest = enrolments.filter(enrolled_at__date=last_tick_day(timezone.now()))
    assert newest.exists()
    assert not newest.filter(status=Status.ACTIVE, next_position=0).exists()
    # The step campaigns' counters are the funnel the sequence page shows.
    first = nurture.steps.get(position=0).campaign
    assert first.sent_count == step_messages.filter(campaign=first).count() > 0


def test_seed_demo_trains_a_model_with_explanations_and_recommendations(settings, tmp_path):
    from ai.models import LeadScoringModel
    from ai.services.recommend import document_recommendations
    from leads.models import LeadScore

    settings.MEDIA_ROOT = str(tmp_path)
    settings.AI_TREES = 40
    _seed(customers=150, deals=100, lead_history=5000)
    model = LeadScoringModel.objects.get(is_active=True, team=None)
    assert model.metrics["auc_model"] > model.metrics["auc_rules"]
    scored = LeadScore.objects.filter(customer__lifecycle_stage="lead").exclude(ai_score=None)
    assert scored.exists()
    for score in scored[:50]:
        assert score.ai_explanation["up"] or score.ai_explanation["down"]
    customer = Customer.objects.filter(lifecycle_stage="lead", industry="logistics").first()
    admin = get_user_model().objects.get(username="admin")
    top = document_recommendations(user=admin, customer=customer)
    assert top and top[0].reason.startswith("Opened by")
