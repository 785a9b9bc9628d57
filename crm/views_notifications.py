"""The bell, the notifications page and the preferences: thin views over crm.notifications.
Every page shows the signed-in user's own notifications only."""

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from crm import notifications
from crm.http import is_htmx, querystring_without
from crm.models import Notification, NotificationPreference
from crm.realtime import last_event_id

PAGE_SIZE = 30


class NotificationFilterForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[("", "All kinds"), *Notification.Kind.choices], required=False
    )
    state = forms.ChoiceField(
        choices=[("", "Read and unread"), ("unread", "Unread"), ("read", "Read")],
        required=False,
    )


def bell(request):
    """The bell's count and dropdown, fetched by the header when the socket opens and each
    time a notification arrives."""
    return render(
        request,
        "notifications/_bell.html",
        {
            "unread": notifications.unread_count(request.user),
            "latest": notifications.latest(request.user),
            "last_event_id": last_event_id(),
        },
    )


def notification_list(request):
    form = NotificationFilterForm(request.GET)
    filters = form.cleaned_data if form.is_valid() else {}
    rows = notifications.notifications_of(
        request.user, kind=filters.get("kind", ""), state=filters.get("state", "")
    )
    page = Paginator(rows.select_related("actor"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "notifications/list.html",
        {
            "page": page,
            "form": form,
            "querystring": querystring_without(request, "page"),
            "unread": notifications.unread_count(request.user),
        },
    )


def notification_open(request, pk: int):
    """Mark one notification read and go where it points."""
    notification = Notification.objects.filter(pk=pk, recipient=request.user).first()
    if notification is None:
        raise Http404("No such notification.")
    notifications.notifications_mark_read(user=request.user, ids=[notification.pk])
    link = notification.link
    safe = link and url_has_allowed_host_and_scheme(link, allowed_hosts={request.get_host()})
    return redirect(link if safe else "notifications:list")


@require_POST
def mark_all_read(request):
    count = notifications.notifications_mark_read(user=request.user)
    if is_htmx(request):
        return bell(request)
    messages.success(request, f"{count} notification{'s' if count != 1 else ''} marked read.")
    return redirect("notifications:list")


class PreferencesForm(forms.Form):
    def __init__(self, *args, current: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        for kind, label in Notification.Kind.choices:
            self.fields[kind] = forms.ChoiceField(
                label=label,
                choices=NotificationPreference.Delivery.choices,
                initial=current[kind],
                widget=forms.RadioSelect,
            )


@require_http_methods(["GET", "POST"])
def preferences(request):
    current = notifications.preferences_of(request.user)
    form = PreferencesForm(request.POST or None, current=current)
    if request.method == "POST" and form.is_valid():
        notifications.preferences_save(user=request.user, deliveries=form.cleaned_data)
        messages.success(request, "Notification preferences saved.")
        return redirect("notifications:preferences")
    status = 422 if request.method == "POST" else 200
    return render(
        request,
        "notifications/preferences.html",
        {"form": form, "has_email": bool(request.user.email)},
        status=status,
    )
