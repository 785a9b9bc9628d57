"""Campaign pages: thin views over campaigns.services and campaigns.selectors."""

from django.http import HttpResponse


def campaign_list(request):
    return HttpResponse("")
