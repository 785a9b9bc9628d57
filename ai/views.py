"""The AI pages: the model page (managers and admins) and the recommendation panels of the
customer and deal pages."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from ai import selectors
from ai.forms import GradingSourceForm, ShareForm
from ai.services.preferences import grading_source_set
from ai.services.recommend import recommendation_share
from ai.services.registry import model_activate, model_deactivate
from ai.services.training_runs import training_run_start
from crm.errors import PermissionDenied, ValidationFailed
from crm.http import is_htmx
from crm.permissions import (
    access_customer_by_id,
    access_sale_by_id,
    can_share_with,
    require_manager,
)


@require_GET
def model_page(request):
    models = list(selectors.scoring_models(user=request.user))
    runs = list(selectors.training_runs(user=request.user))
    shown = next((m for m in models if str(m.pk) == request.GET.get("model")), None)
    shown = shown or next((m for m in models if m.is_active and not m.team_id), None)
    shown = shown or (models[0] if models else None)
    preference = selectors.scoring_preference()
    context = {
        "section": "ai",
        "models": models,
        "shown": shown,
        "charts": selectors.model_charts(shown) if shown else None,
        "runs": runs,
        "last_run": runs[0] if runs else None,
        "thresholds": selectors.thresholds(),
        "grading_form": GradingSourceForm(initial={"grading_source": preference.grading_source}),
        "preference": preference,
        "active_models": [m for m in models if m.is_active],
    }
    return render(request, "ai/model_page.html", context)


@require_POST
def train_now(request):
    run = training_run_start(actor=request.user)
    if is_htmx(request):
        return render(request, "ai/partials/_training_progress.html", {"run": run})
    messages.success(request, "Training started.")
    return redirect("ai:models")


@require_GET
def training_progress(request, pk: int):
    run = selectors.training_run(user=request.user, run_id=pk)
    if run is None:
        raise Http404("No such training run.")
    return render(request, "ai/partials/_training_progress.html", {"run": run})


def _registry_action(request, action, pk: int, done: str):
    try:
        record = action(actor=request.user, model_id=pk)
    except ValidationFailed as error:
        messages.error(request, error.message)
    else:
        messages.success(request, done.format(version=record.version))
    return redirect("ai:models")


@require_POST
def activate(request, pk: int):
    return _registry_action(request, model_activate, pk, "Model v{version} is now in use.")


@require_POST
def deactivate(request, pk: int):
    return _registry_action(request, model_deactivate, pk, "Model v{version} is no longer used.")


@require_POST
def grading_source(request):
    require_manager(request.user)
    form = GradingSourceForm(request.POST)
    if form.is_valid():
        grading_source_set(actor=request.user, source=form.cleaned_data["grading_source"])
        messages.success(request, "Saved; every lead is being regraded.")
    else:
        messages.error(request, "Choose the rule score or the model score.")
    return redirect("ai:models")


@require_GET
def customer_recommendations(request, pk: int):
    customer = access_customer_by_id(request.user, pk)
    items = selectors.customer_recommendations(user=request.user, customer=customer)
    can_share = can_share_with(request.user, customer=customer)
    return render(request, "ai/partials/_recommendations.html",
                  {"items": items, "customer": customer, "sale": None,
                   "can_share": can_share})  # fmt: skip


@require_GET
def sale_recommendations(request, pk: int):
    sale = access_sale_by_id(request.user, pk)
    items = selectors.sale_recommendations(user=request.user, sale=sale)
    can_share = can_share_with(request.user, customer=sale.customer, sale=sale)
    return render(request, "ai/partials/_recommendations.html",
                  {"items": items, "customer": sale.customer, "sale": sale,
                   "can_share": can_share})  # fmt: skip


@require_POST
def share(request, pk: int):
    """One click: the tracked share link of a recommended document, made for this customer
    (refused with the reason when the customer, or the deal, is only shared to read)."""
    customer = access_customer_by_id(request.user, pk)
    sale = None
    if request.POST.get("sale"):
        try:
            sale = access_sale_by_id(request.user, int(request.POST["sale"]))
        except (TypeError, ValueError, OverflowError):
            raise Http404("No such deal.") from None
        if sale.customer_id != customer.pk:
            raise Http404("No such deal.")
    form = ShareForm(request.POST)
    if not form.is_valid():
        return render(request, "ai/partials/_share_result.html",
                      {"error": "Choose a document."}, status=400)  # fmt: skip
    try:
        _share, link = recommendation_share(
            actor=request.user, customer=customer, document_id=form.cleaned_data["document"],
            sale=sale,
        )  # fmt: skip
    except ValidationFailed as error:
        return render(request, "ai/partials/_share_result.html",
                      {"error": error.message}, status=404)  # fmt: skip
    except PermissionDenied as error:
        return render(request, "ai/partials/_share_result.html",
                      {"error": str(error)}, status=403)  # fmt: skip
    return render(request, "ai/partials/_share_result.html", {"link": link})
