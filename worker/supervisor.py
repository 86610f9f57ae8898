"""The supervisor of the django-q2 cluster: `manage.py run_worker`, the worker line of the Procfile.

django-q2 replaces a process of its cluster that dies, but a process killed while it waits on one of the
cluster's queues (an idle worker waiting for a task, the monitor waiting for a result) dies holding that queue's
lock, and the replacement waits for the lock forever (django-q2 issue #23; an out-of-memory kill does the same):
the cluster logs that it reincarnated the process, then runs no task again, or stores no result again. So the
supervisor restarts the whole cluster, at its next check (every WORKER_SUPERVISOR_INTERVAL seconds), when

* the cluster's main process exits, or its sentinel, monitor or pusher dies: django-q2 never replaces those on
  purpose, and a replaced monitor or pusher may be one of the stuck ones;
* the heartbeat is older than WORKER_HEARTBEAT_STALE_AFTER, counted from the cluster's start at the earliest:
  that is how a worker that died waiting on the queue shows. A replaced worker alone proves nothing, since
  django-q2 also replaces workers on purpose (after 500 tasks, or after a task's timeout).

A restart kills every process of the old cluster at once, orphans included: a stalled cluster cannot stop
gracefully (its stop waits on the same locks), and the background tasks are written to survive a kill (steps
are followed under a lease and picked up again, schedules simply run again). The supervisor never exits because
of the cluster, so honcho keeps the web server up.

Beside the cluster it runs the InvokeAI events listener (`manage.py run_events`, generation.events), one
long-lived process that holds no django-q2 worker. It is started again at the next check when it exits, without
touching the cluster, and stopped with the cluster when the cluster is restarted, then started again once the new
cluster has all its processes.

If the supervisor itself is killed, the cluster it started runs on without it, and so does the web server
(honcho only notices a process end once nothing writes to its output, and the cluster still does): background
work goes on, and once the supervisor has not checked in for WORKER_HEARTBEAT_STALE_AFTER, every page says the
worker runs unsupervised and `manage.py health` fails. Stopping `make run` still stops all of it: the cluster stays
in the supervisor's process group, which honcho signals.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from . import selectors, services

logger = logging.getLogger(__name__)

# A healthy cluster asked to stop finishes its running tasks first; a follower can take a minute, and is
# picked up again anyway.
STOP_GRACE = 10.0
_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Roster:
    """A started cluster's processes, told apart by the order django-q2 starts them in: the main process
    (`manage.py qcluster`) starts the sentinel, which starts the workers, then the monitor, then the pusher."""

    main: psutil.Process
    sentinel: psutil.Process
    workers: list[psutil.Process]
    monitor: psutil.Process
    pusher: psutil.Process


def cluster_roster(main: psutil.Process, *, workers: int) -> Roster | None:
    """The processes of the cluster whose main process is `main`, or None until all of them have started."""
    try:
        [sentinel] = main.children()
        children = sorted(sentinel.children(), key=lambda process: (process.create_time(), process.pid))
    except (ValueError, psutil.Error):
        return None
    if len(children) != workers + 2:
        return None
    return Roster(main, sentinel, children[:workers], children[-2], children[-1])


def alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@dataclass
class _Cluster:
    process: subprocess.Popen[bytes]
    started: float
    roster: Roster | None = None
    # Every process of this cluster seen so far, to kill the ones that outlive its main process.
    seen: dict[int, psutil.Process] = field(default_factory=dict)


class Supervisor:
    def __init__(self, *, command: Sequence[str], workers: int, interval: float, companion: Sequence[str] = ()) -> None:
        self.command = list(command)
        self.companion = list(companion)
        self.workers = workers
        self.interval = interval
        self._stop = threading.Event()
        self._companion: subprocess.Popen[bytes] | None = None

    def run(self) -> None:
        """Run the cluster until SIGTERM or SIGINT, restarting it whenever it breaks."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        _become_subreaper()
        _record(services.supervisor_start_record, now=timezone.now())
        while True:
            cluster = self._start()
            reason = self._watch(cluster)
            if self._stop.is_set():
                self._stop_cluster(cluster)
                return
            logger.error("Restarting the background worker: %s.", reason)
            self._kill(cluster)
            _record(services.cluster_restart_record, reason=reason, now=timezone.now())

    def check(self, cluster: _Cluster) -> str:
        """Why the cluster must be restarted now, or ""."""
        code = cluster.process.poll()
        if code is not None:
            return f"its main process exited (code {code})"
        try:
            main = psutil.Process(cluster.process.pid)
            cluster.seen.update((process.pid, process) for process in main.children(recursive=True))
        except psutil.Error:
            return "its main process is gone"
        if cluster.roster is None:
            cluster.roster = cluster_roster(main, workers=self.workers)
            waited = time.monotonic() - cluster.started
            if cluster.roster is None and waited > settings.WORKER_HEARTBEAT_STALE_AFTER:
                return f"it did not start all its processes in {int(waited)} s"
        if cluster.roster is not None:
            for role in ("sentinel", "monitor", "pusher"):
                process = getattr(cluster.roster, role)
                if not alive(process):
                    return f"its {role} process ({process.pid}) died"
        try:
            close_old_connections()
            return selectors.cluster_stale_reason()
        except DatabaseError as exc:
            # The cluster cannot work without the database either; a restart would not bring it back.
            logger.warning("Could not read the worker's heartbeat: %s", exc)
            return ""

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._stop.set()

    def _start(self) -> _Cluster:
        process = subprocess.Popen(self.command, cwd=settings.BASE_DIR)  # noqa: S603 (our own command line)
        logger.info("Background worker started (pid %s).", process.pid)
        return _Cluster(process=process, started=time.monotonic())

    def _companion_check(self) -> None:
        """Start the companion process if it is not running (at the start, or once it has exited)."""
        if not self.companion:
            return
        if self._companion is not None:
            code = self._companion.poll()
            if code is None:
                return
            logger.error("The InvokeAI events listener exited (code %s); starting it again.", code)
        self._companion = subprocess.Popen(self.companion, cwd=settings.BASE_DIR)  # noqa: S603 (our own command)
        logger.info("InvokeAI events listener started (pid %s).", self._companion.pid)

    def _watch(self, cluster: _Cluster) -> str:
        while not self._stop.wait(self.interval):
            _record(services.supervisor_seen_record, now=timezone.now())
            if reason := self.check(cluster):
                return reason
            # Once the cluster has all its processes: starting both at once on a busy machine can make the
            # cluster miss its start deadline.
            if cluster.roster is not None:
                self._companion_check()
        return ""

    def _stop_cluster(self, cluster: _Cluster) -> None:
        running = [process for process in (cluster.process, self._companion) if process and process.poll() is None]
        for process in running:
            process.terminate()
        for process in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(STOP_GRACE)
        self._kill(cluster)

    def _kill(self, cluster: _Cluster) -> None:
        """SIGKILL every process of the cluster, including those whose parent died, and reap them."""
        victims = dict(cluster.seen)
        with contextlib.suppress(psutil.Error):
            victims.update((process.pid, process) for process in psutil.Process().children(recursive=True))
        for process in victims.values():
            with contextlib.suppress(psutil.Error):
                process.kill()
        cluster.process.wait()
        victims.pop(cluster.process.pid, None)
        if self._companion is not None:
            # Killed with the rest (it is a child too): reaped here, started again with the new cluster.
            self._companion.wait()
            victims.pop(self._companion.pid, None)
            self._companion = None
        psutil.wait_procs(list(victims.values()), timeout=5)


def _record(write: Callable[..., None], **kwargs: Any) -> None:
    """Record what the supervisor did; a database that does not answer must not stop the supervisor."""
    try:
        close_old_connections()
        write(**kwargs)
    except DatabaseError as exc:
        logger.warning("Could not record the worker's state: %s", exc)


def _become_subreaper() -> None:
    """Make the cluster's orphans (when its sentinel dies, its workers live on) children of the supervisor, so a
    restart finds them, kills them and reaps them, and they never run tasks beside the new cluster. Linux only;
    elsewhere the processes seen at the last check are killed."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        logger.warning("Not a subreaper (errno %s): orphans are found from the last check.", ctypes.get_errno())
