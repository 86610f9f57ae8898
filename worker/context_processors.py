from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from . import selectors


def worker_health(request: HttpRequest) -> dict:
    """`worker_health` for the alert on every page; read only if a template uses it."""
    return {"worker_health": SimpleLazyObject(selectors.worker_health)}
