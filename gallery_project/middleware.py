"""Login for every page by default; the few public views opt out with `login_not_required`."""

from __future__ import annotations

from django.contrib.auth import middleware as auth_middleware
from django_htmx.http import HttpResponseClientRedirect
from rest_framework.views import APIView


class LoginRequiredMiddleware(auth_middleware.LoginRequiredMiddleware):
    """Django's LoginRequiredMiddleware, leaving API views to DRF and redirecting htmx requests properly.

    DRF authenticates tokens inside the view, after this middleware has run, so API views are left to DRF's
    IsAuthenticated default, which answers 401 with the project's error body instead of a login redirect.
    """

    def process_view(self, request, view_func, view_args, view_kwargs):
        view_class = getattr(view_func, "cls", None)
        if isinstance(view_class, type) and issubclass(view_class, APIView):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)

    def handle_no_permission(self, request, view_func):
        response = super().handle_no_permission(request, view_func)
        if getattr(request, "htmx", False):
            # A plain redirect would swap the login page into a fragment of the current page.
            return HttpResponseClientRedirect(response["Location"])
        return response
