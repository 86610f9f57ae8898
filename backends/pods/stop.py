"""Stopping a pod and verifying that RunPod stopped it; deleting a stopped pod's disk."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.utils import timezone

from gallery_project.errors import Conflict, NotFound

from .. import services
from ..models import BackendSettings, PodSession
from ..runpod import RunPodAdapter, RunPodError
from . import common
from .common import CREATE_GRACE, STOP_ALERT_AFTER, STOP_TERMINATE_AFTER, Reason, State, active_session

logger = logging.getLogger(__name__)


def pod_stop(
    *,
    session_id: int | None = None,
    reason: str = Reason.USER,
    message: str = "",
    now: datetime | None = None,
    adapter: RunPodAdapter | None = None,
) -> PodSession:
    """Stop the active pod (the latest, or the given session's): mark it stopping, so no new work goes to it,
    then ask RunPod to stop it and check that it did. What is not confirmed now is retried by `pod_verify_stop`.

    Of two stops at once (the user's and the idle check's), only the one that marked the session stopping calls
    RunPod; the other returns the session as it is. A given session that has already ended is refused.

    Stopped by the user, the app goes back to the local InvokeAI. An automatic stop (idle, budget, longest
    session, a start that failed) leaves remote mode on: the studio then says that no pod is running instead of
    sending work to a local InvokeAI that someone renting a GPU most likely does not have.
    """
    now = now or timezone.now()
    session = _session_get(session_id) if session_id else active_session()
    if session is None:
        raise Conflict("No pod is running.", code="no_pod")
    if not session.is_active and reason != Reason.USER:
        # An automatic stop that lost the race to another stop: that one ends the session.
        return session
    if not session.is_active:
        raise Conflict(
            f"Pod {session.pod_id or session.name} is already {session.get_state_display().lower()}.",
            code="pod_not_active",
            details={"session_id": session.pk, "state": session.state},
        )
    reasons: dict[str, str] = {
        Reason.USER: "Stopping: you asked.",
        Reason.IDLE: "Stopping: idle.",
        Reason.MAX_LIFETIME: "Stopping: the longest session was reached.",
        Reason.BUDGET: "Stopping: the monthly budget was reached.",
    }
    marked = common.session_update(
        session,
        expect=(State.CREATING, State.STARTING, State.READY),
        state=State.STOPPING,
        stop_reason=reason,
        stop_requested_at=now,
        progress="",
        attempts=0,
        next_check_at=now,
        message=message or reasons.get(reason, "Stopping."),
    )
    if not marked:
        return session
    others = PodSession.objects.active().exclude(pk=session.pk).exclude(state=State.STOPPING)
    # With other pods still up, remote mode stays on: they keep taking the studio's steps.
    if reason == Reason.USER and not others.exists():
        services.backend_mode_set(mode=BackendSettings.Mode.LOCAL)
    logger.info("Stopping pod %s (session %s): %s", session.pod_id or "(no id yet)", session.pk, reason)
    return pod_verify_stop(session_id=session.pk, now=now, adapter=adapter)


def _session_get(session_id: int) -> PodSession:
    try:
        return PodSession.objects.get(pk=session_id)
    except PodSession.DoesNotExist:
        raise NotFound(
            "There is no such pod session.", code="pod_not_found", details={"session_id": session_id}
        ) from None


def pod_verify_stop(
    *, session_id: int, now: datetime | None = None, adapter: RunPodAdapter | None = None
) -> PodSession:
    """Ask RunPod to stop a stopping session's pod until it reports the pod stopped (or gone).

    Failures back off and retry. After STOP_ALERT_AFTER tries the session carries an alert (shown on every page
    and logged as an error); after STOP_TERMINATE_AFTER, if the settings allow it, the pod is terminated.
    """
    now = now or timezone.now()
    session = PodSession.objects.get(pk=session_id)
    if session.state != State.STOPPING or (session.next_check_at and now < session.next_check_at):
        return session
    # Claim this try, so that a stop and the retry schedule running at once call RunPod once between them.
    claimed = PodSession.objects.filter(pk=session.pk, state=State.STOPPING, next_check_at=session.next_check_at)
    if not claimed.update(next_check_at=now + common.backoff(session.attempts)):
        session.refresh_from_db()
        return session
    return _verify(session, now=now, adapter=adapter)


def _verify(session: PodSession, *, now: datetime, adapter: RunPodAdapter | None) -> PodSession:
    try:
        adapter = adapter or common.runpod_adapter()
    except Conflict as exc:
        # Without a key nothing can be stopped: that must turn into an alert, not a silent retry.
        return _stop_failed(session, now=now, problem=exc.message, adapter=None)
    if not session.pod_id:
        return _stop_unsaved_pod(session, now=now, adapter=adapter)
    try:
        pod = adapter.get_pod(session.pod_id)
        if pod is not None and not pod.is_stopped:
            adapter.stop_pod(session.pod_id)
            pod = adapter.get_pod(session.pod_id)
        if pod is None or pod.is_stopped:
            return _finish_stopping(session, now=now, pod_exists=pod is not None)
        problem = f"RunPod still reports it {pod.desired_status}"
    except RunPodError as exc:
        problem = exc.message
    return _stop_failed(session, now=now, problem=problem, adapter=adapter)


def _stop_failed(session: PodSession, *, now: datetime, problem: str, adapter: RunPodAdapter | None) -> PodSession:
    attempts = session.attempts + 1
    # The message keeps saying why the pod is being stopped; the tries show as `attempts`, then as an alert.
    changes: dict[str, Any] = {"attempts": attempts, "next_check_at": now + common.backoff(attempts - 1)}
    if attempts >= STOP_ALERT_AFTER:
        changes["alert"] = (
            f"RunPod has not confirmed that pod {session.pod_id} stopped after {attempts} tries ({problem}). "
            "It may still be billing: the app keeps trying, and you can stop it in RunPod's console."
        )
        if session.alert != changes["alert"]:
            logger.error("Pod %s not stopped after %s tries: %s", session.pod_id, attempts, problem)
    terminate = services.backend_settings_get().terminate_if_stop_fails
    if attempts >= STOP_TERMINATE_AFTER and terminate and adapter is not None and session.pod_id:
        try:
            adapter.terminate_pod(session.pod_id)
            changes["alert"] += " The app asked RunPod to terminate it."
            logger.error("Asked RunPod to terminate pod %s, which would not stop", session.pod_id)
        except RunPodError as exc:
            changes["alert"] += f" Terminating it failed too: {exc.message}"
    common.session_update(session, expect=(State.STOPPING,), **changes)
    return session


def _stop_unsaved_pod(session: PodSession, *, now: datetime, adapter: RunPodAdapter) -> PodSession:
    """Stopping a session whose create answer has not arrived: wait for it, then find the pod by name."""
    if now - session.created_at < CREATE_GRACE:
        return session
    try:
        pod = next((pod for pod in adapter.list_pods() if pod.name == session.name), None)
    except RunPodError as exc:
        return _stop_failed(session, now=now, problem=exc.message, adapter=adapter)
    if pod is None:
        return _finish_stopping(session, now=now, pod_exists=False)
    common.adopt(session, pod.id, now=now)
    return _verify(session, now=now, adapter=adapter)


def _finish_stopping(session: PodSession, *, now: datetime, pod_exists: bool) -> PodSession:
    never_ready = session.ready_at is None and session.stop_reason == Reason.ERROR
    state = State.FAILED if never_ready else State.STOPPED
    idle = services.backend_settings_get().effective_idle_timeout
    done: dict[str, str] = {
        Reason.USER: "Stopped.",
        Reason.IDLE: f"Stopped after {idle} idle minute{'' if idle == 1 else 's'}.",
        Reason.MAX_LIFETIME: "Stopped: the longest session was reached.",
        Reason.BUDGET: "Stopped: the monthly budget was reached.",
        Reason.ORPHAN: "Stopped: it was running on RunPod without an active session here.",
    }
    message = session.message if never_ready else done.get(session.stop_reason, "Stopped.")
    if session.attempts:
        message += f" RunPod confirmed the stop after {session.attempts + 1} tries."
    return common.finish(session, now=now, state=state, message=message, alert="", pod_exists=pod_exists)


def pod_terminate_stopped(*, pod_id: str, adapter: RunPodAdapter | None = None) -> None:
    """Delete one of our stopped pods and its volume disk, which RunPod bills while the pod is stopped."""
    row = services.backend_settings_get()
    if pod_id not in {pod["id"] for pod in row.stopped_pods}:
        raise Conflict("That is not one of this app's stopped pods.", code="not_a_stopped_pod")
    if PodSession.objects.active().filter(pod_id=pod_id).exists():
        raise Conflict("That pod is in use: stop it first.", code="pod_active")
    (adapter or common.runpod_adapter()).terminate_pod(pod_id)
    common.forget_stopped_pod(pod_id)
    logger.info("Terminated stopped pod %s", pod_id)
