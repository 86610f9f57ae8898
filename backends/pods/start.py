"""Starting a pod (resume the stopped one or create one) and walking it to ready."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django_q.tasks import async_task

from gallery_project.errors import Conflict, InvalidInput

from .. import costs, manager, services
from ..invokeai.errors import InvokeAIError
from ..models import BackendSettings, PodSession
from ..runpod import GPU_TYPE, PodSpec, RunPodAdapter, RunPodCapacityError, RunPodError, RunPodUnreachable
from . import common, watchdog
from .common import CREATE_GRACE, NO_KEY, Progress, Reason, State, active_session, pod_name
from .stop import pod_stop

logger = logging.getLogger(__name__)


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
        env={"INVOKEAI_ROOT": f"{row.runpod_volume_mount_path.rstrip('/')}/invokeai", **watchdog.pod_env()},
        # InvokeAI and, beside it, the dead-man switch that stops the pod when the app stops pinging it.
        ports=watchdog.PORTS,
        docker_args=watchdog.COMMAND,
    )


def pod_start(
    *,
    gpu_type: str = "",
    fresh: bool = False,
    another: bool = False,
    now: datetime | None = None,
    adapter: RunPodAdapter | None = None,
) -> PodSession:
    """Start a pod: resume the last stopped one if it fits the settings (unless `fresh`), else create one, and
    switch to remote mode so that work goes to it once it is ready.

    Refused without an API key, while another session is active (unless `another`: several pods then take steps
    at once, each with its own idle timer and longest session), and once the monthly budget is spent. The
    session is saved as `creating` before RunPod is called, with the pod's name derived from its id, so a pod
    whose id never reached the database is still recognised by reconciliation.
    """
    now = now or timezone.now()
    if not services.api_key_get():
        raise Conflict(NO_KEY, code="runpod_no_key")
    adapter = adapter or common.runpod_adapter()
    with transaction.atomic():
        row = BackendSettings.objects.select_for_update().get(pk=services.backend_settings_get().pk)
        active = active_session()
        if active is not None and not another:
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
        # A second pod is a new one: the stopped pod to resume may be the first's.
        reuse = None if fresh or another else reusable_pod(row, gpu_type)
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
    # A pod is started to be used: new work goes to it once it is ready (a start RunPod refused changed nothing).
    services.backend_mode_set(mode=BackendSettings.Mode.REMOTE)
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
        alternatives = common.gpu_alternatives(adapter, exclude=session.gpu_type)
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
        common.finish(session, now=now, state=State.FAILED, reason=Reason.ERROR, message=message, error_code="capacity")
        raise RunPodCapacityError(
            message,
            details={"session_id": session.pk, "gpu_type": session.gpu_type, "alternatives": alternatives},
        ) from None
    except RunPodUnreachable:
        if session.resumed:
            # Whether the resume happened is unknown; if it did, reconciliation stops the pod it finds running.
            common.finish(
                session,
                now=now,
                state=State.FAILED,
                reason=Reason.ERROR,
                message="RunPod did not answer the resume request; try again.",
                error_code="unreachable",
            )
            raise
        # A create must not be sent twice: the walker and reconciliation look for the pod by its name.
        common.session_update(
            session,
            expect=(State.CREATING,),
            message="RunPod did not answer; looking for the pod it may have created.",
            next_check_at=now + CREATE_GRACE,
        )
        return session
    except RunPodError as exc:
        common.finish(
            session, now=now, state=State.FAILED, reason=Reason.ERROR, message=exc.message, error_code=exc.code
        )
        raise
    common.record_pod(session, pod_id, now=now, message=Progress.RUNPOD.label + ".", cost_per_hour=price)
    if session.resumed:
        common.forget_stopped_pod(session.pod_id)
    return session


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
    adapter = adapter or common.runpod_adapter()
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
        return common.finish(
            session,
            now=now,
            state=State.FAILED,
            reason=Reason.ERROR,
            message="The pod no longer exists on RunPod.",
            pod_exists=False,
        )
    price = pod.cost_per_hour or session.cost_per_hour
    if pod.is_stopped:
        return common.finish(
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
    url = ""
    try:
        url = manager.proxy_url(session.pod_id)
        version = manager.probe_client(url).connect()
    except InvokeAIError as exc:
        return _not_ready(
            session,
            now=now,
            progress=Progress.INVOKEAI,
            cost_per_hour=price,
            message=f"{Progress.INVOKEAI.label} at {url or 'the proxy URL'} (a first start sets InvokeAI up and "
            f"can take 5-10 minutes): {exc.message}",
        )
    if common.session_update(
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
    common.session_update(
        session,
        expect=(State.STARTING,),
        progress=progress,
        message=message[:500],
        attempts=F("attempts") + 1,
        next_check_at=now + common.backoff(session.attempts),
        **changes,
    )
    return session


def _find_created_pod(session: PodSession, *, now: datetime, adapter: RunPodAdapter | None) -> PodSession:
    """A session whose create lost RunPod's answer: adopt the pod named after it, or give up on it."""
    if session.pod_id or now - session.created_at < CREATE_GRACE:
        return session
    adapter = adapter or common.runpod_adapter()
    try:
        pod = next((pod for pod in adapter.list_pods() if pod.name == session.name), None)
    except RunPodError:
        return session
    if pod is not None:
        common.adopt(session, pod.id, now=now)
        return session
    return common.finish(
        session,
        now=now,
        state=State.FAILED,
        reason=Reason.ERROR,
        message=f"RunPod's answer to the start request was lost and it has no pod named {session.name}: start again.",
    )
