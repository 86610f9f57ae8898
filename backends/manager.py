"""Which InvokeAI the app talks to. Everything that generates asks here for its client.

Local mode: the local InvokeAI. Remote mode: the ready RunPod pod, through RunPod's HTTP proxy; while no pod is
ready, the remote InvokeAI URL set on the backend page, if any. A pod that is stopping gets no new work.
"""

from __future__ import annotations

import threading

from django.conf import settings

from gallery_project.errors import Unavailable

from .invokeai.client import InvokeAIClient, checked_base_url
from .models import BackendSettings, PodSession
from .runpod import INVOKEAI_PORT

_clients = threading.local()

NO_POD = "No RunPod pod is running: start one on the backend page (or switch to the local InvokeAI)."
POD_STARTING = "The RunPod pod is still starting (a first start takes 5-10 minutes): generate once it is ready."


def checked_url(url: str) -> str:
    """`url` in its normal form, or `InvokeAIAddressRefused` (an `Unavailable`) saying why it cannot be used.

    Every URL a client is made for passes here: settings saved before the checks existed, the environment's,
    the one RUNPOD_PROXY_URL_TEMPLATE makes from a pod id RunPod handed out.
    """
    return checked_base_url(url, allow_link_local=settings.INVOKEAI_ALLOW_LINK_LOCAL)


def proxy_url(pod_id: str) -> str:
    """Where the pod's InvokeAI answers (RUNPOD_PROXY_URL_TEMPLATE)."""
    return checked_url(settings.RUNPOD_PROXY_URL_TEMPLATE.format(pod_id=pod_id, port=INVOKEAI_PORT))


def backend_url_for(row: BackendSettings, pod: PodSession | None) -> str:
    """The URL new work goes to, given the settings and the latest live pod session (if any)."""
    if row.backend_mode == BackendSettings.Mode.LOCAL:
        return checked_url(row.effective_local_url)
    if pod is not None and pod.state == PodSession.State.READY:
        return proxy_url(pod.pod_id)
    if row.remote_backend_url:
        return checked_url(row.remote_backend_url)
    if pod is not None:
        raise Unavailable(POD_STARTING, code="pod_starting")
    raise Unavailable(NO_POD, code="no_pod")


def live_pod(row: BackendSettings) -> PodSession | None:
    """In remote mode, the latest pod session that may take work (a stopping pod gets none: it counts as none)."""
    if row.backend_mode != BackendSettings.Mode.REMOTE:
        return None
    live = (PodSession.State.CREATING, PodSession.State.STARTING, PodSession.State.READY)
    return PodSession.objects.filter(state__in=live).order_by("-created_at").only("pod_id", "state").first()


def current_backend_url() -> str:
    """The base URL of the InvokeAI in use; `Unavailable` if remote mode has none. New steps may go to another
    backend as well (`routing`)."""
    row = BackendSettings.current()
    return backend_url_for(row, live_pod(row))


def _cached_client(base_url: str, connect_timeout: float, read_timeout: float, retry_backoff: float):
    options = {
        "connect_timeout": connect_timeout,
        "read_timeout": read_timeout,
        "total_timeout": settings.INVOKEAI_TOTAL_TIMEOUT,
        "max_image_bytes": settings.INVOKEAI_MAX_IMAGE_BYTES,
        "allow_link_local": settings.INVOKEAI_ALLOW_LINK_LOCAL,
        "email": settings.INVOKEAI_EMAIL,
        "password": settings.INVOKEAI_PASSWORD,
        "retry_backoff": retry_backoff,
    }
    config = (base_url, *options.values())
    clients = _clients.__dict__.setdefault("by_config", {})
    if config not in clients:
        clients[config] = InvokeAIClient(base_url, **options)
    return clients[config]


def invokeai_client(base_url: str | None = None) -> InvokeAIClient:
    """A client for the InvokeAI in use, or for `base_url` (work started elsewhere is finished where it ran).

    Reused per thread, with its connection pool and login token.
    """
    return _cached_client(
        base_url or current_backend_url(), settings.INVOKEAI_CONNECTION_TIMEOUT, settings.INVOKEAI_READ_TIMEOUT, 0.3
    )


def probe_client(base_url: str) -> InvokeAIClient:
    """A client for the pod checks (is InvokeAI up, is its queue empty): it does not wait between its retries,
    because the checks run again on their schedule anyway."""
    return _cached_client(base_url, settings.INVOKEAI_CONNECTION_TIMEOUT, settings.INVOKEAI_READ_TIMEOUT, 0)
