"""A realistic, deterministic demo data set: users in every role, two teams, customers with
lead profiles, activities and scores, deals, and a draft email campaign ready to send.

It lives in campaigns, the app furthest right of those it fills (an app imports only from
apps to its left; see DESIGN.md).

The same arguments give the same names, amounts and stages every run (a seeded RNG); dates
are laid out relative to today so the demo always looks current. Everything is written with
bulk inserts so `--customers 100000 --deals 100000` stays fast.
"""

import random
import time
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Max, OuterRef, Subquery
from django.utils import timezone

from campaigns.models import CustomerSegment, EmailCampaign, EmailTemplate
from campaigns.services import segment_save, template_save
from crm.bulk import bulk_insert
from crm.models import Team, TeamMembership
from crm.roles import ADMIN_GROUP, MANAGER_GROUP, REP_GROUP
from customers.models import (
    BudgetRange,
    Customer,
    DecisionAuthority,
    Industry,
    PurchaseTimeline,
    Region,
    Tag,
)
from leads.models import ActivityType, LeadActivity, ScoringRule
from leads.services import leads_rescore
from sales.history import stage_change_rows
from sales.models import Sale, SaleActivity, StageChange, Task

DEMO_PASSWORD = "demo-pass-2026"
ADMIN_PASSWORD = "admin-pass-2026"
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
FIRST_NAMES = [
    "Ava",
    "Ben",
    "Chloe",
    "Daniel",
    "Emma",
    "Felix",
    "Grace",
    "Hugo",
    "Isla",
    "Jack",
    "Kai",
    "Lena",
    "Milo",
    "Nina",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Umar",
    "Vera",
    "Will",
    "Xena",
    "Yusuf",
    "Zoe",
    "Aiko",
    "Bruno",
    "Carmen",
    "Dev",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Garcia",
    "Müller",
    "Rossi",
    "Tanaka",
    "Kowalski",
    "Silva",
    "Dubois",
    "Novak",
    "Jensen",
    "Patel",
    "Kim",
    "Nguyen",
    "Cohen",
    "Larsen",
    "Fischer",
    "Moreau",
    "Costa",
    "Haddad",
    "Walsh",
    "Murphy",
    "Schmidt",
    "Ivanova",
]
COMPANY_WORDS = [
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Stark",
    "Wayne",
    "Wonka",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
    "Vandelay",
    "Aperture",
    "Oscorp",
    "Pied",
    "Piper",
    "Massive",
    "Dynamic",
    "Nakatomi",
    "Gringotts",
    "Monarch",
    "Blue",
    "Sun",
]
COMPANY_SUFFIXES = ["Ltd", "Inc", "GmbH", "Group", "Labs", "Systems", "Partners", "Co"]
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
DEAL_PRODUCTS = ["Platform licence", "Onboarding", "Support plan", "Analytics add-on", "Seats"]
STAGE_PATH = ["NEW", "CONTACTED", "PROPOSAL", "NEGOTIATION"]
STATUS_WEIGHTS = {
    "NEW": 18,
    "CONTACTED": 16,
    "PROPOSAL": 14,
    "NEGOTIATION": 10,
    "WON": 24,
    "LOST": 18,
}
ACTIVITY_TEXT = {
    "call": "Discovery call: discussed current tooling and timeline.",
    "email": "Sent follow-up with pricing overview.",
    "meeting": "Demo meeting with the buying committee.",
    "note": "Champion is keen; procurement needs a security review.",
}
LOST_REASONS = ["Price", "Went with a competitor", "No budget"]
TASK_TITLES = ["Follow-up call", "Send proposal", "Book demo", "Check references"]
JOB_TITLES = {
    "decision_maker": ["CEO", "VP Sales", "Head of Operations", "CFO"],
    "influencer": ["Sales Manager", "IT Manager", "Procurement Lead"],
    "user": ["Account Executive", "Analyst", "Office Manager"],
    "": [""],
}
# Days before today at which the demo leads are scored, so the score chart has a history.
SCORING_HISTORY_DAYS = [60, 30, 0]


