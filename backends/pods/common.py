"""What the pod services share: the RunPod adapter, pod names, the conditional session update, ending a session.

Every service takes `now` (tests pass a clock they move; nothing here sleeps) and `adapter` (default: the SDK
with the configured key). RunPod and InvokeAI are called outside database transactions, and each step is
recorded with an update conditional on the session's state, so two workers running the same check at once
change a session once.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F

from gallery_project.errors import Conflict

from .. import costs, services
from ..models import BackendSettings, PodSession
from ..runpod import RunPodAdapter, RunPodError, RunPodSDK

logger = logging.getLogger(__name__)

State = PodSession.State
Reason = PodSession.StopReason
Progress = PodSession.Progress

# The SDK gives up on a request after 30 s; a `creating` session older than this without a pod id lost
# RunPod's answer, and its pod (if any) is looked up by name.
CREATE_GRACE = timedelta(minutes=2)
# Waits between readiness checks and between stop retries; the last one repeats.
BACKOFF = (timedelta(seconds=15), timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=2))
STOP_ALERT_AFTER = 3
STOP_TERMINATE_AFTER = 5
NO_KEY = "No RunPod API key: enter one on the backend page, or set RUNPOD_API_KEY."


def runpod_adapter() -> RunPodAdapter:
    key = services.api_key_get()
    if not key:
        raise Conflict(NO_KEY, code="runpod_no_key")
    return RunPodSDK(key)


def pod_name(session_id: int) -> str:
    return f"{settings.RUNPOD_POD_PREFIX}-{session_id}"


def is_our_pod(name: str) -> bool:
    return re.fullmatch(re.escape(settings.RUNPOD_POD_PREFIX) + r"-\d+", name) is not None


def active_session() -> PodSession | None:
    return PodSession.objects.active().order_by("-created_at", "-pk").first()


def backoff(attempts: int) -> timedelta:
    return BACKOFF[min(attempts, len(BACKOFF) - 1)]


def session_update(session: PodSession, *, expect: tuple[str, ...], **changes: Any) -> bool:
    """Apply `changes` if the session is still in one of the `expect`ed states; refresh it either way."""
    updated = PodSession.objects.filter(pk=session.pk, state__in=expect).update(**changes)
    session.refresh_from_db()
    return bool(updated)


def record_pod(session: PodSession, pod_id: str, *, now: datetime, message: str, **changes: Any) -> None:
    """The session's pod exists: keep its id, and walk it to ready unless the session is being stopped (the
    stop then has the id it needs)."""
    PodSession.objects.filter(pk=session.pk, pod_id="").update(pod_id=pod_id)
    session_update(
        session,
        expect=(State.CREATING,),
        state=State.STARTING,
        progress=Progress.RUNPOD,
        message=message,
        next_check_at=now,
        **changes,
    )


def adopt(session: PodSession, pod_id: str, *, now: datetime) -> None:
    record_pod(session, pod_id, now=now, message="Found the pod RunPod created (its answer had been lost).")
    logger.warning("Adopted pod %s for session %s after a lost create answer", pod_id, session.pk)


def finish(
    session: PodSession,
    *,
    now: datetime,
    state: str,
    message: str,
    reason: str | None = None,
    pod_exists: bool = True,
    **changes: Any,
) -> PodSession:
    """End a session: its cost is final and joins the lifetime totals; a stopped pod's disk is remembered
    (it is still billed)."""
    session.stopped_at = now
    session.cost_per_hour = changes.get("cost_per_hour", session.cost_per_hour)
    cost = costs.session_cost(session, now=now)
    hours = costs.session_hours(session, now=now)
    expected = session.state
    with transaction.atomic():
        finished = session_update(
            session,
            expect=(expected,),
            state=state,
            stopped_at=now,
            estimated_cost=cost,
            stop_reason=reason or session.stop_reason,
            message=message[:500],
            progress="",
            next_check_at=None,
            **changes,
        )
        if finished:
            BackendSettings.objects.filter(pk=services.backend_settings_get().pk).update(
                lifetime_usage_hours=F("lifetime_usage_hours") + hours,
                lifetime_cost=F("lifetime_cost") + cost,
                lifetime_images=F("lifetime_images") + session.images_generated,
            )
    if finished and session.pod_id:
        if pod_exists:
            remember_stopped_pod(session)
        else:
            forget_stopped_pod(session.pod_id)
    return session


def remember_stopped_pod(session: PodSession) -> None:
    with transaction.atomic():
        row = BackendSettings.objects.select_for_update().get(pk=services.backend_settings_get().pk)
        pods = [pod for pod in row.stopped_pods if pod["id"] != session.pod_id]
        pods.append({"id": session.pod_id, "name": session.name, "volume_in_gb": session.volume_in_gb})
        row.stopped_pods = pods
        row.save(update_fields=["stopped_pods"])


def forget_stopped_pod(pod_id: str) -> None:
    with transaction.atomic():
        row = BackendSettings.objects.select_for_update().get(pk=services.backend_settings_get().pk)
        row.stopped_pods = [pod for pod in row.stopped_pods if pod["id"] != pod_id]
        row.save(update_fields=["stopped_pods"])


def gpu_alternatives(adapter: RunPodAdapter, *, exclude: str) -> list[dict[str, Any]]:
    """RunPod's GPU types, remembered for the backend page's picker; empty if RunPod does not say."""
    try:
        types = adapter.gpu_types()
    except RunPodError:
        return []
    known = [{"id": gpu.id, "name": gpu.name, "memory_gb": gpu.memory_gb} for gpu in types]
    BackendSettings.objects.filter(pk=1).update(known_gpu_types=known)
    return [gpu for gpu in known if gpu["id"] != exclude]
