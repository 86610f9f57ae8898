from __future__ import annotations

import math

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import redirect, render
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_http_methods

from .accounts import account_exists, admin_create
from .errors import error_body, is_api_path


@login_not_required
@require_http_methods(["GET", "POST"])
def first_run_setup(request: HttpRequest) -> HttpResponse:
    """Create the owner's account on a fresh install; afterwards this page only points to the login."""
    if account_exists():
        return redirect("login")
    form: UserCreationForm = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = admin_create(
            username=form.cleaned_data["username"], password=form.cleaned_data["password1"], first_run=True
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("photos:gallery")
    return render(request, "registration/setup.html", {"form": form})


@method_decorator(login_not_required, name="dispatch")
class LoginView(auth_views.LoginView):
    """The login page; on a fresh install with no account yet, the first-run setup page instead."""

    redirect_authenticated_user = True

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponseBase:
        if not account_exists():
            return redirect("setup")
        return super().dispatch(request, *args, **kwargs)


def login_lockout_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def login_lockout_message() -> str:
    minutes = math.ceil(login_lockout_seconds() / 60)
    return (
        "Too many wrong passwords for this username from your address: logging in from here is paused for "
        f"{minutes} minute{'s' if minutes != 1 else ''} after the last attempt."
    )


def login_locked_out(request: HttpRequest, response=None, credentials=None) -> HttpResponse:
    """django-axes' answer to a login from a locked (username, address) pair: 429 with Retry-After, as JSON
    under /api/ and as the login page otherwise (the admin's login too)."""
    if is_api_path(request.path):
        locked: HttpResponse = JsonResponse(
            error_body("login_locked", login_lockout_message(), {"retry_after": login_lockout_seconds()}), status=429
        )
    else:
        locked = render(request, "registration/login.html", {"lockout": login_lockout_message()}, status=429)
    locked["Retry-After"] = str(login_lockout_seconds())
    return locked
