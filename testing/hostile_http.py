"""A hostile HTTP server on 127.0.0.1, for testing clients of outside services.

`HostileServer` answers every request with the raw bytes a test's `answer()` yields (status line, headers and
body), written as they come: nothing is buffered or held, so a 300 MB answer costs one chunk of memory, and an
answer can drip forever, headers included (werkzeug, which serves the fakes, writes headers at once and holds
buffers of its own). `Streamed` is such a body: it counts what it sent and says when the server stopped sending.
For hostile answers to the requests a client really makes, see `FakeInvokeAI.rewrite_answers`.
"""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator


class Streamed:
    """`total` bytes (None: without end) in `chunk`-sized pieces, `delay` seconds apart."""

    def __init__(self, *, total: int | None, chunk: int = 1 << 16, delay: float = 0.0, fill: bytes = b"\0") -> None:
        self.total = total
        self.delay = delay
        self._block = fill * chunk
        self.sent = 0
        # Set when the server stops sending: the body ended, or the client closed the connection.
        self.finished = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        try:
            while self.total is None or self.sent < self.total:
                block = self._block if self.total is None else self._block[: self.total - self.sent]
                self.sent += len(block)
                yield block
                if self.delay:
                    time.sleep(self.delay)
        finally:
            self.finished.set()


def answer(
    body: Iterable[bytes], *, status: str = "200 OK", content_type: str = "image/png", length: int | None = None
) -> Callable[[], Generator[bytes]]:
    """An answer with `body`: of the declared `length`, or without one (the body ends when the server closes)."""

    def respond() -> Generator[bytes]:
        headers = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nConnection: close\r\n"
        if length is not None:
            headers += f"Content-Length: {length}\r\n"
        yield (headers + "\r\n").encode()
        yield from body

    return respond


def header_drip(*, delay: float = 0.02) -> Callable[[], Generator[bytes]]:
    """A status line, then one header whose value never ends, a byte every `delay` seconds."""

    def respond() -> Generator[bytes]:
        yield b"HTTP/1.1 200 OK\r\nX-Drip: "
        while True:
            yield b"a"
            time.sleep(delay)

    return respond


class HostileServer:
    """Answers every request with `respond()`; `url` is where it listens."""

    def __init__(self, respond: Callable[[], Generator[bytes]]) -> None:
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.recv(65536)
                server.requests += 1
                pieces = respond()
                try:
                    for piece in pieces:
                        if server._stopping.is_set():
                            return
                        self.request.sendall(piece)
                except OSError:
                    pass  # the client hung up
                finally:
                    pieces.close()
                    server.finished.set()

        self.requests = 0
        # Set when an answer stopped being sent: it ended, or the client hung up.
        self.finished = threading.Event()
        self._stopping = threading.Event()
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
