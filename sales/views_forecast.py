"""The forecast page (being written)."""

from django.http import HttpResponse


def forecast(request):
    return HttpResponse("Forecast coming soon.")
