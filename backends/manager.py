"""Which InvokeAI the app talks to. Everything that generates asks here for its client.

For now that is the local InvokeAI of `INVOKEAI_LOCAL_URL`; the RunPod backend will choose between it and a
rented pod's proxy URL here, so callers never need to know which one answers.
"""

from __future__ import annotations

import threading

from django.conf import settings

from .invokeai.client import InvokeAIClient

_clients = threading.local()


def invokeai_client() -> InvokeAIClient:
    """The client for the InvokeAI in use, reused per thread (its connection pool and login token with it)."""
    config = (
        settings.INVOKEAI_LOCAL_URL,
        settings.INVOKEAI_CONNECTION_TIMEOUT,
        settings.INVOKEAI_READ_TIMEOUT,
        settings.INVOKEAI_EMAIL,
        settings.INVOKEAI_PASSWORD,
    )
    cached = getattr(_clients, "entry", None)
    if cached is None or cached[0] != config:
        if cached is not None:
            cached[1].close()
        url, connect_timeout, read_timeout, email, password = config
        client = InvokeAIClient(
            url, connect_timeout=connect_timeout, read_timeout=read_timeout, email=email, password=password
        )
        _clients.entry = (config, client)
    return _clients.entry[1]
