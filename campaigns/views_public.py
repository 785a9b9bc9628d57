"""The endpoints that outsiders call without logging in; each is authenticated by a
signature instead: SendGrid's Event Webhook, Mailgun's webhooks and the one-click
unsubscribe link."""

from django.contrib.auth.decorators import login_not_required
from django.core import signing
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from campaigns import webhooks_mailgun
from campaigns.services import unsubscribe_by_token
from campaigns.tokens import unsubscribe_token_read
from campaigns.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureRejected,
    events_parse,
    events_store,
    webhook_verify,
)
from crm.errors import ValidationFailed
from customers.models import Customer


@login_not_required
@csrf_exempt  # called by SendGrid; the ECDSA signature is the credential
@require_POST
def sendgrid_webhook(request):
    try:
        webhook_verify(
            body=request.body,
            signature=request.headers.get(SIGNATURE_HEADER),
            timestamp=request.headers.get(TIMESTAMP_HEADER),
        )
    except SignatureRejected as error:
        return JsonResponse({"error": str(error)}, status=403)
    try:
        events = events_parse(request.body)
    except ValidationFailed as error:
        return JsonResponse({"error": error.message}, status=400)
    stored = events_store(events)
    return JsonResponse({"received": len(events), "new": stored})


@login_not_required
@csrf_exempt  # called by Mailgun; the HMAC signature is the credential
@require_POST
def mailgun_webhook(request):
    try:
        stored = webhooks_mailgun.webhook_receive(request.body)
    except SignatureRejected as error:
        return JsonResponse({"error": str(error)}, status=403)
    except ValidationFailed as error:
        return JsonResponse({"error": error.message}, status=400)
    return JsonResponse({"received": 1, "new": stored})


# One-click unsubscribe (RFC 8058): mail clients POST without a CSRF token; the signed token
# is the credential. GET only shows a confirmation page, so link scanners that prefetch URLs
# never unsubscribe anyone.
@login_not_required
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    try:
        customer_id, _ = unsubscribe_token_read(token)
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return render(request, "campaigns/unsubscribe.html", {"invalid": True}, status=400)
    if request.method == "GET":
        customer = Customer.objects.filter(pk=customer_id).only("email", "unsubscribed_at").first()
        return render(request, "campaigns/unsubscribe.html", {"customer": customer, "token": token})
    try:
        customer = unsubscribe_by_token(token=token)
    except ValidationFailed as error:
        return render(request, "campaigns/unsubscribe.html", {"gone": error.message}, status=400)
    return render(request, "campaigns/unsubscribe.html", {"customer": customer, "done": True})
