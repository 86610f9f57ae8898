"""Who may do what. Views, the API and the admin all ask here.

- **Ownership.** Photos, albums, share links and studio sessions belong to the account that made them (an
  `owner` on Photo, Album, ShareLink and GenerationSession; steps, images and album entries follow theirs).
  Every selector and service takes the acting user and looks rows up within `owned_by`, so another account's
  object is not found: the same 404 as an id that does not exist, which tells nobody that it does.
- **Staff** (`is_staff`) run the backend: mode, InvokeAI URLs, the RunPod key, pods, costs, the model cache.
  Every account may generate on the backend the staff configured; only staff may start or stop pods.
- **The admin** is for staff. Superusers see every account's rows there; other staff see only their own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

from django.contrib import admin
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from rest_framework.permissions import BasePermission

STAFF_ONLY = "Only staff accounts may see or change the backend and its models."

# The account whose rows a read is of: the acting user (an anonymous one owns nothing), or an account's id
# (None: a row's owner from before accounts existed, whose rows are as ownerless as it until an account adopts them).
Owner: TypeAlias = AbstractBaseUser | AnonymousUser | int | None

M = TypeVar("M", bound=Model)
V = TypeVar("V", bound=Callable[..., Any])


def owned_by(queryset: QuerySet[M], owner: Owner, *, via: str = "owner") -> QuerySet[M]:
    """The rows of `queryset` that belong to `owner`; `via` reaches the owner through a relation
    (e.g. `session__owner` for a step). Nothing belongs to an anonymous user."""
    if isinstance(owner, AnonymousUser):
        return queryset.none()
    return queryset.filter(**{via: owner})


def is_staff(user: Any) -> bool:
    return bool(getattr(user, "is_active", False) and getattr(user, "is_staff", False))


def require_staff(user: Any) -> None:
    if not is_staff(user):
        raise PermissionDenied(STAFF_ONLY)


def staff_required(view: V) -> V:
    """For page views: 403 for an account that is not staff (a login redirect would only loop)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        require_staff(request.user)
        return view(request, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class IsStaff(BasePermission):
    """For API views: 403 for an account that is not staff."""

    message = STAFF_ONLY

    def has_permission(self, request: Any, view: Any) -> bool:
        return is_staff(request.user)


class OwnedAdmin(admin.ModelAdmin):
    """An admin of owned rows: superusers see everyone's, other staff their own; the owner is listed and
    filterable, and never changed here (what a row may refer to depends on it)."""

    owner_field = "owner"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return owned_by(queryset, request.user, via=self.owner_field)

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        return [*super().get_list_display(request), self.owner_field]

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return [*super().get_list_filter(request), self.owner_field]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        readonly = list(super().get_readonly_fields(request, obj))
        return readonly if "__" in self.owner_field else [*readonly, self.owner_field]

    def get_list_select_related(self, request: HttpRequest) -> Any:
        related = super().get_list_select_related(request)
        return True if related is True else [*(related or []), self.owner_field]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Added here, a row belongs to whoever added it (the field is read-only, so the form leaves it empty).
        if not change and "__" not in self.owner_field and getattr(obj, f"{self.owner_field}_id") is None:
            setattr(obj, self.owner_field, request.user)
        super().save_model(request, obj, form, change)


def signed_in(user: AbstractBaseUser | AnonymousUser) -> User:
    """The account a write acts for. Views reach their writes only past a login requirement; this says so to the
    type checker, and refuses rather than write a row nobody owns should a view ever forget that requirement."""
    if not isinstance(user, User) or not user.is_authenticated:
        raise PermissionDenied("Log in first.")
    return user
