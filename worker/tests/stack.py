"""The app as `make run` starts it, for the process tests: honcho with the Procfile (gunicorn and the supervised
django-q2 cluster) as subprocesses, on a database of their own (a SQLite file in a temporary DATA_DIR, or a
PostgreSQL database created for the test when the suite runs on PostgreSQL), after the same migrate,
setup_schedules and ensure_superuser. The test talks to it as a client does, over HTTP, and kills the
processes of the tree it started, found from honcho's pid, never by name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psutil
import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from worker.supervisor import Roster, alive, cluster_roster

BASE_DIR = Path(settings.BASE_DIR)
USERNAME, PASSWORD = "owner", "a long test password"
T = TypeVar("T")


class RealTimeClock:
    """For the fake InvokeAI: its queue runs in real time, so items finish while the processes are killed."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    @property
    def now(self) -> float:
        return time.monotonic() - self._start


@contextlib.contextmanager
def database_url(tmp_path: Path) -> Iterator[str]:
    """A database for the stack, of the kind the suite runs on; a PostgreSQL one is dropped afterwards."""
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        yield f"sqlite:///{tmp_path / 'db.sqlite3'}"
        return
    import psycopg
    from psycopg import sql

    suite = urlsplit(os.environ["DATABASE_URL"])
    name = f"{suite.path.lstrip('/')}_procs_{uuid.uuid4().hex[:8]}"
    admin = urlunsplit(suite._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(suite._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def forget_cluster(redis_url: str, name: str) -> None:
    """Delete the keys a cluster named `name` left in Redis (its queue and its statistics)."""
    import redis

    connection = redis.from_url(redis_url)
    keys = list(connection.scan_iter(match=f"django_q:{name}:*"))
    if keys:
        connection.delete(*keys)
    connection.close()


def wait_for(check: Callable[[], T], what: str, *, timeout: float, every: float = 0.5) -> T:
    """Poll `check` until it returns something true; fail saying `what` was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        if value := check():
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Stack:
    def __init__(self, tmp_path: Path, database: str, *, workers: int, env: dict[str, str]) -> None:
        self.tmp_path = tmp_path
        self.data_dir = tmp_path / "data"
        self.workers = workers
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "stack.log"
        inherited = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "PYTEST"))}
        self.env = {
            **inherited,
            "DJANGO_SETTINGS_MODULE": "gallery_project.settings",
            "DATA_DIR": str(self.data_dir),
            "DATABASE_URL": database,
            "SECRET_KEY": "process-tests-not-secret",
            "Q_WORKERS": str(workers),
            "DJANGO_SUPERUSER_USERNAME": USERNAME,
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "INFO",
            # Its own keys when the suite runs with REDIS_URL: stacks and test runs may share one Redis.
            "Q_CLUSTER_NAME": f"procs-{uuid.uuid4().hex[:12]}",
            **env,
        }
        self.api = requests.Session()
        # A busy machine can make gunicorn close a kept-alive connection just as the next request goes out on
        # it (a reset): reads are safe to send again, writes are not.
        self.api.mount(
            "http://", HTTPAdapter(max_retries=Retry(total=3, read=3, backoff_factor=0.2, allowed_methods={"GET"}))
        )
        self._processes: list[subprocess.Popen[bytes]] = []
        self._seen: dict[int, psutil.Process] = {}

    # --- starting and stopping ---

    def start(self, *, probe_every: float) -> Stack:
        """What `make run` does, and a heartbeat probe every `probe_every` seconds. Not collectstatic, which
        takes minutes: the tests read the API and the alert's partial, which need no static files."""
        for command in (["migrate", "--noinput"], ["setup_schedules"], ["ensure_superuser"]):
            self.manage(*command, check=True)
        (self.data_dir / "staticfiles").mkdir()
        # honcho reads ./.env by default: a developer's own must not leak into the test.
        empty_env = self.tmp_path / "honcho.env"
        empty_env.write_text("")
        honcho = [sys.executable, "-m", "honcho", "start", "-f", "Procfile", "-e", str(empty_env), "-p", str(self.port)]
        self.honcho = self._spawn(honcho)
        self._spawn([sys.executable, "-m", "worker.tests.heartbeat_probe", str(probe_every)])
        wait_for(self.web_answers, "the web server", timeout=60)
        token = self.api.post(f"{self.url}/api/auth/token/", data={"username": USERNAME, "password": PASSWORD})
        self.api.headers["Authorization"] = f"Token {token.json()['token']}"
        self.web = wait_for(self._gunicorn, "gunicorn's master process", timeout=10)
        return self

    def stop(self) -> None:
        self._remember_tree()
        for process in self._processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(15)
        self._remember_tree()
        for process in self._seen.values():
            with contextlib.suppress(psutil.Error):
                process.kill()
        for process in self._processes:
            process.kill()
            process.wait()
        psutil.wait_procs(list(self._seen.values()), timeout=5)
        if redis_url := self.env.get("REDIS_URL"):
            forget_cluster(redis_url, self.env["Q_CLUSTER_NAME"])

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    def _spawn(self, command: list[str]) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as log:
            process = subprocess.Popen(  # noqa: S603 (our own command lines)
                command, cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._processes.append(process)
        return process

    def manage(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(  # noqa: S603 (our own command line)
            [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=self.env, capture_output=True, text=True
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done

    # --- the process tree ---

    def _tree(self) -> list[psutil.Process]:
        tree: list[psutil.Process] = []
        for process in self._processes:
            with contextlib.suppress(psutil.Error):
                tree += psutil.Process(process.pid).children(recursive=True)
        return tree

    def _remember_tree(self) -> None:
        self._seen.update((process.pid, process) for process in self._tree())

    def _gunicorn(self) -> psutil.Process | None:
        for process in self._tree():
            with contextlib.suppress(psutil.Error):
                if "gunicorn" in " ".join(process.cmdline()) and "gunicorn" not in " ".join(process.parent().cmdline()):
                    return process
        return None

    def supervisor(self) -> psutil.Process:
        def find() -> psutil.Process | None:
            for process in self._tree():
                with contextlib.suppress(psutil.Error):
                    if process.cmdline()[-2:] == ["manage.py", "run_worker"]:
                        return process
            return None

        return wait_for(find, "the supervisor", timeout=10)

    def events_listener(self, *, replacing: psutil.Process | None = None) -> psutil.Process:
        """The InvokeAI events listener the supervisor runs beside the cluster (a new one with `replacing`)."""

        def find() -> psutil.Process | None:
            with contextlib.suppress(psutil.Error):
                for process in self.supervisor().children():
                    command = process.cmdline()
                    listener = command[-1:] == ["run_events"] and command[-2].endswith("manage.py")
                    if listener and alive(process) and (replacing is None or process.pid != replacing.pid):
                        return process
            return None

        return wait_for(find, "the events listener", timeout=30)

    def roster(self, *, replacing: Roster | None = None, timeout: float = 60) -> Roster:
        """The running cluster's processes, once all have started; with `replacing`, those of a newer cluster."""

        def find() -> Roster | None:
            self._remember_tree()
            with contextlib.suppress(psutil.Error):
                for main in sorted(self.supervisor().children(), key=lambda p: p.create_time(), reverse=True):
                    if alive(main) and (replacing is None or main.pid != replacing.main.pid):
                        roster = cluster_roster(main, workers=self.workers)
                        if roster is not None:
                            self._remember_tree()
                            return roster
            return None

        return wait_for(find, "the cluster's processes", timeout=timeout)

    # --- HTTP ---

    def web_answers(self) -> bool:
        with contextlib.suppress(requests.RequestException):
            return requests.get(f"{self.url}/api/backend/status", timeout=5).status_code == 401
        return False

    def get(self, path: str, **params: Any) -> Any:
        response = self.api.get(f"{self.url}{path}", params=params, timeout=30)
        assert response.status_code == 200, (path, response.status_code, response.text[:500])
        return response.json()

    def post(self, path: str, body: dict[str, Any], *, expect: int = 200) -> Any:
        response = self.api.post(f"{self.url}{path}", json=body, timeout=30)
        assert response.status_code == expect, (path, response.status_code, response.text[:500])
        return response.json()

    def queue_waits(self, *, since: float) -> list[float]:
        """Seconds from queueing to the end of each heartbeat probe queued after `since` (a time.time()): its wait
        in the queue, since a heartbeat takes no time. (django-q2's `started` is when a task was queued.)"""
        script = (
            "from django_q.models import Task\n"
            "for name, stopped in Task.objects.filter(group='probe').values_list('name', 'stopped'):\n"
            "    print(name.removeprefix('probe-'), stopped.timestamp())"
        )
        lines = self.manage("shell", "-v0", "-c", script, check=True).stdout.split()
        pairs = [(float(queued), float(stopped)) for queued, stopped in zip(lines[::2], lines[1::2], strict=True)]
        return [stopped - queued for queued, stopped in pairs if queued > since]

    def worker(self) -> dict[str, Any]:
        return self.get("/api/backend/status")["worker"]

    def page(self, path: str) -> str:
        """A page as the owner's browser gets it (the login page itself needs the static files' manifest)."""
        response = requests.get(
            f"{self.url}{path}", cookies={"sessionid": self.session_cookie()}, timeout=30, allow_redirects=False
        )
        assert response.status_code == 200, (path, response.status_code)
        return response.text

    def session_cookie(self) -> str:
        """The owner's session cookie, made the way `Client.force_login` makes one."""
        make_session = (
            "from django.contrib import auth; from django.contrib.sessions.backends.db import SessionStore; "
            f"user = auth.get_user_model().objects.get(username={USERNAME!r}); session = SessionStore(); "
            "session[auth.SESSION_KEY] = str(user.pk); session[auth.HASH_SESSION_KEY] = user.get_session_auth_hash(); "
            "session[auth.BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend'; session.create(); "
            "print(session.session_key)"
        )
        return self.manage("shell", "-v0", "-c", make_session, check=True).stdout.strip()
