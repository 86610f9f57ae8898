"""Accounts for tests: the gallery's owner (a superuser, as the first-run setup makes it) and other accounts."""

from __future__ import annotations

from django.contrib.auth import get_user_model

OWNER = "owner"
PASSWORD = "correct horse battery"  # noqa: S105 (test accounts only)


def owner_account():
    """The owner, created on first use: test data made by factories belongs to it unless told otherwise."""
    users = get_user_model().objects
    return users.filter(username=OWNER).first() or users.create_superuser(username=OWNER, password=PASSWORD)


def other_account(username: str = "guest", *, staff: bool = False):
    """Another account, as one created in the admin: not staff unless asked."""
    return get_user_model().objects.create_user(username=username, password=PASSWORD, is_staff=staff)
