"""The pipeline board and the pipeline settings: thin views over sales.board and services."""

from django.contrib import messages
from django.forms import modelformset_factory
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from crm.errors import PermissionDenied, ValidationFailed
from crm.http import querystring_without
from crm.permissions import access_sale_by_id
from crm.permissions.core import require_manager
from crm.realtime import last_event_id
from sales import board, services
from sales.forms import AutomationRuleForm, BoardFilterForm, BoardMoveForm, StageSettingForm
from sales.models import AutomationRule, Sale, StageSetting
from sales.services.pipeline import SETTINGS_REFUSED


def _board_context(request, filter_form: BoardFilterForm, statuses=None) -> dict:
    return {
        **board.board(user=request.user, filters=filter_form.filters(), statuses=statuses),
        "filter_form": filter_form,
        "querystring": querystring_without(request, "offset"),
        "stage_choices": Sale.Status.choices,
    }


def pipeline(request):
    filter_form = BoardFilterForm(request.GET, user=request.user)
    # The events this board has seen: its socket asks for every one after it.
    context = {**_board_context(request, filter_form), "last_event_id": last_event_id()}
    template = (
        "sales/partials/_board.html"
        if request.headers.get("HX-Request") == "true"
        else "sales/pipeline.html"
    )
    return render(request, template, context)


def pipeline_column(request, status: str):
    """More cards of one column, appended when the last card scrolls into view."""
    if status not in Sale.OPEN_STATUSES:
        raise Http404("No such column.")
    try:
        offset = max(0, int(request.GET.get("offset", board.COLUMN_SIZE)))
    except ValueError:
        offset = board.COLUMN_SIZE
    # Past the last card is an empty page, not a number PostgreSQL cannot take as OFFSET.
    offset = min(offset, board.MAX_COLUMN_OFFSET)
    filter_form = BoardFilterForm(request.GET, user=request.user)
    cards = board.board_column_page(
        user=request.user, filters=filter_form.filters(), status=status, offset=offset
    )
    context = {
        "cards": cards,
        "status": status,
        "next_offset": offset + board.COLUMN_SIZE if len(cards) == board.COLUMN_SIZE else None,
        "querystring": querystring_without(request, "offset"),
        "stage_choices": Sale.Status.choices,
    }
    return render(request, "sales/partials/_board_cards.html", context)


def pipeline_live(request):
    """The columns a colleague's change touched (`statuses`, the open stages a deal left and
    entered), as this user sees them with these filters: an open board redraws them when
    the socket says a deal changed (static/js/board.js). A deal out of this user's sight
    simply is not in them."""
    wanted = [s for s in request.GET.get("statuses", "").split(",") if s in Sale.OPEN_STATUSES]
    filter_form = BoardFilterForm(request.GET, user=request.user)
    context = _board_context(request, filter_form, statuses=wanted) if wanted else {}
    return render(request, "sales/partials/_board_live.html", context)


@require_POST
def pipeline_move(request):
    """A card dropped on another column (or moved with the keyboard form). Answers with the
    message and the columns the move changed (their cards and totals), which htmx swaps in
    place; rendering every column again made a move the dearest request of the board."""
    form = BoardMoveForm(request.POST)
    filter_form = BoardFilterForm(request.GET, user=request.user)
    if not form.is_valid():
        return _move_answer(request, filter_form, "That move was not understood.", 400, None)
    data = form.cleaned_data
    sale = access_sale_by_id(request.user, data["sale"])  # 404 for a deal you cannot see
    status = 200
    try:
        change = services.sale_change_stage(
            actor=request.user,
            sale=sale,
            to_status=data["to_status"],
            closed_on=data["closed_on"],
            lost_reason=data["lost_reason"],
            expected_status=data["from_status"],
        )
    except services.StageConflict as error:
        message, status = error.message, 409
    except PermissionDenied:
        message, status = "You can see this deal but not move it.", 403
    except ValidationFailed as error:
        message, status = error.message, 422
    else:
        message = f"“{sale.title}” moved to {change.get_to_status_display()}."
    # Where the card was on screen, where it was dropped, and where it really is now (a
    # conflict: someone else moved it meanwhile).
    if status == 200:
        now_in = data["to_status"]
    else:
        now_in = Sale.objects.filter(pk=sale.pk).values_list("status", flat=True).first()
    changed = {data["from_status"], data["to_status"], now_in}
    return _move_answer(request, filter_form, message, status, changed)


def _move_answer(request, filter_form, message: str, status: int, statuses):
    """The message and the columns of `statuses` (None: all) to swap in out of band."""
    context = {**_board_context(request, filter_form, statuses=statuses),
               "board_message": message, "board_message_is_error": status >= 400}  # fmt: skip
    return render(request, "sales/partials/_board_moved.html", context, status=status)


@require_http_methods(["GET", "POST"])
def pipeline_settings(request):
    """Per-stage base probability, stale limit and tasks; the automation rules."""
    require_manager(request.user, SETTINGS_REFUSED)
    stages = StageSetting.objects.filter(status__in=Sale.OPEN_STATUSES).order_by("id")
    forms = [
        StageSettingForm(request.POST or None, instance=stage, prefix=stage.status)
        for stage in stages
    ]
    RuleFormSet = modelformset_factory(
        AutomationRule, form=AutomationRuleForm, extra=1, can_delete=True
    )
    rules = RuleFormSet(request.POST or None, queryset=AutomationRule.objects.all(), prefix="rule")
    if request.method == "POST" and all(f.is_valid() for f in forms) and rules.is_valid():
        services.pipeline_settings_save(
            actor=request.user,
            stages=[(f.instance, {**f.cleaned_data}) for f in forms],
            rules=rules,
        )
        messages.success(request, "Pipeline settings saved.")
        return redirect("sales:pipeline_settings")
    invalid = request.method == "POST"
    return render(
        request,
        "sales/pipeline_settings.html",
        {"stage_forms": forms, "rules": rules},
        status=422 if invalid else 200,
    )
