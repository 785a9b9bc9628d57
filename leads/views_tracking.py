"""Public tracking endpoints: no login, authenticated by the signed token in the URL."""

import base64
import json

from django.contrib.auth.decorators import login_not_required
from django.core import signing
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from crm.errors import ValidationFailed
from crm.http import MAX_JSON_DEPTH, json_for_storage
from customers.models import Customer
from leads.models import ActivityType
from leads.services.activities import lead_activity_record
from leads.tracking import customer_id_from_token

# What a website may report; emails and the CRM's own users record the other types.
PUBLIC_TYPES = {ActivityType.WEBSITE_VISIT, ActivityType.DOWNLOAD, ActivityType.FORM_SUBMIT}
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
MAX_DETAILS_BYTES = 4096


def _customer_id_for(token: str) -> int | None:
    try:
        return customer_id_from_token(token)
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None


def _customer_for(token: str) -> Customer | None:
    customer_id = _customer_id_for(token)
    return None if customer_id is None else Customer.objects.filter(pk=customer_id).first()


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@login_not_required
@csrf_exempt  # called from other sites; the signed token is the credential
@require_POST
def track(request, token: str):
    customer_id = _customer_id_for(token)
    if customer_id is None:
        return _error("Invalid or expired tracking token.", 403)
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        return _error("Unknown customer: it may have been deleted.", 400)
    if request.content_type == "application/json":
        try:
            payload = json.loads(request.body or b"{}")
        except (ValueError, RecursionError):
            return _error("The body is not valid JSON.", 400)
        if not isinstance(payload, dict):
            return _error("The body must be a JSON object.", 400)
    else:
        payload = request.POST.dict()
    activity_type = payload.pop("type", "")
    if not isinstance(activity_type, str) or activity_type not in PUBLIC_TYPES:
        allowed = ", ".join(sorted(PUBLIC_TYPES))
        return _error(f"Unknown activity type “{activity_type}”; use one of: {allowed}.", 400)
    details = payload.get("details", payload)
    try:
        details = json_for_storage(details)
    except ValueError:
        return _error(f"details may nest at most {MAX_JSON_DEPTH} levels.", 400)
    if not isinstance(details, dict) or len(json.dumps(details)) > MAX_DETAILS_BYTES:
        return _error("details must be an object of at most 4 KB.", 400)
    try:
        activity = lead_activity_record(
            customer=customer, activity_type=activity_type, details=details
        )
    except ValidationFailed as error:
        return _error(error.message, 400)
    return JsonResponse({"id": activity.pk, "type": activity.activity_type}, status=201)


@login_not_required
@require_GET
@never_cache
def track_open_pixel(request, token: str):
    """A 1x1 GIF; a valid token records a website visit. Always answers the image."""
    customer = _customer_for(token)
    if customer is not None:
        lead_activity_record(
            customer=customer,
            activity_type=ActivityType.WEBSITE_VISIT,
            details={"via": "pixel", "referer": request.headers.get("Referer", "")[:500]},
        )
    return HttpResponse(PIXEL, content_type="image/gif")
