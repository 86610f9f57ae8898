"""The pod's dead-man switch: runs inside every pod the app starts, beside InvokeAI, and stops its own pod
when the app has not pinged it for RUNPOD_DEADMAN_MINUTES (SwarmUI's `--require_control_within`).

Standalone on purpose: the app hands this file's source to the pod in an environment variable, and the pod's
`python3` runs it with the standard library only. It listens on DEADMAN_PORT (exposed through RunPod's HTTP
proxy) for `POST /ping` carrying DEADMAN_TOKEN, and checks the time since the last ping (or since it started)
a few times a minute. Past the limit it asks RunPod to stop RUNPOD_POD_ID with RUNPOD_API_KEY, the pod-scoped
key RunPod injects into every pod, and asks again every minute until the pod is gone. The app's own stop rules
(idle, budget, longest session) stay the app's; this only covers the app's machine, network or worker being
gone.
"""

from __future__ import annotations

import hmac
import http.server
import json
import logging
import os
import threading
import time
import urllib.request
from collections.abc import Callable

logger = logging.getLogger("deadman")

DEFAULT_MINUTES = 20.0
DEFAULT_PORT = 9091
PING_PATH = "/ping"
TOKEN_HEADER = "X-Deadman-Token"  # noqa: S105 - a header name
RETRY_SECONDS = 60.0


class Watchdog:
    """The timer: pings reset it; `check()` stops the pod once it runs out, retrying every RETRY_SECONDS."""

    def __init__(
        self, *, minutes: float, token: str, stop: Callable[[], None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = minutes * 60
        self.token = token
        self.stop = stop
        self.clock = clock
        self.last_ping = clock()  # a pod the app never pings stops too
        self.next_try = 0.0
        self.stops_requested = 0
        self.lock = threading.Lock()

    def ping(self, token: str) -> bool:
        if not self.token or not hmac.compare_digest(token.encode(), self.token.encode()):
            return False
        with self.lock:
            self.last_ping = self.clock()
        return True

    def overdue(self) -> bool:
        with self.lock:
            return self.clock() - self.last_ping >= self.limit

    def check(self) -> bool:
        """Stop the pod if the app has been silent too long; True once a stop has been requested."""
        if not self.overdue() or self.clock() < self.next_try:
            return self.stops_requested > 0
        self.next_try = self.clock() + RETRY_SECONDS
        try:
            self.stop()
        except Exception as exc:  # any failure: try again in a minute, the pod keeps billing otherwise
            logger.error("Could not stop the pod (will try again in %.0f s): %s", RETRY_SECONDS, exc)
            return self.stops_requested > 0
        self.stops_requested += 1
        logger.warning("No ping from the app for %.0f minutes: asked RunPod to stop this pod", self.limit / 60)
        return True


def stop_pod(*, api_base_url: str, api_key: str, pod_id: str, timeout: float = 30) -> None:
    """RunPod's podStop mutation, as the runpod SDK sends it; raises unless RunPod confirms."""
    if not pod_id.isalnum():
        raise ValueError(f"unexpected pod id {pod_id!r}")
    query = f'mutation {{ podStop(input: {{podId: "{pod_id}"}}) {{ id desiredStatus }} }}'
    request = urllib.request.Request(  # noqa: S310 - RunPod's https URL, or a test's loopback one
        f"{api_base_url.rstrip('/')}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        body = json.loads(response.read(1024 * 1024))
    if body.get("errors") or not (body.get("data") or {}).get("podStop"):
        raise RuntimeError(f"RunPod did not stop the pod: {str(body)[:300]}")


def serve(watchdog: Watchdog, *, host: str = "0.0.0.0", port: int = DEFAULT_PORT) -> http.server.ThreadingHTTPServer:  # noqa: S104
    """The ping endpoint, in a thread of its own. Only the right token resets the timer."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if not self.path.endswith(PING_PATH):
                self.send_error(404)
            elif watchdog.ping(self.headers.get(TOKEN_HEADER, "")):
                self.send_response(204)
                self.end_headers()
            else:
                self.send_error(403)

        def log_message(self, format: str, *args: object) -> None:
            pass  # a ping a minute is not news

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="deadman-ping", daemon=True).start()
    return server


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s deadman %(levelname)s: %(message)s")
    minutes = float(os.environ.get("RUNPOD_DEADMAN_MINUTES") or DEFAULT_MINUTES)
    pod_id, api_key = os.environ.get("RUNPOD_POD_ID", ""), os.environ.get("RUNPOD_API_KEY", "")
    if not pod_id or not api_key:
        logger.error("RUNPOD_POD_ID or RUNPOD_API_KEY is missing: this pod cannot stop itself")
        return
    api_base_url = os.environ.get("RUNPOD_API_BASE_URL") or "https://api.runpod.io"
    watchdog = Watchdog(
        minutes=minutes,
        token=os.environ.get("DEADMAN_TOKEN", ""),
        stop=lambda: stop_pod(api_base_url=api_base_url, api_key=api_key, pod_id=pod_id),
    )
    serve(
        watchdog,
        host=os.environ.get("DEADMAN_HOST", "0.0.0.0"),  # noqa: S104 - RunPod's proxy reaches it there
        port=int(os.environ.get("DEADMAN_PORT") or DEFAULT_PORT),
    )
    logger.info("Stopping this pod after %.0f minutes without a ping from the app", minutes)
    # Checked several times per limit (at most every 30 s), so a stop comes at most a little after it.
    every = min(30.0, watchdog.limit / 10)
    while True:
        watchdog.check()
        time.sleep(every)


if __name__ == "__main__":
    main()
