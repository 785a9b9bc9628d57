"""The sync pages: connections, their runs (the sync log), mappings and the conflicts queue.
Admins only: every view asks integrations.selectors, which refuses anyone else (403)."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm.errors import ValidationFailed
from crm.http import is_htmx, submitted
from integrations import selectors
from integrations.forms import ConnectionForm, MappingsForm, ResolveForm
from integrations.services.connections import (
    conflict_resolve,
    connection_create,
    connection_delete,
    connection_mappings_save,
    connection_test,
    connection_update,
)
from integrations.services.runs import sync_retry, sync_start

RUNS_PER_PAGE = 20
FAILURES_PER_PAGE = 50
CONFLICTS_PER_PAGE = 50


def _connection(request, pk: int):
    found = selectors.connection(user=request.user, connection_id=pk)
    if found is None:
        raise Http404("No such connection.")
    return found


@require_GET
def connection_list(request):
    items = list(selectors.connections(user=request.user))
    return render(request, "integrations/connection_list.html",
                  {"section": "integrations", "connections": items})  # fmt: skip


@require_http_methods(["GET", "POST"])
def connection_new(request):
    selectors.connections(user=request.user)  # admins only, before any form
    form = ConnectionForm(request.POST or None)
    saved, connection = submitted(request, form, lambda: connection_create(
        actor=request.user, data=form.settings_data(), secrets=form.secrets()))  # fmt: skip
    if saved:
        messages.success(request, "Connected. Test the connection, then start the first sync.")
        return redirect("integrations:detail", pk=connection.pk)
    return render(request, "integrations/connection_form.html",
                  {"section": "integrations", "form": form, "connection": None})  # fmt: skip


@require_http_methods(["GET", "POST"])
def connection_edit(request, pk: int):
    connection = _connection(request, pk)
    form = ConnectionForm(request.POST or None, instance=connection, editing=True)

    def save():
        data = form.settings_data()
        data.pop("provider")
        connection_update(
            actor=request.user, connection=connection, data=data, secrets=form.secrets()
        )

    if submitted(request, form, save)[0]:
        messages.success(request, "Connection saved.")
        return redirect("integrations:detail", pk=connection.pk)
    return render(request, "integrations/connection_form.html",
                  {"section": "integrations", "form": form, "connection": connection})  # fmt: skip


@require_GET
def connection_detail(request, pk: int):
    connection = _connection(request, pk)
    runs = selectors.runs(user=request.user, connection=connection)
    context = {
        "section": "integrations",
        "connection": connection,
        "last_run": runs.first(),
        "recent_runs": list(runs[:5]),
        "open_conflicts": selectors.open_conflicts(
            user=request.user, connection=connection
        ).count(),
    }
    return render(request, "integrations/connection_detail.html", context)


@require_POST
def connection_test_view(request, pk: int):
    connection = _connection(request, pk)
    ok, message = connection_test(actor=request.user, connection=connection)
    (messages.success if ok else messages.error)(request, message)
    return redirect("integrations:detail", pk=connection.pk)


@require_POST
def sync_now(request, pk: int):
    connection = _connection(request, pk)
    run = sync_start(connection=connection, actor=request.user)
    if is_htmx(request):
        return render(request, "integrations/partials/_run_progress.html", {"run": run})
    messages.success(request, f"{run.get_kind_display()} queued.")
    return redirect("integrations:detail", pk=connection.pk)


@require_http_methods(["GET", "POST"])
def connection_delete_view(request, pk: int):
    connection = _connection(request, pk)
    if request.method == "POST":
        connection_delete(actor=request.user, connection=connection)
        messages.success(request, "Connection deleted; synced records stay in the CRM.")
        return redirect("integrations:list")
    return render(request, "integrations/connection_delete.html",
                  {"section": "integrations", "connection": connection})  # fmt: skip


@require_http_methods(["GET", "POST"])
def mappings(request, pk: int):
    connection = _connection(request, pk)
    initial = {"field_map": connection.field_map, "stage_map": connection.stage_map}
    form = MappingsForm(request.POST or None, initial=initial)
    saved, _ = submitted(request, form, lambda: connection_mappings_save(
        actor=request.user, connection=connection, field_map=form.cleaned_data["field_map"],
        stage_map=form.cleaned_data["stage_map"]))  # fmt: skip
    if saved:
        messages.success(request, "Mappings saved; they apply from the next sync.")
        return redirect("integrations:detail", pk=connection.pk)
    return render(request, "integrations/mappings.html",
                  {"section": "integrations", "connection": connection, "form": form})  # fmt: skip


@require_GET
def run_list(request, pk: int):
    connection = _connection(request, pk)
    page = Paginator(selectors.runs(user=request.user, connection=connection), RUNS_PER_PAGE)
    return render(
        request,
        "integrations/run_list.html",
        {"section": "integrations", "connection": connection,
         "page": page.get_page(request.GET.get("page"))},
    )  # fmt: skip


def _run(request, pk: int):
    found = selectors.run(user=request.user, run_id=pk)
    if found is None:
        raise Http404("No such sync run.")
    return found


@require_GET
def run_detail(request, pk: int):
    run = _run(request, pk)
    failures = Paginator(selectors.failures(user=request.user, run=run), FAILURES_PER_PAGE)
    return render(
        request,
        "integrations/run_detail.html",
        {"section": "integrations", "run": run, "connection": run.connection,
         "page": failures.get_page(request.GET.get("page"))},
    )  # fmt: skip


@require_GET
def run_progress(request, pk: int):
    return render(request, "integrations/partials/_run_progress.html", {"run": _run(request, pk)})


@require_POST
def run_retry(request, pk: int):
    run = sync_retry(actor=request.user, run=_run(request, pk))
    messages.success(request, "Retry queued.")
    return redirect("integrations:run", pk=run.pk)


@require_GET
def conflict_list(request, pk: int):
    connection = _connection(request, pk)
    page = Paginator(
        selectors.open_conflicts(user=request.user, connection=connection), CONFLICTS_PER_PAGE
    )
    return render(
        request,
        "integrations/conflict_list.html",
        {"section": "integrations", "connection": connection,
         "page": page.get_page(request.GET.get("page")), "form": ResolveForm()},
    )  # fmt: skip


@require_POST
def conflict_resolve_view(request, pk: int):
    conflict = selectors.conflict(user=request.user, conflict_id=pk)
    if conflict is None:
        raise Http404("No such conflict.")
    form = ResolveForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose which value to keep.")
    else:
        try:
            conflict_resolve(actor=request.user, conflict=conflict, keep=form.cleaned_data["keep"])
        except ValidationFailed as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "Conflict settled.")
    return redirect("integrations:conflicts", pk=conflict.connection_id)
