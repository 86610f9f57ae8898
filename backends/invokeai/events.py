"""InvokeAI's Socket.IO events: one websocket connection to one server, subscribed to its queue.

InvokeAI serves Socket.IO at `/ws/socket.io` (API-NOTES §5). Only the websocket transport is used: with the
starlette a fresh InvokeAI install pulls, the polling handshake answers 500 (FACTS #13). After connecting, the
client emits `subscribe_queue`; in multiuser mode the login token goes in the connection's `auth`, and a refused
connection logs in again before the next try.

`EventStream.run` connects, hands every event it listens for to `on_event` in the order they arrive, and when the
connection drops (or cannot be made) tries again after a backoff that doubles from RECONNECT_FIRST to
RECONNECT_MAX, starting over once a connection has lasted. Nothing here interprets an event: events may come
twice or never, and the caller's handling must not care (generation.events).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import socketio

from .transport import address_refusal

logger = logging.getLogger(__name__)

PATH = "/ws/socket.io"
QUEUE_ID = "default"
EVENTS = ("invocation_progress", "invocation_complete", "queue_item_status_changed", "queue_items_canceled")
RECONNECT_FIRST = 1.0
RECONNECT_MAX = 30.0
# A connection that lasted this long was a good one: the next failure starts the backoff over.
STABLE_AFTER = 60.0

EventHandler = Callable[[str, dict[str, Any]], None]
AuthProvider = Callable[[], str]


class EventStream:
    """The events of the InvokeAI at `base_url` (already checked by `checked_base_url`)."""

    def __init__(
        self,
        base_url: str,
        *,
        on_event: EventHandler,
        token: AuthProvider | None = None,
        on_connect: Callable[[], None] | None = None,
        allow_link_local: bool = False,
        connect_timeout: float = 10.0,
    ) -> None:
        self.base_url = base_url
        self._on_event = on_event
        self._token = token
        self._on_connect = on_connect
        self._allow_link_local = allow_link_local
        self._connect_timeout = connect_timeout
        self._client: socketio.Client | None = None
        self._stop = threading.Event()
        self.connected = threading.Event()

    def __repr__(self) -> str:
        return f"EventStream({self.base_url!r})"

    def stop(self) -> None:
        self._stop.set()
        self.drop()

    def drop(self) -> None:
        """Close the connection as if the network had dropped it (`run` connects again after its backoff)."""
        client = self._client
        if client is not None:
            client.disconnect()

    def run(self) -> None:
        """Stay connected until `stop()`."""
        delay = RECONNECT_FIRST
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                self._session()
            except Exception as exc:  # any failure of one connection means: try again later
                logger.info("InvokeAI events at %s: %s", self.base_url, exc)
            if time.monotonic() - began > STABLE_AFTER:
                delay = RECONNECT_FIRST
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, RECONNECT_MAX)

    def _refusal(self) -> str:
        """Why the server's address may not be connected to (the REST client's rule), or ""."""
        if self._allow_link_local:
            return ""
        parts = urlsplit(self.base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        for *_, address in socket.getaddrinfo(parts.hostname or "", port, type=socket.SOCK_STREAM):
            host = str(address[0])
            if reason := address_refusal(ipaddress.ip_address(host.split("%", 1)[0])):
                return f"{host} is {reason}"
        return ""

    def _session(self) -> None:
        if reason := self._refusal():
            raise ConnectionRefusedError(f"not connecting: {reason}")
        client = socketio.Client(reconnection=False, handle_sigint=False)
        for name in EVENTS:
            client.on(name, self._handler(name))
        client.on("disconnect", lambda *args: self.connected.clear())
        token = self._token() if self._token else ""
        self._client = client
        try:
            client.connect(
                self.base_url,
                socketio_path=PATH,
                transports=["websocket"],
                auth={"token": token} if token else None,
                headers={"Authorization": f"Bearer {token}"} if token else {},
                wait_timeout=self._connect_timeout,
            )
            client.emit("subscribe_queue", {"queue_id": QUEUE_ID})
            self.connected.set()
            logger.info("InvokeAI events at %s: connected.", self.base_url)
            if self._on_connect is not None:
                self._on_connect()
            while client.connected and not self._stop.is_set():
                client.sleep(0.5)
        finally:
            self.connected.clear()
            self._client = None
            client.disconnect()

    def _handler(self, name: str) -> Callable[..., None]:
        def handle(payload: Any = None, *args: Any) -> None:
            if not isinstance(payload, dict):
                logger.info("InvokeAI events at %s: %s without a payload object, ignored.", self.base_url, name)
                return
            try:
                self._on_event(name, payload)
            except Exception:
                # One bad event must not end the connection; the poll finds whatever it was about.
                logger.exception("InvokeAI events at %s: handling %s failed.", self.base_url, name)

        return handle
