from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from . import selectors


def backend_badge(request: HttpRequest) -> dict:
    """`backend_badge` for the top bar of every page; read only if a template uses it."""
    return {"backend_badge": SimpleLazyObject(selectors.backend_badge)}
