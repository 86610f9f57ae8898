"""django-q2 entry points for the backends; each takes plain values and calls services.

The schedules run every minute (reconciliation every five) and each run does one short step per session, so a
worker that dies or restarts only delays the next step: the state and every timer are in the database.
RunPod or InvokeAI being unreachable is an expected state, logged and retried, not a task failure.
"""

from __future__ import annotations

import logging

from gallery_project.errors import AppError

from . import pods, services
from .models import PodSession
from .pods import watchdog

logger = logging.getLogger(__name__)


def pods_advance() -> str:
    """Walk starting pods towards ready (and give up on them past the start timeout)."""
    states = (PodSession.State.CREATING, PodSession.State.STARTING)
    for session_id in PodSession.objects.filter(state__in=states).values_list("pk", flat=True):
        pod_advance(session_id)
    return "done"


def pod_advance(session_id: int) -> str:
    try:
        return pods.pod_advance(session_id=session_id).state
    except AppError as exc:
        logger.warning("Pod session %s not advanced: %s", session_id, exc.message)
        return exc.code


def pods_deadman_ping() -> str:
    """Tell the watchdog of each starting or ready pod that the app is alive (see backends/pods/watchdog.py)."""
    return f"pinged {len(watchdog.pods_ping())}"


def pods_verify_stopping() -> str:
    """Retry stops RunPod has not confirmed yet."""
    for session_id in PodSession.objects.filter(state=PodSession.State.STOPPING).values_list("pk", flat=True):
        try:
            pods.pod_verify_stop(session_id=session_id)
        except AppError as exc:
            logger.warning("Stop of pod session %s not verified: %s", session_id, exc.message)
    return "done"


def pods_idle_check() -> str:
    """The idle shutdown, the longest-session and budget caps; and whether the InvokeAI in use answers."""
    try:
        checks = pods.pods_idle_check()
    except AppError as exc:
        logger.warning("Idle check failed: %s", exc.message)
        return exc.code
    finally:
        # After the idle check: an InvokeAI that does not answer can take its timeouts to say so.
        services.connection_check()
    return ", ".join(f"{check.outcome} {check.reason}".strip() for check in checks)


def pods_reconcile() -> str:
    if not services.api_key_get():
        return "no API key"
    try:
        result = pods.pods_reconcile()
    except AppError as exc:
        logger.warning("Pods not reconciled: %s", exc.message)
        return exc.code
    return f"{len(result.orphans)} orphans stopped, {len(result.adopted)} adopted, {len(result.ended)} ended"


def backend_connection_check() -> bool:
    return services.connection_check()


def backend_check(backend_id: int) -> bool:
    try:
        return services.backend_check(backend_id=backend_id).is_connected
    except AppError:  # removed meanwhile
        return False


def backends_check() -> str:
    """Status, queue and models of every added backend (a backend that does not answer is recorded, not raised)."""
    return f"{services.backends_check()} answered"
