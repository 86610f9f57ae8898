"""The minute check that stops a pod when it is idle, past the longest session, or over budget."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from .. import costs, manager, services, signals
from ..invokeai.errors import InvokeAIError
from ..models import BackendSettings, PodSession
from ..runpod import RunPodAdapter
from .common import Reason, State
from .stop import pod_stop


@dataclass(frozen=True)
class IdleCheck:
    """What the idle check found: no_pod, starting, busy, idle (not long enough), or stopped (see reason)."""

    outcome: str
    session_id: int | None = None
    reason: str = ""
    idle_minutes: float = 0.0


def idle_since(session: PodSession, row: BackendSettings) -> datetime:
    """When the pod's idle timer started: the user's last activity or the last work found on this pod, but never
    before the pod was ready."""
    ready = session.ready_at or session.created_at
    return max(row.last_activity_at or ready, session.last_busy_at or ready, ready)


def _live_sessions() -> QuerySet[PodSession]:
    return PodSession.objects.filter(state__in=(State.STARTING, State.READY)).order_by("-created_at", "-pk")


def pods_idle_check(*, now: datetime | None = None, adapter: RunPodAdapter | None = None) -> list[IdleCheck]:
    """The minute check of every starting or ready pod, each on its own timer (see `pod_idle_check`)."""
    now = now or timezone.now()
    checks = [
        pod_idle_check(session_id=pk, now=now, adapter=adapter) for pk in _live_sessions().values_list("pk", flat=True)
    ]
    return checks or [IdleCheck("no_pod")]


def pod_idle_check(
    *, session_id: int | None = None, now: datetime | None = None, adapter: RunPodAdapter | None = None
) -> IdleCheck:
    """The minute check of one pod (the latest, unless `session_id`): stop it past its longest session or the
    budget (busy or not), or when it has been idle for idle_timeout_minutes: InvokeAI's own queue on the pod
    empty, nothing of ours in flight there (the `busy_check` signal), no activity. Busy resets its timer only."""
    now = now or timezone.now()
    row = services.backend_settings_get()
    sessions = _live_sessions()
    session = (sessions.filter(pk=session_id) if session_id else sessions).first()
    if session is None:
        return IdleCheck("no_pod")
    if now - session.created_at >= timedelta(hours=row.max_session_hours):
        pod_stop(
            session_id=session.pk,
            reason=Reason.MAX_LIFETIME,
            now=now,
            adapter=adapter,
            message=f"Stopping: the pod has run for {row.max_session_hours} hours, the longest session allowed.",
        )
        return IdleCheck("stopped", session.pk, Reason.MAX_LIFETIME)
    if costs.budget_reached(row, now=now) is not None:
        pod_stop(session_id=session.pk, reason=Reason.BUDGET, now=now, adapter=adapter)
        return IdleCheck("stopped", session.pk, Reason.BUDGET)
    if session.state != State.READY:
        return IdleCheck("starting", session.pk)
    if _pod_is_busy(session, now=now):
        PodSession.objects.filter(pk=session.pk).update(last_busy_at=now)
        return IdleCheck("busy", session.pk)
    # Activity may have been recorded while the pod's queue was being read.
    row.refresh_from_db(fields=["last_activity_at"])
    idle = now - idle_since(session, row)
    minutes = idle.total_seconds() / 60
    if idle >= timedelta(minutes=row.effective_idle_timeout):
        pod_stop(session_id=session.pk, reason=Reason.IDLE, now=now, adapter=adapter)
        return IdleCheck("stopped", session.pk, Reason.IDLE, minutes)
    return IdleCheck("idle", session.pk, idle_minutes=minutes)


def _pod_is_busy(session: PodSession, *, now: datetime) -> bool:
    """Work on the pod: items in its InvokeAI queue (ours or anyone's), or a step of ours in flight.

    An InvokeAI that does not answer is not busy: a pod whose InvokeAI died must not run forever.
    """
    url = ""
    try:
        url = manager.proxy_url(session.pod_id)
        queue = manager.probe_client(url).queue_status()
    except InvokeAIError as exc:
        services.connection_record(connected=False, error=exc.message, url=url, now=now)
        queue_busy = False
    else:
        services.connection_record(connected=True, url=url, now=now)
        queue_busy = queue.pending + queue.in_progress > 0
    return queue_busy or signals.app_is_busy(backend_url=url)
