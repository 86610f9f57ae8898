"""The RunPod pod lifecycle: start, walk to ready, stop and verify, idle shutdown, reconciliation.

Every service takes `now` (tests pass a clock they move; nothing here sleeps) and `adapter` (default: the SDK
with the configured key). RunPod and InvokeAI are called outside database transactions, and each step is
recorded with an update conditional on the session's state, so two workers running the same check at once
change a session once. The schedules in `gallery_project.schedules` run the checks every minute; the timer and
every retry count live in the database, so a worker restart loses nothing.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_q.tasks import async_task

from gallery_project.errors import Conflict, InvalidInput

from . import costs, manager, services, signals
from .invokeai.errors import InvokeAIError
from .models import BackendSettings, PodSession
from .runpod import (
    GPU_TYPE,
    PodSpec,
    RunPodAdapter,
    RunPodCapacityError,
    RunPodError,
    RunPodSDK,
    RunPodUnreachable,
)

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
    return PodSession.objects.active().order_by("-created_at").first()


def _backoff(attempts: int) -> timedelta:
    return BACKOFF[min(attempts, len(BACKOFF) - 1)]


def _update(session: PodSession, *, expect: tuple[str, ...], **changes: Any) -> bool:
    """Apply `changes` if the session is still in one of the `expect`ed states; refresh it either way."""
    updated = PodSession.objects.filter(pk=session.pk, state__in=expect).update(**changes)
    session.refresh_from_db()
    return bool(updated)


# --- start ---


def reusable_pod(row: BackendSettings, gpu_type: str) -> PodSession | None:
    """The last session's pod, if it is stopped on the account and was made for the same settings: resuming it
    keeps the models on its volume."""
    stopped = {pod["id"] for pod in row.stopped_pods}
    last = PodSession.objects.exclude(pod_id="").order_by("-created_at").first()
    if (
        last is not None
        and last.pod_id in stopped
        and last.gpu_type == gpu_type
        and last.image == row.runpod_image
        and last.network_volume_id == row.runpod_network_volume_id
    ):
        return last
    return None


def _pod_spec(session: PodSession, row: BackendSettings) -> PodSpec:
    return PodSpec(
        name=session.name,
        image=session.image,
        gpu_type=session.gpu_type,
        cloud_type=session.cloud_type,
        volume_in_gb=session.volume_in_gb,
        volume_mount_path=row.runpod_volume_mount_path,
        network_volume_id=session.network_volume_id,
        # The official image keeps models, outputs and its database under INVOKEAI_ROOT: put it on the volume.
        env={"INVOKEAI_ROOT": f"{row.runpod_volume_mount_path.rstrip('/')}/invokeai"},
    )


def pod_start(
    *,
    gpu_type: str = "",
    fresh: bool = False,
    now: datetime | None = None,
    adapter: RunPodAdapter | None = None,
) -> PodSession:
    """Start a pod: resume the last stopped one if it fits the settings (unless `fresh`), else create one.

    Refused without an API key, while another session is active, and once the monthly budget is spent. The
    session is saved as `creating` before RunPod is called, with the pod's name derived from its id, so a pod
    whose id never reached the database is still recognised by reconciliation.
    """
    now = now or timezone.now()
    if not services.api_key_get():
        raise Conflict(NO_KEY, code="runpod_no_key")
    adapter = adapter or runpod_adapter()
    with transaction.atomic():
        row = BackendSettings.objects.select_for_update().get(pk=services.backend_settings_get().pk)
        active = active_session()
        if active is not None:
            raise Conflict(
                f"A pod is already {active.get_state_display().lower()}: stop it before starting another.",
                code="pod_active",
                details={"session_id": active.pk, "state": active.state},
            )
        spent = costs.budget_reached(row, now=now)
        if spent is not None:
            raise Conflict(
                f"This month's pods have cost ${spent:.2f}, which reaches the ${row.monthly_budget:.2f} budget: "
                "raise the budget on the backend page to start another.",
                code="budget_reached",
                details={"spent": str(spent), "budget": str(row.monthly_budget)},
            )
        gpu_type = gpu_type or row.effective_gpu_type
        if not GPU_TYPE.fullmatch(gpu_type):
            raise InvalidInput(f"{gpu_type!r} is not a RunPod GPU type id.", code="invalid_gpu_type")
        reuse = None if fresh else reusable_pod(row, gpu_type)
        # A network volume takes the place of a new pod's own volume disk.
        new_volume_in_gb = 0 if row.runpod_network_volume_id else row.runpod_volume_in_gb
        session = PodSession.objects.create(
            gpu_type=gpu_type,
            cloud_type=row.runpod_cloud_type,
            image=row.runpod_image,
            volume_in_gb=reuse.volume_in_gb if reuse else new_volume_in_gb,
            network_volume_id=row.runpod_network_volume_id,
            created_at=now,
            pod_id=reuse.pod_id if reuse else "",
            name=reuse.name if reuse else "",
            resumed=reuse is not None,
            cost_per_hour=reuse.cost_per_hour if reuse else None,
            message="Resuming the stopped pod." if reuse else "Asking RunPod for a pod.",
        )
        if not reuse:
            session.name = pod_name(session.pk)
            session.save(update_fields=["name"])
    session = _call_runpod_to_start(session, row, now=now, adapter=adapter)
    # The first readiness check now rather than at the next minute's schedule.
    transaction.on_commit(lambda: async_task("backends.tasks.pod_advance", session.pk))
    return session


def _call_runpod_to_start(
    session: PodSession, row: BackendSettings, *, now: datetime, adapter: RunPodAdapter
) -> PodSession:
    price = session.cost_per_hour
    try:
        if session.resumed:
            adapter.resume_pod(session.pod_id)
            pod_id = session.pod_id
        else:
            try:
                price = adapter.gpu_price(session.gpu_type, session.cloud_type)
            except RunPodUnreachable:
                # The pod reports its own price once it exists; the estimate can wait for it.
                price = None
            pod_id = adapter.create_pod(_pod_spec(session, row))
    except RunPodCapacityError as exc:
        alternatives = _gpu_alternatives(adapter, exclude=session.gpu_type)
        what = "resume the stopped pod: its machine has" if session.resumed else "start a pod: RunPod has"
        message = (
            f"Could not {what} no {session.gpu_type} free right now "
            f'(RunPod: "{exc.details.get("runpod_message", "")}"). '
            + (
                "Start a new pod instead, try another GPU type, or try again later."
                if session.resumed
                else "Try another GPU type or cloud, or try again later."
            )
        )
        _finish(session, now=now, state=State.FAILED, reason=Reason.ERROR, message=message, error_code="capacity")
        raise RunPodCapacityError(
            message,
            details={"session_id": session.pk, "gpu_type": session.gpu_type, "alternatives": alternatives},
        ) from None
    except RunPodUnreachable:
        if session.resumed:
            # Whether the resume happened is unknown; if it did, reconciliation stops the pod it finds running.
            _finish(
                session,
                now=now,
                state=State.FAILED,
                reason=Reason.ERROR,
                message="RunPod did not answer the resume request; try again.",
                error_code="unreachable",
            )
            raise
        # A create must not be sent twice: the walker and reconciliation look for the pod by its name.
        _update(
            session,
            expect=(State.CREATING,),
            message="RunPod did not answer; looking for the pod it may have created.",
            next_check_at=now + CREATE_GRACE,
        )
        return session
    except RunPodError as exc:
        _finish(session, now=now, state=State.FAILED, reason=Reason.ERROR, message=exc.message, error_code=exc.code)
        raise
    _record_pod(session, pod_id, now=now, message=Progress.RUNPOD.label + ".", cost_per_hour=price)
    if session.resumed:
        _forget_stopped_pod(session.pod_id)
    return session


def _gpu_alternatives(adapter: RunPodAdapter, *, exclude: str) -> list[dict[str, Any]]:
    """RunPod's GPU types, remembered for the backend page's picker; empty if RunPod does not say."""
    try:
        types = adapter.gpu_types()
    except RunPodError:
        return []
    known = [{"id": gpu.id, "name": gpu.name, "memory_gb": gpu.memory_gb} for gpu in types]
    BackendSettings.objects.filter(pk=1).update(known_gpu_types=known)
    return [gpu for gpu in known if gpu["id"] != exclude]


# --- readiness ---


def pod_advance(*, session_id: int, now: datetime | None = None, adapter: RunPodAdapter | None = None) -> PodSession:
    """One step of a starting pod's walk to ready: (1) RUNNING, (2) runtime ports, (3) InvokeAI answers.

    Not ready yet: the next check is due after a backoff. Past RUNPOD_START_TIMEOUT: the pod is stopped and
    the session ends as failed.
    """
    now = now or timezone.now()
    session = PodSession.objects.get(pk=session_id)
    if session.state == State.CREATING:
        return _find_created_pod(session, now=now, adapter=adapter)
    if session.state != State.STARTING or (session.next_check_at and now < session.next_check_at):
        return session
    adapter = adapter or runpod_adapter()
    timeout = timedelta(minutes=settings.RUNPOD_START_TIMEOUT)
    if now - session.created_at >= timeout:
        waiting_on = session.get_progress_display().lower() if session.progress else "starting"
        return pod_stop(
            session_id=session.pk,
            reason=Reason.ERROR,
            now=now,
            adapter=adapter,
            message=f"The pod was not ready after {settings.RUNPOD_START_TIMEOUT} minutes (last: {waiting_on}); "
            "it was stopped. A first start can be slow: raise RUNPOD_START_TIMEOUT if this repeats.",
        )
    try:
        pod = adapter.get_pod(session.pod_id)
    except RunPodError as exc:
        return _not_ready(session, now=now, progress=session.progress or Progress.RUNPOD, message=exc.message)
    if pod is None:
        return _finish(
            session,
            now=now,
            state=State.FAILED,
            reason=Reason.ERROR,
            message="The pod no longer exists on RunPod.",
            pod_exists=False,
        )
    price = pod.cost_per_hour or session.cost_per_hour
    if pod.is_stopped:
        return _finish(
            session,
            now=now,
            state=State.FAILED,
            reason=Reason.ERROR,
            message=f"RunPod reports the pod {pod.desired_status} before it was ready.",
            cost_per_hour=price,
        )
    if not pod.is_running:
        return _not_ready(
            session,
            now=now,
            progress=Progress.RUNPOD,
            cost_per_hour=price,
            message=f"{Progress.RUNPOD.label} (RunPod says {pod.desired_status or 'nothing yet'}).",
        )
    if not pod.has_runtime_ports:
        return _not_ready(
            session, now=now, progress=Progress.CONTAINER, cost_per_hour=price, message=f"{Progress.CONTAINER.label}."
        )
    url = manager.proxy_url(session.pod_id)
    try:
        version = manager.probe_client(url).connect()
    except InvokeAIError as exc:
        return _not_ready(
            session,
            now=now,
            progress=Progress.INVOKEAI,
            cost_per_hour=price,
            message=f"{Progress.INVOKEAI.label} at {url} (a first start sets InvokeAI up and can take 5-10 "
            f"minutes): {exc.message}",
        )
    if _update(
        session,
        expect=(State.STARTING,),
        state=State.READY,
        progress="",
        ready_at=now,
        cost_per_hour=price,
        attempts=0,
        next_check_at=None,
        message=f"InvokeAI {version} is ready.",
    ):
        services.connection_record(connected=True, version=version, url=url, now=now)
        logger.info("Pod %s ready (session %s)", session.pod_id, session.pk)
    return session


def _not_ready(session: PodSession, *, now: datetime, progress: str, message: str, **changes: Any) -> PodSession:
    _update(
        session,
        expect=(State.STARTING,),
        progress=progress,
        message=message[:500],
        attempts=F("attempts") + 1,
        next_check_at=now + _backoff(session.attempts),
        **changes,
    )
    return session


def _find_created_pod(session: PodSession, *, now: datetime, adapter: RunPodAdapter | None) -> PodSession:
    """A session whose create lost RunPod's answer: adopt the pod named after it, or give up on it."""
    if session.pod_id or now - session.created_at < CREATE_GRACE:
        return session
    adapter = adapter or runpod_adapter()
    try:
        pod = next((pod for pod in adapter.list_pods() if pod.name == session.name), None)
    except RunPodError:
        return session
    if pod is not None:
        _adopt(session, pod.id, now=now)
        return session
    return _finish(
        session,
        now=now,
        state=State.FAILED,
        reason=Reason.ERROR,
        message=f"RunPod's answer to the start request was lost and it has no pod named {session.name}: start again.",
    )


