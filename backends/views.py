"""The backend page (mode, pod start and stop, settings, costs, history) and the status badge on every page.

The page and its forms are for staff only; the badge is on everyone's pages, without costs for other accounts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRefresh

from gallery_project.errors import AppError
from gallery_project.http import HtmxRequest
from gallery_project.permissions import staff_required

from . import costs, pods, selectors, services
from .forms import ApiKeyForm, BackendAddForm, BackendSettingsForm, PodStartForm
from .models import Backend, PodSession

HISTORY_SIZE = 25

_T = TypeVar("_T")


def _act(request: HttpRequest, action: Callable[[], _T], said: Callable[[_T], str]) -> HttpResponse:
    """Do `action`, then back to the page saying what it did (`said` of its result), or why it was refused."""
    try:
        result = action()
    except AppError as exc:
        messages.error(request, exc.message)
    else:
        messages.info(request, said(result))
    return redirect("backends:page")


def _page_context(**extra) -> dict:
    sessions, total = selectors.pod_session_list(limit=HISTORY_SIZE)
    status = selectors.backend_status()
    row = services.backend_settings_get()
    return {
        "backend_status": status,
        "sessions": [
            selectors.pod_status(session, row, now=status.now, spent=status.spent_this_month) for session in sessions
        ],
        "sessions_total": total,
        "settings_form": BackendSettingsForm(instance=row),
        "api_key_form": ApiKeyForm(),
        "backend_form": BackendAddForm(),
        "storage_rate": costs.VOLUME_STOPPED_PER_GB_MONTH,
        "network_rate": costs.NETWORK_VOLUME_PER_GB_MONTH,
        **extra,
    }


@require_GET
@vary_on_headers("HX-Request")
@staff_required
def backend_page(request: HtmxRequest) -> HttpResponse:
    if request.htmx:
        # The pod panel polls itself while a pod starts or stops, with only what it shows; once the pod is
        # ready or stopped, the whole page is reloaded, so costs and history show the change too.
        status = selectors.backend_status()
        if not status.changing:
            return HttpResponseClientRefresh()
        return render(request, "backends/page.html#pod-panel", {"backend_status": status})
    return render(request, "backends/page.html", _page_context())


@require_GET
def badge(request: HttpRequest) -> HttpResponse:
    return render(request, "backends/badge.html")


@require_POST
@staff_required
def mode_set(request: HttpRequest) -> HttpResponse:
    return _act(request, lambda: services.backend_mode_set(mode=request.POST.get("mode", "")), str)


@require_POST
@staff_required
def pod_start(request: HttpRequest) -> HttpResponse:
    form = PodStartForm(request.POST)
    if not form.is_valid():
        messages.error(request, "That GPU type cannot be sent to RunPod.")
        return redirect("backends:page")
    return _act(
        request,
        lambda: pods.pod_start(**form.cleaned_data),
        lambda session: (
            f"Starting a pod with a {session.gpu_type}. Remote mode is on: the studio generates on the "
            "pod once it is ready."
        ),
    )


@require_POST
@staff_required
def pod_stop(request: HttpRequest) -> HttpResponse:
    def said(session: PodSession) -> str:
        local = f"Back to the local InvokeAI at {services.backend_settings_get().effective_local_url}."
        if session.state == PodSession.State.STOPPING:
            return f"Stopping the pod; RunPod has not confirmed it yet, the app keeps checking. {local}"
        return f"The pod is stopped. {local}"

    return _act(request, pods.pod_stop, said)


@require_POST
@staff_required
def pod_session_stop(request: HtmxRequest, session_id: int) -> HttpResponse:
    """Stop one pod of several; the others keep running (and taking steps). With htmx, the page's main column
    is drawn again: the pod list, the backends, the costs and the sessions' history all change with it."""
    level = messages.INFO
    try:
        session = pods.pod_stop(session_id=session_id)
    except AppError as exc:
        notice, level = exc.message, messages.ERROR
    else:
        done = "stopping; RunPod has not confirmed it yet" if session.state == PodSession.State.STOPPING else "stopped"
        notice = f"Pod {session.pod_id or session.name} is {done}."
    if not request.htmx:
        messages.add_message(request, level, notice)
        return redirect("backends:page")
    return render(request, "backends/page.html#backend-main", _page_context(notice=notice))


@require_POST
@staff_required
def pod_terminate(request: HttpRequest, pod_id: str) -> HttpResponse:
    return _act(
        request,
        lambda: pods.pod_terminate_stopped(pod_id=pod_id),
        lambda _: f"Pod {pod_id} and its volume disk are deleted.",
    )


@require_POST
@staff_required
def settings_save(request: HttpRequest) -> HttpResponse:
    form = BackendSettingsForm(request.POST, instance=services.backend_settings_get())
    if not form.is_valid():
        context = _page_context(settings_form=form)
        return render(request, "backends/page.html", context, status=400)
    services.backend_settings_update(**{name: form.cleaned_data[name] for name in form.Meta.fields})
    messages.info(request, "Settings saved.")
    return redirect("backends:page")


@require_POST
@staff_required
def api_key_save(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST)
    if form.is_valid() and form.cleaned_data["remove"]:
        services.api_key_clear()
        messages.info(request, "The stored RunPod API key is removed.")
        return redirect("backends:page")
    return _act(
        request,
        lambda: services.api_key_set(api_key=form.cleaned_data["api_key"] if form.is_valid() else ""),
        lambda _: "RunPod API key stored (encrypted).",
    )


@require_POST
@staff_required
def backend_add(request: HttpRequest) -> HttpResponse:
    form = BackendAddForm(request.POST)
    if not form.is_valid():
        return render(request, "backends/page.html", _page_context(backend_form=form), status=400)
    try:
        backend = services.backend_add(**form.cleaned_data)
    except AppError as exc:
        form.add_error("url", exc.message)
        return render(request, "backends/page.html", _page_context(backend_form=form), status=400)
    messages.info(request, f"{backend.name} added; its status shows once the worker has checked it.")
    return redirect("backends:page")


@require_POST
@staff_required
def backend_update(request: HttpRequest, backend_id: int) -> HttpResponse:
    def said(backend: Backend) -> str:
        what = "takes new steps again" if backend.enabled else "gets no new steps; the ones it has finish there"
        return f"{backend.name} {what}."

    return _act(
        request,
        lambda: services.backend_update(backend_id=backend_id, enabled=request.POST.get("enabled") == "true"),
        said,
    )


@require_POST
@staff_required
def backend_remove(request: HttpRequest, backend_id: int) -> HttpResponse:
    return _act(request, lambda: services.backend_remove(backend_id=backend_id), lambda _: "Backend removed.")
