"""The owner's account: created on the first-run page, or from DJANGO_SUPERUSER_* by `make run`."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from .errors import Conflict


def account_exists() -> bool:
    return get_user_model().objects.exists()


def admin_create(*, username: str, password: str, first_run: bool = False) -> AbstractBaseUser:
    """Create a superuser. With `first_run`, refuse if any account exists (the setup page is single-use)."""
    User = get_user_model()
    with transaction.atomic():
        if first_run and User.objects.select_for_update().exists():
            raise Conflict("The gallery already has an account; log in instead.", code="already_set_up")
        return User.objects.create_superuser(username=username, password=password)
