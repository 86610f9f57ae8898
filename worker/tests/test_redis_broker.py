"""django-q2 on Redis (REDIS_URL), the broker for workers on several hosts; the database stays the default.

The cluster test runs a real stack (web server, supervised cluster) with Redis as its broker: it needs a Redis
on loopback, REDIS_URL's or else 127.0.0.1:6379 (db 9). Without one it is skipped; with REDIS_URL set and no
Redis answering it fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest

from .stack import BASE_DIR, Stack, database_url, forget_cluster, wait_for

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/9"
_BROKER = (
    "from django_q.brokers import get_broker; from django_q.conf import Conf; "
    "print(type(get_broker()).__name__, Conf.ORM)"
)


def broker_with(**env: str) -> str:
    environment = {
        key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DJANGO_SETTINGS_MODULE")
    }
    done = subprocess.run(  # noqa: S603 (our own command line)
        [sys.executable, "manage.py", "shell", "-v0", "-c", _BROKER],
        cwd=BASE_DIR,
        env={**environment, "DJANGO_SETTINGS_MODULE": "gallery_project.settings_test", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_the_database_is_the_broker_unless_redis_url_is_set():
    assert broker_with() == "ORM default"
    assert broker_with(REDIS_URL="redis://127.0.0.1:6379/9") == "Redis None"


@pytest.fixture
def redis_connection():
    import redis

    connection = redis.from_url(REDIS_URL)
    try:
        connection.ping()
    except redis.ConnectionError:
        if os.environ.get("REDIS_URL"):
            pytest.fail(f"REDIS_URL={REDIS_URL} does not answer")
        pytest.skip("no Redis on 127.0.0.1:6379 (set REDIS_URL to run this)")
    yield connection
    connection.close()


@pytest.mark.processes
def test_a_supervised_cluster_on_redis_beats_and_recovers(tmp_path, redis_connection):
    """The heartbeat (scheduler, pusher, a worker and the monitor) works through Redis, nothing goes through the
    database queue, and the supervisor still restarts a cluster whose pusher died."""
    with database_url(tmp_path) as database:
        stack = Stack(
            tmp_path,
            database,
            workers=1,
            env={"REDIS_URL": REDIS_URL, "WORKER_HEARTBEAT_STALE_AFTER": "15", "WORKER_SUPERVISOR_INTERVAL": "1"},
        )
        name = stack.env["Q_CLUSTER_NAME"]
        try:
            stack.start(probe_every=2)
            wait_for(lambda: stack.worker()["state"] == "ok", "a first heartbeat", timeout=90)
            assert list(redis_connection.scan_iter(match=f"django_q:{name}:*")), "the cluster keeps its keys in Redis"
            queued = stack.manage("shell", "-v0", "-c", "from django_q.models import OrmQ; print(OrmQ.objects.count())")
            assert queued.stdout.strip() == "0", "nothing queued in the database"

            roster = stack.roster()
            killed_at = time.time()
            roster.pusher.kill()
            restarted = wait_for(
                lambda: (w := stack.worker())["restarts"] >= 1 and w["beat_at"] and w, "a restart", timeout=120
            )
            assert restarted["restart_reason"]
            stack.roster(replacing=roster)

            def beat_after_kill():
                worker = stack.worker()
                return worker["state"] == "ok" and worker["seconds_since_beat"] < time.time() - killed_at

            wait_for(beat_after_kill, "a heartbeat from the new cluster", timeout=120)
        finally:
            stack.stop()
            print(f"--- the stack's output, last lines ---\n{stack.log_tail()}")
    assert not list(redis_connection.scan_iter(match=f"django_q:{name}:*")), "the stack's keys are deleted"


def test_forget_cluster_deletes_only_that_clusters_keys(redis_connection):
    mine, other = f"t-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    redis_connection.rpush(f"django_q:{mine}:q", "task")
    redis_connection.rpush(f"django_q:{other}:q", "task")
    forget_cluster(REDIS_URL, mine)
    assert not redis_connection.exists(f"django_q:{mine}:q")
    assert redis_connection.exists(f"django_q:{other}:q")
    redis_connection.delete(f"django_q:{other}:q")
