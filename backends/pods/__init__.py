"""The RunPod pod lifecycle, one module per concern: start and walk to ready (`start`), stop and verify
(`stop`), idle shutdown (`idle`), reconciliation with the account (`reconcile`); `common` holds what they share.

The schedules in `gallery_project.schedules` run the checks every minute; the timer and every retry count live
in the database, so a worker restart loses nothing. Costs are computed in `backends.costs`.
"""

from .common import BACKOFF, active_session, is_our_pod, pod_name, runpod_adapter
from .idle import IdleCheck, idle_since, pod_idle_check, pods_idle_check
from .reconcile import Reconciliation, pods_reconcile
from .start import pod_advance, pod_start, reusable_pod
from .stop import pod_stop, pod_terminate_stopped, pod_verify_stop

__all__ = [
    "BACKOFF",
    "IdleCheck",
    "Reconciliation",
    "active_session",
    "idle_since",
    "is_our_pod",
    "pod_advance",
    "pod_idle_check",
    "pod_name",
    "pod_start",
    "pod_stop",
    "pod_terminate_stopped",
    "pod_verify_stop",
    "pods_idle_check",
    "pods_reconcile",
    "reusable_pod",
    "runpod_adapter",
]
