"""Accounts: the owner's, created on the first-run page or from DJANGO_SUPERUSER_* by `make run`; others in the
admin. See gallery_project.permissions for what each may do."""

from __future__ import annotations

from collections.abc import Iterable

from axes.backends import AxesStandaloneBackend
from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Model, QuerySet

from .errors import Conflict

# The models with an `owner`: rows from before accounts existed have none until an account adopts them.
OWNED_MODELS = ("photos.Photo", "albums.Album", "albums.ShareLink", "generation.GenerationSession")


class LoginLimitsBackend(AxesStandaloneBackend):
    """django-axes' refusal of a locked (username, address) pair, for logins that come with a request: the
    login page, the admin's and the token API. `authenticate()` called without one (scripts, the test client's
    `login()`) is no guess from outside; axes would raise for it, and it is let through to the password check."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def account_exists() -> bool:
    return get_user_model().objects.exists()


def ownerless_adopt(*, models: Iterable[type[Model]], users: QuerySet) -> None:
    """Give rows without an owner to the earliest superuser (else the earliest account). With no account yet,
    they wait for the first one: `admin_create` calls this again.

    Takes the models and users to use, so that migrations can pass their historical ones.
    """
    owner = users.order_by("-is_superuser", "pk").first()
    if owner is None:
        return
    for model in models:
        model._default_manager.filter(owner=None).update(owner=owner)


def ownerless_adopt_all() -> None:
    """`ownerless_adopt` for every owned model, with this project's accounts."""
    models = [django_apps.get_model(label) for label in OWNED_MODELS]
    ownerless_adopt(models=models, users=get_user_model().objects.all())


def admin_create(*, username: str, password: str, first_run: bool = False) -> User:
    """Create a superuser. With `first_run`, refuse if any account exists (the setup page is single-use)."""
    accounts = get_user_model().objects
    with transaction.atomic():
        if first_run and accounts.select_for_update().exists():
            raise Conflict("The gallery already has an account; log in instead.", code="already_set_up")
        user = accounts.create_superuser(username=username, password=password)
        ownerless_adopt_all()
    return user
