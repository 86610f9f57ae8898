"""InvokeAI's Socket.IO events: one websocket connection to one server, subscribed to its queue.

InvokeAI serves Socket.IO at `/ws/socket.io` (API-NOTES §5). Only the websocket transport is used: with the
starlette a fresh InvokeAI install pulls, the polling handshake answers 500 (FACTS #13). After connecting, the
client emits `subscribe_queue`; in multiuser mode the login token goes in the connection's `auth`, and a refused
connection logs in again before the next try.

`EventStream.run` connects, hands every event it listens for to `on_event` in the order they arrive, and when the
connection drops (or cannot be made) tries again after a backoff that doubles from RECONNECT_FIRST to
RECONNECT_MAX, starting over once a connection has lasted. Nothing here interprets an event: events may come
twice or never, and the caller's handling must not care (generation.events).

The server is not trusted: a websocket message longer than MAX_MESSAGE_BYTES is refused as its length arrives
(before it is read; the connection is then made again, since the rest of that message cannot be skipped), and a
message that is not a Socket.IO event of JSON (garbage, binary attachments, nesting too deep to parse) is
ignored with a log line. Whatever such a message was about, the follower's poll finds.
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
import websocket
from websocket._abnf import continuous_frame, frame_buffer

from .transport import address_refusal

logger = logging.getLogger(__name__)

PATH = "/ws/socket.io"
QUEUE_ID = "default"
EVENTS = ("invocation_progress", "invocation_complete", "queue_item_status_changed", "queue_items_canceled")
RECONNECT_FIRST = 1.0
RECONNECT_MAX = 30.0
# A connection that lasted this long was a good one: the next failure starts the backoff over.
STABLE_AFTER = 60.0

# InvokeAI's largest events are a few kB (a status change with its traceback, a model's config) and a preview's
# data URL, tens of kB; generation.previews refuses a preview past half of this.
MAX_MESSAGE_BYTES = 1 << 20

EventHandler = Callable[[str, dict[str, Any]], None]
AuthProvider = Callable[[], str]


class MessageTooLarge(websocket.WebSocketProtocolException):
    pass


def _too_large(length: int) -> MessageTooLarge:
    logger.warning(
        "InvokeAI events: a message of %s bytes refused (at most %s); connecting again.", length, MAX_MESSAGE_BYTES
    )
    return MessageTooLarge(f"a message of {length} bytes")


class _CappedFrames(frame_buffer):
    def recv_length(self) -> None:
        super().recv_length()
        if self.length is not None and self.length > MAX_MESSAGE_BYTES:
            raise _too_large(self.length)


class _CappedMessages(continuous_frame):
    """A message sent in fragments, each under the limit, is held to it as a whole."""

    def add(self, frame: websocket.ABNF) -> None:
        super().add(frame)
        if self.cont_data is not None and len(self.cont_data[1]) > MAX_MESSAGE_BYTES:
            length = len(self.cont_data[1])
            self.cont_data = None
            raise _too_large(length)


class CappedWebSocket(websocket.WebSocket):
    """websocket-client's connection, with MAX_MESSAGE_BYTES on each message (it has no limit of its own)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frame_buffer = _CappedFrames(self._recv, self.frame_buffer.skip_utf8_validation)
        self.cont_frame = _CappedMessages(self.cont_frame.fire_cont_frame, self.cont_frame.skip_utf8_validation)

    def recv_data_frame(self, control_frame: bool = False) -> tuple[int, websocket.ABNF]:
        try:
            return super().recv_data_frame(control_frame)
        except MessageTooLarge:
            # Closed at once: the server, still sending the rest, hears that nobody listens.
            self.shutdown()  # type: ignore[no-untyped-call]
            raise


class _Client(socketio.Client):  # type: ignore[misc]
    """python-socketio's client, ignoring the messages it cannot decode instead of failing on each of them."""

    _binary_packet: Any

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs, websocket_extra_options={"class_": CappedWebSocket})
        self._base_url = base_url

    def _handle_eio_message(self, data: Any) -> None:
        # InvokeAI sends only text events; a binary one would be held waiting for attachments without end.
        if not isinstance(data, str):
            logger.info("InvokeAI events at %s: a binary message ignored.", self._base_url)
            return
        try:
            super()._handle_eio_message(data)
        except (ValueError, TypeError, RecursionError) as exc:
            logger.info("InvokeAI events at %s: a malformed message ignored (%s): %.100r", self._base_url, exc, data)
        if self._binary_packet is not None:
            self._binary_packet = None
            logger.info("InvokeAI events at %s: a message with binary attachments ignored.", self._base_url)


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
            else:
                if not self._stop.is_set():
                    logger.info("InvokeAI events at %s: the connection was lost.", self.base_url)
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
        client = _Client(self.base_url, reconnection=False, handle_sigint=False)
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
