"""The demo data set: users in every role, two teams, tags, generated customers and deals
(demo.generators), lead scores with a history, a draft email campaign ready to send, and
the email sequences with a few weeks of sends (demo.sequences).

demo is the top layer (an app imports only from apps to its left; see DESIGN.md), so it may
fill every app: through the apps' services where one exists (lead scoring, templates,
segments, campaigns) and their bulk helpers for the generated rows. Users, teams and tags
with their colours have no service; they are upserted here, so seeding twice is harmless.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractUser, Group
from django.db import transaction
from django.utils import timezone

from campaigns.models import CustomerSegment, EmailCampaign, EmailTemplate, OutboxMessage, Sequence
from campaigns.services import campaign_save, segment_save, template_save
from crm.models import Team, TeamMembership
from crm.roles import ADMIN_GROUP, MANAGER_GROUP, REP_GROUP
from customers.models import Customer, Tag
from demo.generators import DEMO, Generated, dataset_generate
from demo.sequences import demo_sequences_ensure
from leads.services import leads_rescore
from sales.models import Sale
from sales.services import forecast_statistics_compute
from search.services import search_index_rebuild

DEMO_PASSWORD = "demo-pass-2026"
ADMIN_PASSWORD = "admin-pass-2026"
ADMIN = ("admin", "Ada", "Admin")
TEAMS = {
    "Team North": {
        "manager": ("nora", "Nora", "Lindqvist"),
        "reps": [("alex", "Alex", "Moreno"), ("bea", "Bea", "Okafor"), ("chen", "Chen", "Wu")],
    },
    "Team South": {
        "manager": ("sam", "Sam", "Delgado"),
        "reps": [("dina", "Dina", "Haddad"), ("eli", "Eli", "Novak"), ("fay", "Fay", "Brennan")],
    },
}
CAMPAIGN_MANAGER = "nora"
TAGS = [
    ("enterprise", "#1d4ed8"),
    ("smb", "#0f766e"),
    ("renewal", "#7c3aed"),
    ("newsletter", "#b45309"),
    ("partner", "#be185d"),
    ("priority", "#b91c1c"),
    ("trial", "#4d7c0f"),
    ("conference-2026", "#334155"),
]
# Days before today at which the demo leads are scored, so the score chart has a history.
SCORING_HISTORY_DAYS = [60, 30, 0]


@dataclass(frozen=True)
class DemoUsers:
    admin: AbstractUser
    managers: dict[str, AbstractUser]  # by username
    reps: list[AbstractUser]  # in TEAMS order: each team's senior rep first


def demo_seed(
    *, customers: int, deals: int, seed: int, reset: bool = False, lead_history: int = 0
) -> Generated:
    """The whole demo data set; `reset` deletes the customers, deals, campaigns and sequences
    first. Users, teams, tags, the campaign and its template and segment, the sequences and
    their templates are kept or made. `lead_history` past leads (demo.ai) give the AI
    app a history to train its model on, and the recommender documents and engagement."""
    with transaction.atomic():
        if reset:
            demo_data_reset()
        users = demo_users_ensure()
        generated = dataset_generate(
            customers=customers,
            deals=deals,
            rep_ids=[rep.pk for rep in users.reps],
            seed=seed,
            profile=DEMO,
            tags=demo_tags_ensure(),
        )
    if lead_history:
        from demo.ai import demo_ai_ensure

        demo_ai_ensure(
            owner_ids=[rep.pk for rep in users.reps],
            uploader=users.managers[CAMPAIGN_MANAGER],
            leads=lead_history,
            seed=seed,
        )
    demo_leads_score()
    # The nightly forecast statistics, now: the forecast shows its historical rates and
    # calibration right away instead of after the first night.
    forecast_statistics_compute()
    manager = users.managers[CAMPAIGN_MANAGER]
    demo_campaign_ensure(manager=manager)
    demo_sequences_ensure(manager=manager, seed=seed)
    # The generators write with COPY, past the services that keep the search index: build it.
    search_index_rebuild()
    return generated


def demo_data_reset() -> None:
    """Every sequence, campaign, outbox email, deal and customer (with what hangs off them),
    for a fresh seed. Sequences first: their steps hold on to their hidden campaigns."""
    Sequence.objects.all().delete()
    EmailCampaign.objects.all().delete()
    OutboxMessage.objects.all().delete()
    Sale.objects.all().delete()
    Customer.objects.all().delete()


# Users and teams ---------------------------------------------------------------------------


def demo_users_ensure() -> DemoUsers:
    """The admin, a manager and three reps per team (the first senior), with the demo
    passwords; existing demo users are updated to match."""
    User = get_user_model()
    groups = {
        name: Group.objects.get_or_create(name=name)[0]
        for name in (REP_GROUP, MANAGER_GROUP, ADMIN_GROUP)
    }
    demo_hash = make_password(DEMO_PASSWORD)

    def upsert(username, first, last, group, **extra):
        user, _ = User.objects.update_or_create(
            username=username,
            defaults={
                "email": f"{username}@example.com",
                "first_name": first,
                "last_name": last,
                "password": demo_hash,
                **extra,
            },
        )
        user.groups.set([groups[group]])
        return user

    admin = upsert(
        *ADMIN,
        ADMIN_GROUP,
        is_staff=True,
        is_superuser=True,
        password=make_password(ADMIN_PASSWORD),
    )
    managers, reps = {}, []
    for team_name, spec in TEAMS.items():
        team, _ = Team.objects.get_or_create(name=team_name)
        manager = upsert(*spec["manager"], MANAGER_GROUP)
        team.managers.set([manager])
        managers[manager.username] = manager
        for index, rep_spec in enumerate(spec["reps"]):
            rep = upsert(*rep_spec, REP_GROUP)
            TeamMembership.objects.update_or_create(
                user=rep, defaults={"team": team, "is_senior": index == 0}
            )
            reps.append(rep)
    return DemoUsers(admin=admin, managers=managers, reps=reps)


def demo_tags_ensure() -> list[Tag]:
    for name, color in TAGS:
        Tag.objects.get_or_create(name=name, defaults={"color": color})
    return list(Tag.objects.filter(name__in=[name for name, _ in TAGS]).order_by("name"))


# Leads and campaigns -----------------------------------------------------------------------


def demo_leads_score() -> None:
    """Score the leads as of a few past dates and today, so each lead has a score history.
    The workflows do not run: seeding is not a wave of grade changes. The past dates get
    the rule score only; the model (when trained) scores today's, which is what it shows."""
    today = timezone.now()
    for days_ago in SCORING_HISTORY_DAYS:
        leads_rescore(
            now=today - timedelta(days=days_ago), start_workflows=False, with_model=not days_ago
        )


