"""The worker alert, polled by every page so an open page shows it when background work stops."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def alert(request: HttpRequest) -> HttpResponse:
    return render(request, "worker/alert.html")
