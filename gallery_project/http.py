"""The request type the project's page views receive."""

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxRequest(HttpRequest):
    """A request after django-htmx's middleware, which adds `htmx` (django-htmx's documented typing pattern)."""

    htmx: HtmxDetails
