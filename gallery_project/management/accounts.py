"""The account a management command acts for."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.management.base import CommandError, CommandParser


def add_owner_argument(parser: CommandParser, what: str) -> None:
    parser.add_argument("--owner", metavar="USERNAME", help=f"The account {what} (default: the first superuser).")


def command_owner(username: str | None) -> User:
    """The account named `username`, else the first superuser; CommandError if there is none."""
    users = get_user_model().objects
    if username:
        owner = users.filter(**{users.model.USERNAME_FIELD: username}).first()
        if owner is None:
            raise CommandError(f"There is no account named {username!r}.")
        return owner
    owner = users.filter(is_superuser=True).order_by("pk").first()
    if owner is None:
        raise CommandError("There is no account yet: create one (open the gallery, or `manage.py ensure_superuser`).")
    return owner
