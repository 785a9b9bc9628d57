"""Campaigns: managers run them. A manager sees the templates, segments and campaigns that
they or a co-manager of one of their teams made; an admin sees all; a rep sees no template or
segment and, read-only, the campaigns that emailed one of their customers, and within them
only their customers' messages. The local outbox: an admin all of it, a manager the emails to
customers they see and to themselves."""

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.shortcuts import get_object_or_404

from crm.permissions.core import queryset_or_all, require_manager
from crm.permissions.customers import visible_customers
from crm.roles import Role, is_manager_or_admin, role_of


def can_run_campaigns(user) -> bool:
    """Managers and admins make templates, segments and campaigns; reps only read."""
    return is_manager_or_admin(user)


def require_campaign_manager(user) -> None:
    """Refuse (403) anyone who may not run campaigns: every campaign view and service asks."""
    require_manager(user, "Only managers and admins run campaigns.")


def co_manager_ids(user) -> list[int]:
    """The user and everyone who manages one of the teams the user manages."""
    User = get_user_model()
    return list(
        User.objects.filter(Q(pk=user.pk) | Q(managed_teams__managers=user))
        .distinct()
        .values_list("pk", flat=True)
    )


def _authored_in_scope(queryset: QuerySet, user) -> QuerySet:
    """Records of the author's management circle: an admin all; a manager what they or a
    co-manager made; a rep nothing."""
    role = role_of(user)
    if role == Role.ADMIN:
        return queryset
    if role == Role.MANAGER:
        return queryset.filter(created_by_id__in=co_manager_ids(user))
    return queryset.none()


# Templates and segments -------------------------------------------------------------------


def visible_templates(user, queryset: QuerySet | None = None) -> QuerySet:
    return _authored_in_scope(queryset_or_all(queryset, "campaigns.EmailTemplate"), user)


def access_template_by_id(user, template_id):
    return get_object_or_404(visible_templates(user), pk=template_id)


def visible_segments(user, queryset: QuerySet | None = None) -> QuerySet:
    return _authored_in_scope(queryset_or_all(queryset, "campaigns.CustomerSegment"), user)


def access_segment_by_id(user, segment_id):
    return get_object_or_404(visible_segments(user), pk=segment_id)


# Campaigns and their recipients -----------------------------------------------------------


def visible_campaigns(user, queryset: QuerySet | None = None) -> QuerySet:
    """Campaigns, not the hidden campaigns of sequence steps (reached through their
    sequence, and never edited or sent as campaigns)."""
    queryset = queryset_or_all(queryset, "campaigns.EmailCampaign").filter(
        sequence_step__isnull=True
    )
    if role_of(user) in (Role.ADMIN, Role.MANAGER):
        return _authored_in_scope(queryset, user)
    EmailMessage = apps.get_model("campaigns", "EmailMessage")
    mailed_mine = EmailMessage.objects.filter(
        campaign=OuterRef("pk"), customer__in=visible_customers(user).values("pk")
    )
    return queryset.filter(Exists(mailed_mine))


def editable_campaigns(user, queryset: QuerySet | None = None) -> QuerySet:
    """A rep reads the campaigns that emailed their customers but changes none."""
    queryset = queryset_or_all(queryset, "campaigns.EmailCampaign")
    if role_of(user) == Role.REP:
        return queryset.none()
    return visible_campaigns(user, queryset)


def access_campaign_by_id(user, campaign_id, *, for_change: bool = False):
    """The campaign with its template, segment and author, or 404 when out of reach."""
    finder = editable_campaigns if for_change else visible_campaigns
    campaigns = finder(user).select_related("template", "segment", "created_by")
    return get_object_or_404(campaigns, pk=campaign_id)


def can_change_campaign(user, campaign) -> bool:
    return editable_campaigns(user).filter(pk=campaign.pk).exists()


def visible_campaign_messages(user, queryset: QuerySet) -> QuerySet:
    """A campaign's messages to customers this user may see (a co-manager of the author may
    share only some of the author's teams)."""
    if role_of(user) == Role.ADMIN:
        return queryset
    return queryset.filter(customer__in=visible_customers(user).values("pk"))


# Sequences, their enrolments, and the lead workflows' email drafts -----------------------


def visible_sequences(user, queryset: QuerySet | None = None) -> QuerySet:
    """The company's sequences: everyone sees them (a rep enrols a lead in one)."""
    return queryset_or_all(queryset, "campaigns.Sequence")


def editable_sequences(user, queryset: QuerySet | None = None) -> QuerySet:
    """Managers change the sequences of their management circle; admins all; reps none."""
    return _authored_in_scope(queryset_or_all(queryset, "campaigns.Sequence"), user)


def access_sequence_by_id(user, sequence_id, *, for_change: bool = False):
    if for_change:
        require_campaign_manager(user)
    finder = editable_sequences if for_change else visible_sequences
    return get_object_or_404(finder(user), pk=sequence_id)


def can_change_sequence(user, sequence) -> bool:
    return editable_sequences(user).filter(pk=sequence.pk).exists()


def visible_enrollments(user, queryset: QuerySet | None = None) -> QuerySet:
    """Enrolments of the customers this user sees: a rep theirs, a manager their teams'."""
    queryset = queryset_or_all(queryset, "campaigns.SequenceEnrollment")
    if role_of(user) == Role.ADMIN:
        return queryset
    return queryset.filter(customer__in=visible_customers(user).values("pk"))


def access_enrollment_by_id(user, enrollment_id):
    return get_object_or_404(visible_enrollments(user), pk=enrollment_id)


def visible_drafts(user, queryset: QuerySet | None = None) -> QuerySet:
    """A rep's own drafts; a manager's or admin's, and those of customers they see."""
    queryset = queryset_or_all(queryset, "campaigns.EmailDraft")
    role = role_of(user)
    if role == Role.ADMIN:
        return queryset
    if role == Role.MANAGER:
        return queryset.filter(Q(rep=user) | Q(customer__in=visible_customers(user).values("pk")))
    return queryset.filter(rep=user)


def access_draft_by_id(user, draft_id):
    drafts = visible_drafts(user).select_related("customer", "rep", "task")
    return get_object_or_404(drafts, pk=draft_id)


# The local outbox ---------------------------------------------------------------------------


def visible_outbox_messages(user, queryset: QuerySet | None = None) -> QuerySet:
    queryset = queryset_or_all(queryset, "campaigns.OutboxMessage")
    if role_of(user) == Role.ADMIN:
        return queryset
    return queryset.filter(
        Q(to_email__in=visible_customers(user).values("email")) | Q(to_email=user.email or "-")
    )


def access_outbox_message_by_id(user, message_id):
    return get_object_or_404(visible_outbox_messages(user), pk=message_id)
