from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from campaigns.models import CustomerSegment, EmailCampaign, EmailTemplate, Sequence
from crm.models import Team, TeamMembership
from crm.roles import ADMIN_GROUP, MANAGER_GROUP, REP_GROUP
from customers.models import Customer, Tag
from sales.history import stage_change_rows
from sales.models import Sale, SaleActivity, StageChange, Task

PASSWORD = "test-pass-123"


def _role(group_name: str):
    """Put the user in a role's group; `role="Sales manager"` picks another."""

    def add(user, create, extracted, **kwargs):
        if create:
            user.groups.add(Group.objects.get(name=extracted or group_name))

    return factory.PostGeneration(add)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password(PASSWORD)

    role = _role(REP_GROUP)


class RepFactory(UserFactory):
    role = _role(REP_GROUP)


class ManagerFactory(UserFactory):
    role = _role(MANAGER_GROUP)


class AdminFactory(UserFactory):
    role = _role(ADMIN_GROUP)
    is_staff = True
    is_superuser = True


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Team {n}")

    @factory.post_generation
    def managers(self, create, extracted, **kwargs):
        if create and extracted:
            self.managers.set(extracted)

    @factory.post_generation
    def members(self, create, extracted, **kwargs):
        if create and extracted:
            for user in extracted:
                TeamMembership.objects.create(team=self, user=user)


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"tag-{n}")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer
        skip_postgeneration_save = True

    name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"customer{n}@client.example")
    company = factory.Faker("company")
    industry = "software"
    region = "emea"
    company_size = 50
    owner = factory.SubFactory(RepFactory)
    # Customers that may get marketing email unless a test says otherwise (the email gate).
    email_consent = "granted"

    @factory.post_generation
    def tags(self, create, extracted, **kwargs):
        if create and extracted:
            self.tags.set(extracted)

    @factory.post_generation
    def shared_with(self, create, extracted, **kwargs):
        if create and extracted:
            self.shared_with.set(extracted)


def unreachable_customers(**fields) -> dict:
    """One customer for each address the email gate must always refuse, with the refusal
    it must record: {name: (customer, refusal)}."""
    from django.utils import timezone

    from customers.models import Suppression

    made = {}
    for name, refusal, extra, suppression in [
        ("withdrawn", "withdrawn", {"email_consent": "withdrawn"}, None),
        ("unsubscribed", "unsubscribed", {"unsubscribed_at": timezone.now()}, None),
        ("bounced", "bounced", {}, "bounce"),
        ("dropped", "dropped", {}, "dropped"),
        ("spam", "spam_report", {}, "spam"),
    ]:
        customer = CustomerFactory(email=f"{name}@never.example", **{**fields, **extra})
        if suppression:
            Suppression.objects.create(email=customer.email, reason=suppression)
        made[name] = (customer, refusal)
    return made


class SaleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Sale

    title = factory.Sequence(lambda n: f"Deal {n}")
    customer = factory.SubFactory(CustomerFactory)
    assigned_to = factory.SelfAttribute("customer.owner")
    amount = Decimal("1000.00")
    status = Sale.Status.NEW
    expected_close_date = factory.LazyFunction(lambda: (timezone.now() + timedelta(days=30)).date())
    closed_at = factory.LazyAttribute(
        lambda s: timezone.now() if s.status in ("WON", "LOST") else None
    )
    furthest_stage_rank = factory.LazyAttribute(lambda s: Sale.funnel_rank([s.status]))


class SaleActivityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SaleActivity

    sale = factory.SubFactory(SaleFactory)
    kind = SaleActivity.Kind.CALL
    user = factory.SelfAttribute("sale.assigned_to")
    text = "Called the customer."
    occurred_at = factory.LazyFunction(timezone.now)


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task

    title = factory.Sequence(lambda n: f"Task {n}")
    assigned_to = factory.SubFactory(RepFactory)
    created_by = factory.SelfAttribute("assigned_to")
    due_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=1))


class StageChangeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StageChange

    sale = factory.SubFactory(SaleFactory)
    from_status = ""
    to_status = Sale.Status.NEW
    changed_at = factory.LazyFunction(timezone.now)


def stage_history(sale: Sale, *steps) -> None:
    """Record `steps` ((status, when), oldest first) as the deal's stage changes with the
    bookkeeping sale_change_stage does: each change's left_at, the deal's furthest stage."""
    rows = stage_change_rows(sale_id=sale.pk, history=steps, changed_by_id=sale.assigned_to_id)
    StageChange.objects.bulk_create(StageChange(**row) for row in rows)
    sale.furthest_stage_rank = max(
        sale.furthest_stage_rank, Sale.funnel_rank(status for status, _ in steps)
    )
    Sale.objects.filter(pk=sale.pk).update(furthest_stage_rank=sale.furthest_stage_rank)


class EmailTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EmailTemplate

    name = factory.Sequence(lambda n: f"Template {n}")
    subject = "News for {{ company }}"
    html_body = '<p>Hi {{ first_name|default:"there" }},</p><p>{{ company }}</p>'
    text_body = "Hi {{ first_name }}, news for {{ company }}. Unsubscribe: {{ unsubscribe_url }}"
    variables = ["company", "first_name", "unsubscribe_url"]


class CustomerSegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerSegment

    name = factory.Sequence(lambda n: f"Segment {n}")
    criteria = factory.LazyFunction(dict)


class EmailCampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EmailCampaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    template = factory.SubFactory(EmailTemplateFactory)
    segment = factory.SubFactory(CustomerSegmentFactory)
    created_by = factory.SubFactory(ManagerFactory)


_sequence_names = iter(range(1, 10**9))


def sequence_build(
    *, actor, steps: list[tuple[EmailTemplate | None, int]] | None = None, **data
) -> Sequence:
    """A sequence saved the way a manager saves one (campaigns.sequences.builder.sequence_save),
    each step with its hidden campaign. `steps`: (template or None for a new one, delay_days);
    by default two steps, the first at once, the second three days later. `data` overrides
    the sequence's fields (window_start, window_end, stop_at_grade, is_active, name)."""
    from datetime import time

    from campaigns.sequences.builder import StepDraft, sequence_save

    if steps is None:
        steps = [(None, 0), (None, 3)]
    drafts = [
        StepDraft(template=template or EmailTemplateFactory(created_by=actor), delay_days=delay)
        for template, delay in steps
    ]
    fields = {
        "name": f"Sequence {next(_sequence_names)}",
        "window_start": time(9),
        "window_end": time(17),
        **data,
    }
    return sequence_save(actor=actor, data=fields, steps=drafts)


def device_token(user, device_name: str = "Phone") -> str:
    """A device token (django-rest-knox) for `user`, as the API's sign-in issues it."""
    from api.services import device_token_create

    return device_token_create(actor=user, device_name=device_name)[1]


class MarketingDocumentFactory(factory.django.DjangoModelFactory):
    """A marketing document with its text already extracted (what the recommender reads)."""

    class Meta:
        model = "documents.Document"

    title = factory.Sequence(lambda n: f"Case study {n}")
    document_type = "marketing"
    file = factory.django.FileField(filename="case.txt", data=b"case study")
    original_name = "case.txt"
    file_size = 10
    mime_type = "text/plain"
    sha256 = "0" * 64
    uploaded_by = factory.SubFactory(ManagerFactory)
    is_public = True
    processing_status = "done"
    extracted_text = "A customer story."
