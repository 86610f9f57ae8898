"""Which InvokeAI the app talks to. Everything that generates asks here for its client.

For now that is the local InvokeAI of `INVOKEAI_LOCAL_URL`; the RunPod backend will choose between it and a
rented pod's proxy URL here, so callers never need to know which one answers.
"""

from __future__ import annotations

import threading

from django.conf import settings

from .invokeai.client import InvokeAIClient

_clients = threading.local()


def current_backend_url() -> str:
    """The base URL of the InvokeAI that new work goes to."""
    return settings.INVOKEAI_LOCAL_URL


def invokeai_client(base_url: str | None = None) -> InvokeAIClient:
    """A client for the InvokeAI in use, or for `base_url` (work started elsewhere is finished where it ran).

    Reused per thread, with its connection pool and login token.
    """
    config = (
        base_url or current_backend_url(),
        settings.INVOKEAI_CONNECTION_TIMEOUT,
        settings.INVOKEAI_READ_TIMEOUT,
        settings.INVOKEAI_EMAIL,
        settings.INVOKEAI_PASSWORD,
    )
    clients = _clients.__dict__.setdefault("by_config", {})
    if config not in clients:
        url, connect_timeout, read_timeout, email, password = config
        clients[config] = InvokeAIClient(
            url, connect_timeout=connect_timeout, read_timeout=read_timeout, email=email, password=password
        )
    return clients[config]
