"""Reconciliation: the account's pods against the database's sessions."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from .. import services
from ..models import BackendSettings, PodSession
from ..runpod import RunPodAdapter
from . import common
from .common import CREATE_GRACE, Reason, State, is_our_pod
from .stop import pod_verify_stop

logger = logging.getLogger(__name__)


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
    adapter = adapter or common.runpod_adapter()
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
            common.adopt(waiting, pod.id, now=now)
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
        found = by_id.get(session.pod_id)
        if found is None or found.is_stopped:
            what = "no longer exists" if found is None else f"is {found.desired_status}"
            common.finish(
                session,
                now=now,
                state=State.STOPPED if session.ready_at else State.FAILED,
                reason=Reason.ERROR,
                message=f"RunPod reports that the pod {what}: it was stopped outside the app.",
                pod_exists=found is not None,
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
        common.gpu_alternatives(adapter, exclude="")
    return result