class Command(BaseCommand):
    help = "Load deterministic demo data (users, teams, customers, deals, activities, tasks)."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=2000)
        parser.add_argument("--deals", type=int, default=1500)
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when customers already exist (used by `make run`).",
        )
        parser.add_argument(
            "--reset", action="store_true", help="Delete existing customers and deals first."
        )
        parser.add_argument(
            "--allow-without-debug",
            action="store_true",
            help="Seed even with DEBUG off (creates users with publicly known passwords).",
        )

    def handle(
        self,
        *args,
        customers: int,
        deals: int,
        seed: int,
        if_empty: bool,
        reset: bool,
        **options,
    ):
        if not settings.DEBUG and not options.get("allow_without_debug"):
            raise CommandError(
                "seed_demo creates an admin with a publicly known password; it runs only "
                "with DEBUG on (or pass --allow-without-debug on a throwaway server)."
            )
        if if_empty and Customer.objects.exists():
            self.stdout.write("Demo data already present; nothing to do.")
            self._print_logins()
            return
        started = time.monotonic()
        rng = random.Random(seed)
        with transaction.atomic():
            if reset:
                EmailCampaign.objects.all().delete()
                Sale.objects.all().delete()
                Customer.objects.all().delete()
            users = self._users()
            reps = [u for u in users if u.username in self._rep_usernames()]
            tags = self._tags()
            customer_ids = self._customers(rng, customers, reps, tags)
            self._deals(rng, deals, customer_ids, reps)
            self._lead_activities(rng, customer_ids)
        self._lead_scores()
        self._campaign(manager=next(u for u in users if u.username == "nora"))
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {customers} customers and {deals} deals in "
                f"{time.monotonic() - started:.1f} s."
            )
        )
        self._print_logins()

    # Users and teams ---------------------------------------------------------------

    @staticmethod
    def _rep_usernames() -> set[str]:
        return {rep[0] for team in TEAMS.values() for rep in team["reps"]}

    def _users(self):
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
            "admin",
            "Ada",
            "Admin",
            ADMIN_GROUP,
            is_staff=True,
            is_superuser=True,
            password=make_password(ADMIN_PASSWORD),
        )
        users = [admin]
        for team_name, spec in TEAMS.items():
            team, _ = Team.objects.get_or_create(name=team_name)
            manager = upsert(*spec["manager"], MANAGER_GROUP)
            team.managers.set([manager])
            users.append(manager)
            for index, rep_spec in enumerate(spec["reps"]):
                rep = upsert(*rep_spec, REP_GROUP)
                TeamMembership.objects.update_or_create(
                    user=rep, defaults={"team": team, "is_senior": index == 0}
                )
                users.append(rep)
        return users

    def _tags(self) -> list[Tag]:
        for name, color in TAGS:
            Tag.objects.get_or_create(name=name, defaults={"color": color})
        return list(Tag.objects.filter(name__in=[name for name, _ in TAGS]).order_by("name"))

    # Customers -----------------------------------------------------------------------

    def _customers(self, rng: random.Random, count: int, reps, tags) -> list[int]:
        now = timezone.now()
        industries = [choice.value for choice in Industry]
        regions = [choice.value for choice in Region]
        sources = [choice.value for choice in Customer.Source]
        stages = ["lead"] * 4 + ["prospect"] * 3 + ["customer"] * 3 + ["churned"]
        budgets = [choice.value for choice in BudgetRange]
        timelines = [choice.value for choice in PurchaseTimeline]
        authorities = [choice.value for choice in DecisionAuthority]
        engagement = ["LOW"] * 3 + ["MEDIUM"] * 4 + ["HIGH"] * 2 + ["VIP"]
        rep_ids = [rep.pk for rep in reps]
        start = Customer.objects.count()
        rows = []
        for i in range(start, start + count):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            word = rng.choice(COMPANY_WORDS)
            company = f"{word} {rng.choice(COMPANY_SUFFIXES)}"
            size = rng.choice([5, 12, 25, 60, 150, 400, 1200, 5000, 20000])
            created = now - timedelta(days=rng.randint(0, 900), minutes=rng.randint(0, 1440))
            last_contact = (now - timedelta(days=rng.randint(0, 200))).date()
            authority = rng.choice(authorities)
            rows.append(
                {
                    "name": f"{first} {last}",
                    "email": f"{first}.{last}.{i}@{word}-demo.example".lower(),
                    "phone": f"+1-555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
                    "company": company,
                    "industry": rng.choice(industries),
                    "company_size": size,
                    "annual_revenue": Decimal(size * rng.randint(40, 250) * 1000),
                    "region": rng.choice(regions),
                    "website": f"https://{word.lower()}.example",
                    "source": rng.choice(sources),
                    "lifecycle_stage": rng.choice(stages),
                    "engagement_level": rng.choice(engagement),
                    "owner_id": rng.choice(rep_ids),
                    "last_contact_date": last_contact if rng.random() < 0.85 else None,
                    "job_title": rng.choice(JOB_TITLES[authority]),
                    "decision_authority": authority,
                    "budget_range": rng.choice(budgets),
                    "purchase_timeline": rng.choice(timelines),
                    "created_at": created,
                    "updated_at": created,
                }
            )
        customer_ids = bulk_insert(Customer, rows)
        links = [
            {"customer_id": customer_id, "tag_id": tag.pk}
            for customer_id in customer_ids
            if rng.random() < 0.35
            for tag in rng.sample(tags, rng.randint(1, 2))
        ]
        bulk_insert(Customer.tags.through, links)
        return customer_ids

    # Deals, history, activities, tasks ---------------------------------------------

    def _deals(self, rng: random.Random, count: int, customer_ids: list[int], reps) -> None:
        if not customer_ids or not count:
            return
        now = timezone.now()
        statuses = list(STATUS_WEIGHTS)
        weights = list(STATUS_WEIGHTS.values())
        rep_ids = [rep.pk for rep in reps]
        sales, histories = [], []
        for _ in range(count):
            status = rng.choices(statuses, weights)[0]
            created = now - timedelta(days=rng.randint(1, 540), hours=rng.randint(0, 23))
            # The stages this deal went through, ending at its current status.
            if status in STAGE_PATH:
                path = STAGE_PATH[: STAGE_PATH.index(status) + 1]
            else:
                reached = rng.randint(1, len(STAGE_PATH)) if status == "LOST" else len(STAGE_PATH)
                path = [*STAGE_PATH[:reached], status]
            span = max((now - created).total_seconds(), 3600)
            moments = sorted(rng.uniform(0, span) for _ in range(len(path) - 1))
            changed = [created] + [created + timedelta(seconds=s) for s in moments]
            amount = Decimal(rng.choice([1, 2, 3, 5, 8, 13, 21, 34]) * rng.randint(1, 9) * 500)
            lost = status == "LOST"
            sales.append(
                {
                    "title": f"{rng.choice(DEAL_PRODUCTS)} – {rng.randint(10, 500)} seats",
                    "customer_id": rng.choice(customer_ids),
                    "assigned_to_id": rng.choice(rep_ids),
                    "amount": amount,
                    "currency": "USD",
                    "status": status,
                    "expected_close_date": (created + timedelta(days=rng.randint(20, 150))).date(),
                    "closed_at": changed[-1] if status in ("WON", "LOST") else None,
                    "lost_reason": rng.choice(LOST_REASONS) if lost else "",
                    "stage_entered_at": changed[-1],
                    "furthest_stage_rank": Sale.funnel_rank(path),
                    "created_at": created,
                    "updated_at": changed[-1],
                }
            )
            histories.append(list(zip(path, changed, strict=True)))
        sale_ids = bulk_insert(Sale, sales)

        changes, activities, tasks = [], [], []
        kinds = list(ACTIVITY_TEXT)
        priorities = [p.value for p in Task.Priority]
        for sale_id, sale, history in zip(sale_ids, sales, histories, strict=True):
            owner_id = sale["assigned_to_id"]
            changes += stage_change_rows(sale_id=sale_id, history=history, changed_by_id=owner_id)
            age = (now - sale["created_at"]).total_seconds()
            for _ in range(rng.randint(0, 3)):
                kind = rng.choice(kinds)
                at = sale["created_at"] + timedelta(seconds=rng.uniform(0, age))
                activities.append(
                    {
                        "sale_id": sale_id,
                        "kind": kind,
                        "user_id": owner_id,
                        "text": ACTIVITY_TEXT[kind],
                        "occurred_at": at,
                        "created_at": at,
                    }
                )
            if sale["status"] not in ("WON", "LOST") and rng.random() < 0.6:
                tasks.append(
                    {
                        "title": rng.choice(TASK_TITLES),
                        "sale_id": sale_id,
                        "customer_id": sale["customer_id"],
                        "assigned_to_id": owner_id,
                        "created_by_id": owner_id,
                        "priority": rng.choice(priorities),
                        "due_at": now + timedelta(hours=rng.randint(-96, 240)),
                        "completed_at": now - timedelta(hours=1) if rng.random() < 0.2 else None,
                    }
                )
        bulk_insert(StageChange, changes)
        bulk_insert(SaleActivity, activities)
        bulk_insert(Task, tasks)
        latest = (
            SaleActivity.objects.filter(sale=OuterRef("pk"))
            .values("sale")
            .annotate(latest=Max("occurred_at"))
            .values("latest")
        )
        # An id range, not a 100,000-element IN list: the new deals are one contiguous block.
        Sale.objects.filter(pk__gte=min(sale_ids), pk__lte=max(sale_ids)).update(
            last_activity_at=Subquery(latest)
        )

    # Leads: what they did and how they scored over time ----------------------------------

    def _lead_activities(self, rng: random.Random, customer_ids: list[int]) -> None:
        now = timezone.now()
        impacts = {
            rule.key: rule.points for rule in ScoringRule.objects.filter(factor="engagement")
        }
        types = list(ActivityType.values)
        lead_ids = Customer.objects.filter(pk__in=customer_ids).leads().values_list("pk", flat=True)
        rows = []
        for customer_id in lead_ids:
            # A few keen leads, many quiet ones: that spread is what gives hot/warm/cold.
            for _ in range(rng.choice([0, 0, 1, 2, 3, 5, 8, 13])):
                kind = rng.choice(types)
                rows.append(
                    {
                        "customer_id": customer_id,
                        "activity_type": kind,
                        "details": {},
                        "score_impact": impacts.get(kind, 0),
                        "timestamp": now - timedelta(days=rng.uniform(0, 90)),
                    }
                )
        bulk_insert(LeadActivity, rows)

    def _lead_scores(self) -> None:
        """Score the leads as of a few past dates and today, so each lead has a score
        history. The workflows do not run: seeding is not a wave of grade changes."""
        today = timezone.now()
        for days_ago in SCORING_HISTORY_DAYS:
            leads_rescore(now=today - timedelta(days=days_ago), start_workflows=False)

    # Campaigns ---------------------------------------------------------------------------

    def _campaign(self, *, manager) -> None:
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
        EmailCampaign.objects.get_or_create(
            name="Monthly newsletter: warm leads",
            defaults={
                "campaign_type": EmailCampaign.Type.NEWSLETTER,
                "template": template,
                "segment": segment,
                "created_by": manager,
            },
        )

    def _print_logins(self) -> None:
        self.stdout.write("\nDemo logins (http://127.0.0.1:8000/accounts/login/):")
        self.stdout.write(f"  admin  / {ADMIN_PASSWORD}   (Admin, also Django admin)")
        for team_name, spec in TEAMS.items():
            self.stdout.write(
                f"  {spec['manager'][0]:<6} / {DEMO_PASSWORD}   (Sales manager, {team_name})"
            )
            for rep in spec["reps"]:
                self.stdout.write(f"  {rep[0]:<6} / {DEMO_PASSWORD}   (Sales rep, {team_name})")