def _record_pod(session: PodSession, pod_id: str, *, now: datetime, message: str, **changes: Any) -> None:
    """The session's pod exists: keep its id, and walk it to ready unless the session is being stopped (the
    stop then has the id it needs)."""
    PodSession.objects.filter(pk=session.pk, pod_id="").update(pod_id=pod_id)
    _update(
        session,
        expect=(State.CREATING,),
        state=State.STARTING,
        progress=Progress.RUNPOD,
        message=message,
        next_check_at=now,
        **changes,
    )


def _adopt(session: PodSession, pod_id: str, *, now: datetime) -> None:
    _record_pod(session, pod_id, now=now, message="Found the pod RunPod created (its answer had been lost).")
    logger.warning("Adopted pod %s for session %s after a lost create answer", pod_id, session.pk)


# --- stop ---


def pod_stop(
    *,
    session_id: int | None = None,
    reason: str = Reason.USER,
    message: str = "",
    now: datetime | None = None,
    adapter: RunPodAdapter | None = None,
) -> PodSession:
    """Stop the active pod (or the given session's): mark it stopping, so no new work goes to it, then ask
    RunPod to stop it and check that it did. What is not confirmed now is retried by `pod_verify_stop`."""
    now = now or timezone.now()
    session = PodSession.objects.get(pk=session_id) if session_id else active_session()
    if session is None:
        raise Conflict("No pod is running.", code="no_pod")
    reasons = {
        Reason.USER: "Stopping: you asked.",
        Reason.IDLE: "Stopping: idle.",
        Reason.MAX_LIFETIME: "Stopping: the longest session was reached.",
        Reason.BUDGET: "Stopping: the monthly budget was reached.",
    }
    _update(
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
    if session.state != State.STOPPING:
        return session
    logger.info("Stopping pod %s (session %s): %s", session.pod_id or "(no id yet)", session.pk, reason)
    return pod_verify_stop(session_id=session.pk, now=now, adapter=adapter)


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
    try:
        adapter = adapter or runpod_adapter()
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
    changes: dict[str, Any] = {"attempts": attempts, "next_check_at": now + _backoff(attempts - 1)}
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
    _update(session, expect=(State.STOPPING,), **changes)
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
    _adopt(session, pod.id, now=now)
    return pod_verify_stop(session_id=session.pk, now=now, adapter=adapter)


def _finish_stopping(session: PodSession, *, now: datetime, pod_exists: bool) -> PodSession:
    never_ready = session.ready_at is None and session.stop_reason == Reason.ERROR
    state = State.FAILED if never_ready else State.STOPPED
    idle = services.backend_settings_get().effective_idle_timeout
    done = {
        Reason.USER: "Stopped.",
        Reason.IDLE: f"Stopped after {idle} idle minute{'' if idle == 1 else 's'}.",
        Reason.MAX_LIFETIME: "Stopped: the longest session was reached.",
        Reason.BUDGET: "Stopped: the monthly budget was reached.",
        Reason.ORPHAN: "Stopped: it was running on RunPod without an active session here.",
    }
    message = session.message if never_ready else done.get(session.stop_reason, "Stopped.")
    if session.attempts:
        message += f" RunPod confirmed the stop after {session.attempts + 1} tries."
    return _finish(session, now=now, state=state, message=message, alert="", pod_exists=pod_exists)


def _finish(
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
        finished = _update(
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
            _remember_stopped_pod(session)
        else:
            _forget_stopped_pod(session.pod_id)
    return session


def _remember_stopped_pod(session: PodSession) -> None:
    with transaction.atomic():
        row = BackendSettings.objects.select_for_update().get(pk=services.backend_settings_get().pk)
        pods = [pod for pod in row.stopped_pods if pod["id"] != session.pod_id]
        pods.append({"id": session.pod_id, "name": session.name, "volume_in_gb": session.volume_in_gb})
        row.stopped_pods = pods
        row.save(update_fields=["stopped_pods"])


def _forget_stopped_pod(pod_id: str) -> None:
    with transaction.atomic():
        row = BackendSettings.objects.select_for_update().get(pk=services.backend_settings_get().pk)
        row.stopped_pods = [pod for pod in row.stopped_pods if pod["id"] != pod_id]
        row.save(update_fields=["stopped_pods"])


def pod_terminate_stopped(*, pod_id: str, adapter: RunPodAdapter | None = None) -> None:
    """Delete one of our stopped pods and its volume disk, which RunPod bills while the pod is stopped."""
    row = services.backend_settings_get()
    if pod_id not in {pod["id"] for pod in row.stopped_pods}:
        raise Conflict("That is not one of this app's stopped pods.", code="not_a_stopped_pod")
    if PodSession.objects.active().filter(pod_id=pod_id).exists():
        raise Conflict("That pod is in use: stop it first.", code="pod_active")
    (adapter or runpod_adapter()).terminate_pod(pod_id)
    _forget_stopped_pod(pod_id)
    logger.info("Terminated stopped pod %s", pod_id)


# --- idle shutdown ---


@dataclass(frozen=True)
class IdleCheck:
    """What the idle check found: no_pod, starting, busy, idle (not long enough), or stopped (see reason)."""

    outcome: str
    session_id: int | None = None
    reason: str = ""
    idle_minutes: float = 0.0


def idle_since(session: PodSession, row: BackendSettings) -> datetime:
    """When the idle timer started: the last activity, but never before the pod was ready."""
    ready = session.ready_at or session.created_at
    return max(row.last_activity_at or ready, ready)


def pod_idle_check(*, now: datetime | None = None, adapter: RunPodAdapter | None = None) -> IdleCheck:
    """The minute check: stop the pod past its longest session or the budget (busy or not), or when it has been
    idle for idle_timeout_minutes: InvokeAI's own queue on the pod empty, nothing of ours in flight (the
    `busy_check` signal), no activity. Busy resets the timer."""
    now = now or timezone.now()
    row = services.backend_settings_get()
    session = PodSession.objects.filter(state__in=(State.STARTING, State.READY)).order_by("-created_at").first()
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
        services.activity_record(now=now)
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
    url = manager.proxy_url(session.pod_id)
    try:
        queue = manager.probe_client(url).queue_status()
    except InvokeAIError as exc:
        services.connection_record(connected=False, error=exc.message, url=url, now=now)
        queue_busy = False
    else:
        services.connection_record(connected=True, url=url, now=now)
        queue_busy = queue.pending + queue.in_progress > 0
    return queue_busy or signals.app_is_busy()


# --- reconciliation ---


@dataclass
class Reconciliation:
    orphans: list[str] = field(default_factory=list)
    adopted: list[str] = field(default_factory=list)
    ended: list[int] = field(default_factory=list)


def pods_reconcile(*, now: datetime | None = None, adapter: RunPodAdapter | None = None) -> Reconciliation:
    """Compare the account's pods with the database: stop pods of ours that run without an active session
    (recorded as orphan sessions), adopt a pod whose create answer was lost, end sessions whose pod stopped or
    vanished outside the app, and refresh the list of stopped pods whose disks are billed."""
    now = now or timezone.now()
    adapter = adapter or runpod_adapter()
    # Read before listing: a session started after the listing must not be judged against it.
    active = list(PodSession.objects.active())
    pods = adapter.list_pods()
    result = Reconciliation()
    by_id = {pod.id: pod for pod in pods}
    known = {session.pod_id for session in active if session.pod_id}
    for pod in pods:
        if not is_our_pod(pod.name) or pod.id in known:
            continue
        waiting = next((s for s in active if not s.pod_id and s.name == pod.name), None)
        if waiting is not None:
            _adopt(waiting, pod.id, now=now)
            result.adopted.append(pod.id)
        elif not pod.is_stopped:
            orphan = PodSession.objects.create(
                pod_id=pod.id,
                name=pod.name,
                gpu_type=pod.gpu_name or "unknown",
                cost_per_hour=pod.cost_per_hour,
                volume_in_gb=pod.volume_in_gb,
                created_at=now,
                state=State.STOPPING,
                stop_reason=Reason.ORPHAN,
                stop_requested_at=now,
                next_check_at=now,
                message="Found running on RunPod without an active session here; stopping it. "
                "Its cost is counted from when it was found.",
            )
            logger.warning("Orphan pod %s (%s) found running; stopping it", pod.id, pod.name)
            pod_verify_stop(session_id=orphan.pk, now=now, adapter=adapter)
            result.orphans.append(pod.id)
    for session in active:
        if session.state not in (State.STARTING, State.READY) or now - session.created_at < CREATE_GRACE:
            continue
        pod = by_id.get(session.pod_id)
        if pod is None or pod.is_stopped:
            what = "no longer exists" if pod is None else f"is {pod.desired_status}"
            _finish(
                session,
                now=now,
                state=State.STOPPED if session.ready_at else State.FAILED,
                reason=Reason.ERROR,
                message=f"RunPod reports that the pod {what}: it was stopped outside the app.",
                pod_exists=pod is not None,
            )
            result.ended.append(session.pk)
    if result.orphans:
        # The orphans just stopped keep their disks: list again to count them.
        pods = adapter.list_pods()
    stopped = [
        {"id": pod.id, "name": pod.name, "volume_in_gb": pod.volume_in_gb}
        for pod in pods
        if is_our_pod(pod.name) and pod.is_stopped
    ]
    BackendSettings.objects.filter(pk=services.backend_settings_get().pk).update(
        stopped_pods=stopped, reconciled_at=now
    )
    if not services.backend_settings_get().known_gpu_types:
        # Once, for the backend page's GPU type picker (pages never call RunPod themselves).
        _gpu_alternatives(adapter, exclude="")
    return result