def demo_campaign_ensure(*, manager: AbstractUser) -> EmailCampaign:
    """A template, a segment and a draft campaign: “Send now” on its page shows the whole
    pipeline, into the local outbox when no SendGrid key is set."""
    template = EmailTemplate.objects.filter(name="Monthly newsletter").first()
    if template is None:
        template = template_save(
            actor=manager,
            data={
                "name": "Monthly newsletter",
                "category": EmailTemplate.Category.NEWSLETTER,
                "subject": "What's new for {{ company }} this month",
                "html_body": (
                    '<p>Hi {{ first_name|default:"there" }},</p>'
                    "<p>Here is what teams like {{ company }} shipped with us this month."
                    "</p><p>Questions? {{ owner_name }} is one reply away.</p>"
                    '<p><small><a href="{{ unsubscribe_url }}">Unsubscribe</a></small></p>'
                ),
                "text_body": (
                    'Hi {{ first_name|default:"there" }},\n\nHere is what teams like '
                    "{{ company }} shipped with us this month.\n\nQuestions? "
                    "{{ owner_name }} is one reply away.\n\nUnsubscribe: {{ unsubscribe_url }}"
                ),
            },
        )
    segment = CustomerSegment.objects.filter(name="Warm and hot leads").first()
    if segment is None:
        segment = segment_save(
            actor=manager,
            data={
                "name": "Warm and hot leads",
                "description": "Leads of Team North graded warm or hot.",
                "criteria": {"lifecycle_stage": ["lead"], "grade": ["hot", "warm"]},
            },
        )
    name = "Monthly newsletter: warm leads"
    campaign = EmailCampaign.objects.filter(name=name).first()
    if campaign is None:
        campaign = campaign_save(
            actor=manager,
            data={
                "name": name,
                "campaign_type": EmailCampaign.Type.NEWSLETTER,
                "template": template,
                "segment": segment,
            },
        )
    return campaign
