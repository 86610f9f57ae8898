"""The app's side of the pod's dead-man switch (`deadman.py`, which runs in the pod).

Every pod is created with a start command that runs the watchdog beside InvokeAI, the watchdog's source in an
environment variable (a zip archive python runs as it is, base64: RunPod requests carry only plain characters)
and its token; while a session starts or is ready, a schedule pings the watchdog every minute through RunPod's
proxy. When the pings stop (this machine off, its network down, the worker dead), the pod stops itself
RUNPOD_DEADMAN_MINUTES later.
"""

from __future__ import annotations

import base64
import functools
import io
import logging
import zipfile
from pathlib import Path

import requests
from django.conf import settings
from django.utils.crypto import salted_hmac

from backends import manager
from backends.models import PodSession
from backends.runpod import INVOKEAI_PORT
from gallery_project.errors import AppError

from . import deadman

logger = logging.getLogger(__name__)

PORT = deadman.DEFAULT_PORT
PORTS = f"{INVOKEAI_PORT}/http,{PORT}/http"
# The image's own command (`invokeai-web --host 0.0.0.0`), with the watchdog started first, in the background.
COMMAND = (
    "bash -c 'echo $DEADMAN_SCRIPT | base64 -d > /tmp/deadman.pyz && python3 /tmp/deadman.pyz & "
    "exec invokeai-web --host 0.0.0.0'"
)
PING_TIMEOUT = (5.0, 10.0)


@functools.cache
def script_archive() -> str:
    """deadman.py as a zip archive with it as __main__.py, base64: `python3 archive` runs it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("__main__.py", Path(deadman.__file__).read_text())
    return base64.b64encode(buffer.getvalue()).decode()


def token() -> str:
    """What the watchdogs of this installation's pods accept as a ping: derived from SECRET_KEY, so a pod
    resumed by a later session (with the environment it was created with) still takes it."""
    return salted_hmac("backends.pods.watchdog", "ping", algorithm="sha256").hexdigest()[:40]


def pod_env() -> dict[str, str]:
    return {
        "DEADMAN_SCRIPT": script_archive(),
        "DEADMAN_TOKEN": token(),
        "DEADMAN_PORT": str(PORT),
        "RUNPOD_DEADMAN_MINUTES": str(settings.RUNPOD_DEADMAN_MINUTES),
    }


def ping_url(pod_id: str) -> str:
    base = manager.checked_url(settings.RUNPOD_PROXY_URL_TEMPLATE.format(pod_id=pod_id, port=PORT))
    return base.rstrip("/") + deadman.PING_PATH


def pods_ping() -> list[str]:
    """Ping the watchdog of every pod that is starting or ready; return the ids of those that took it."""
    states = (PodSession.State.STARTING, PodSession.State.READY)
    pinged = []
    with requests.Session() as session:
        session.trust_env = False  # the address checks must see where the connection really goes
        for pod_id in PodSession.objects.filter(state__in=states).exclude(pod_id="").values_list("pod_id", flat=True):
            try:
                response = session.post(
                    ping_url(pod_id),
                    headers={deadman.TOKEN_HEADER: token()},
                    timeout=PING_TIMEOUT,
                    allow_redirects=False,
                )
            except (requests.RequestException, AppError) as exc:
                # Missed pings are what the switch is for: the next one comes in a minute.
                logger.warning("Could not ping the watchdog of pod %s: %s", pod_id, exc)
                continue
            if response.status_code == 204:
                pinged.append(pod_id)
            else:
                logger.warning("The watchdog of pod %s answered %s to its ping", pod_id, response.status_code)
    return pinged
