"""What the backend looks like right now, for the API, the backend page and the badge on every page.

Read from the database only: the badge is rendered on every page and polled, so it must never wait on RunPod
or InvokeAI. The minute checks keep what is read here current.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from gallery_project.errors import Unavailable
from worker.selectors import WorkerHealth, worker_health

from . import costs, manager, pods, services
from .models import Backend, BackendSettings, PodSession

# The automatic stop of a pod that does not get ready in time (RUNPOD_START_TIMEOUT).
START_TIMEOUT = "start_timeout"


@dataclass(frozen=True)
class PodStatus:
    session: PodSession
    current_cost: Decimal
    cost_per_image: Decimal | None
    # Only for a ready pod: minutes since the last activity.
    idle_minutes: float | None
    # The soonest automatic stop if nothing happens: idle, longest session, budget or start timeout.
    minutes_until_auto_stop: float | None
    auto_stop_reason: str

    @property
    def seconds_until_auto_stop(self) -> int | None:
        return None if self.minutes_until_auto_stop is None else int(self.minutes_until_auto_stop * 60)


@dataclass(frozen=True)
class BackendEntry:
    """One InvokeAI new steps may go to, as the backend page and the status API list them."""

    # "local", "pod" or "url" (a remote InvokeAI: the remote URL of remote mode, or an added backend).
    kind: str
    name: str
    url: str
    # The InvokeAI in use (the local one or the pod), which the mode chooses; the others are added backends.
    in_use: bool
    enabled: bool
    connected: bool
    api_version: str
    connection_error: str
    queue_pending: int
    queue_in_progress: int
    models: int | None
    # A pod's cost so far; None for an InvokeAI the app does not pay for by the minute.
    current_cost: Decimal | None
    backend_id: int | None = None
    checked_at: datetime | None = None

    @property
    def queue_size(self) -> int:
        return self.queue_pending + self.queue_in_progress


def backend_entries(row: BackendSettings, *, url: str, pod: PodStatus | None) -> list[BackendEntry]:
    """The InvokeAI in use (if remote mode has one) and every added backend."""
    entries = []
    if url:
        ready_pod = pod if pod is not None and pod.session.state == PodSession.State.READY else None
        kind = "local" if row.backend_mode == BackendSettings.Mode.LOCAL else "pod" if ready_pod else "url"
        names = {
            "local": "Local InvokeAI",
            "pod": f"RunPod pod {ready_pod.session.pod_id}" if ready_pod else "",
            "url": "Remote InvokeAI",
        }
        entries.append(
            BackendEntry(
                kind=kind,
                name=names[kind],
                url=url,
                in_use=True,
                enabled=True,
                connected=row.is_connected,
                api_version=row.api_version,
                connection_error=row.connection_error,
                queue_pending=row.queue_pending,
                queue_in_progress=row.queue_in_progress,
                models=len(row.model_hashes) if row.models_url == url else None,
                current_cost=ready_pod.current_cost if ready_pod else None,
                checked_at=row.last_connected_at,
            )
        )
    for backend in backend_list():
        entries.append(
            BackendEntry(
                kind="url",
                name=backend.name,
                url=backend.url,
                in_use=False,
                enabled=backend.enabled,
                connected=backend.is_connected,
                api_version=backend.api_version,
                connection_error=backend.connection_error,
                queue_pending=backend.queue_pending,
                queue_in_progress=backend.queue_in_progress,
                models=len(backend.model_hashes) if backend.models_listed_at else None,
                current_cost=None,
                backend_id=backend.pk,
                checked_at=backend.checked_at,
            )
        )
    return entries


@dataclass(frozen=True)
class BackendStatus:
    now: datetime
    mode: str
    url: str
    url_problem: str
    connected: bool
    api_version: str
    last_connected_at: datetime | None
    connection_error: str
    api_key: services.ApiKeyState
    # The active session, else the latest one (a failed start's message stays visible).
    pod: PodStatus | None
    monthly_budget: Decimal | None
    spent_this_month: Decimal
    lifetime_hours: float
    lifetime_cost: Decimal
    lifetime_images: int
    lifetime_cost_per_image: Decimal | None
    storage: costs.StorageCharge
    stopped_pods: list[dict[str, Any]]
    idle_timeout_minutes: int
    max_session_hours: int
    known_gpu_types: list[dict[str, Any]]
    gpu_type: str
    # The stopped pod the next start resumes (keeping its models), if any.
    resumable_pod_id: str
    # Starting, stopping or alerting: worth polling more often.
    changing: bool
    # The idle stop and the other pod checks run in the background worker: whether it works.
    worker: WorkerHealth
    # Every InvokeAI new steps may go to: the one in use first, then the added ones.
    backends: list[BackendEntry]
    # Every active pod, the oldest first (several when started with `another`), each stopped on its own.
    pods: list[PodStatus]


def _auto_stop(
    session: PodSession, row: BackendSettings, *, now: datetime, spent: Decimal
) -> tuple[float | None, float, str]:
    """(idle minutes, minutes until the first automatic stop, which one) for an active session."""
    candidates: list[tuple[float, str]] = []
    idle_minutes = None
    if session.state == PodSession.State.READY:
        idle_minutes = (now - pods.idle_since(session, row)).total_seconds() / 60
        candidates.append((row.effective_idle_timeout - idle_minutes, PodSession.StopReason.IDLE))
    lived = (now - session.created_at).total_seconds() / 60
    candidates.append((row.max_session_hours * 60 - lived, PodSession.StopReason.MAX_LIFETIME))
    if session.state == PodSession.State.STARTING:
        candidates.append((settings.RUNPOD_START_TIMEOUT - lived, START_TIMEOUT))
    if row.monthly_budget is not None and session.cost_per_hour:
        left = (row.monthly_budget - spent) / session.cost_per_hour * 60
        candidates.append((float(left), PodSession.StopReason.BUDGET))
    minutes, reason = min(candidates)
    return idle_minutes, max(0.0, minutes), reason


def pod_status(session: PodSession, row: BackendSettings, *, now: datetime, spent: Decimal) -> PodStatus:
    live = session.state in (PodSession.State.STARTING, PodSession.State.READY)
    cost = costs.session_cost(session, now=now) if session.is_active else session.estimated_cost
    idle_minutes, until, reason = _auto_stop(session, row, now=now, spent=spent) if live else (None, None, "")
    return PodStatus(
        session=session,
        current_cost=cost,
        cost_per_image=costs.cost_per_image(cost, session.images_generated),
        idle_minutes=idle_minutes,
        minutes_until_auto_stop=until,
        auto_stop_reason=reason,
    )


def backend_status(*, now: datetime | None = None) -> BackendStatus:
    now = now or timezone.now()
    row = services.backend_settings_get()
    try:
        url, url_problem = manager.current_backend_url(), ""
    except Unavailable as exc:
        url, url_problem = "", exc.message
    spent = costs.month_spend(now=now)
    active = list(PodSession.objects.active().order_by("created_at", "pk"))
    session = active[-1] if active else PodSession.objects.order_by("-created_at").first()
    pod = pod_status(session, row, now=now, spent=spent) if session else None
    running = session if pod and session and session.is_active else None
    running_cost = pod.current_cost if pod and running else Decimal("0")
    running_hours = costs.session_hours(running, now=now) if running else 0.0
    lifetime_cost = row.lifetime_cost + running_cost
    lifetime_images = row.lifetime_images + (running.images_generated if running else 0)
    return BackendStatus(
        now=now,
        mode=row.backend_mode,
        url=url,
        url_problem=url_problem,
        connected=row.is_connected,
        api_version=row.api_version,
        last_connected_at=row.last_connected_at,
        connection_error=row.connection_error,
        api_key=services.api_key_state(),
        pod=pod,
        monthly_budget=row.monthly_budget,
        spent_this_month=spent,
        lifetime_hours=row.lifetime_usage_hours + running_hours,
        lifetime_cost=lifetime_cost,
        lifetime_images=lifetime_images,
        lifetime_cost_per_image=costs.cost_per_image(lifetime_cost, lifetime_images),
        storage=costs.storage_charge(row),
        stopped_pods=row.stopped_pods,
        idle_timeout_minutes=row.effective_idle_timeout,
        max_session_hours=row.max_session_hours,
        known_gpu_types=row.known_gpu_types,
        gpu_type=row.effective_gpu_type,
        resumable_pod_id=getattr(pods.reusable_pod(row, row.effective_gpu_type), "pod_id", ""),
        changing=any(
            other.state in (PodSession.State.CREATING, PodSession.State.STARTING, PodSession.State.STOPPING)
            for other in active or ([session] if session else [])
        ),
        worker=worker_health(now=now),
        backends=backend_entries(row, url=url, pod=pod),
        pods=[pod if other == session and pod else pod_status(other, row, now=now, spent=spent) for other in active],
    )


@dataclass(frozen=True)
class Badge:
    """The little the top bar shows on every page: two queries without a pod."""

    mode: str
    url: str
    url_problem: str
    connected: bool
    connection_error: str
    # Only an active session: a finished one costs nothing more.
    pod: PodStatus | None
    changing: bool


def backend_badge(*, now: datetime | None = None) -> Badge:
    now = now or timezone.now()
    row = BackendSettings.current()
    session = pods.active_session()
    pod = None
    if session is not None:
        spent = costs.month_spend(now=now) if row.monthly_budget is not None else Decimal("0")
        pod = pod_status(session, row, now=now, spent=spent)
    live = session if session is not None and session.state != PodSession.State.STOPPING else None
    try:
        url, url_problem = manager.backend_url_for(row, live), ""
    except Unavailable as exc:
        url, url_problem = "", exc.message
    return Badge(
        mode=row.backend_mode,
        url=url,
        url_problem=url_problem,
        connected=row.is_connected,
        connection_error=row.connection_error,
        pod=pod,
        changing=session is not None and session.state != PodSession.State.READY,
    )


def pod_session_list(*, limit: int = 50, offset: int = 0) -> tuple[QuerySet[PodSession], int]:
    sessions = PodSession.objects.order_by("-created_at", "-pk")
    return sessions[offset : offset + limit], sessions.count()


def backend_list() -> QuerySet[Backend]:
    return Backend.objects.order_by("created_at", "pk")
