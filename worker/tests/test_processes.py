"""The supervised worker for real: the web server and the django-q2 cluster as `make run` starts them (honcho,
the Procfile), on a database file or a PostgreSQL database of their own, with the fake InvokeAI running its
queue in real time and the fake RunPod served as GraphQL for the runpod SDK. The tests kill -9 the cluster's
processes, found from the tree they started, and watch what a user would: the API, the alert, `health`.

The heartbeat runs once a minute in production and the supervisor's timings are minutes; here a probe enqueues
one every PROBE_EVERY seconds and the settings make a heartbeat stale after STALE_AFTER seconds, so each test
takes a minute or a few rather than many. Marker `processes` (`-m processes`, or `-m "not processes"`).
"""

from __future__ import annotations

import signal
import time
from datetime import datetime

import psutil
import pytest

from testing.fake_invokeai import FakeInvokeAI
from testing.fake_runpod import API_KEY, FakeRunPod
from worker.supervisor import alive

from .stack import RealTimeClock, Stack, database_url, wait_for

pytestmark = pytest.mark.processes

PROBE_EVERY = 2
STALE_AFTER = 15
SECONDS_PER_IMAGE = 8
IMAGES = 10
IDLE_MINUTES = 1
STEPS_AT_ONCE = 8
# The minute schedules run at the sentinel's scheduler passes, every 30 s: one may come 90 s after the last.
LONGEST_SCHEDULE_GAP = 90


@pytest.fixture
def invokeai():
    server = FakeInvokeAI(seconds_per_item=SECONDS_PER_IMAGE)
    server.clock = RealTimeClock()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def runpod():
    server = FakeRunPod(auto_boot=True).serve()
    yield server
    server.stop()


@pytest.fixture
def stack(tmp_path, invokeai, runpod):
    """Start one with `stack(workers=N)`; it is stopped (and its PostgreSQL database dropped) afterwards."""
    started: list[Stack] = []
    with database_url(tmp_path) as database:

        def start(*, workers: int) -> Stack:
            env = {
                "WORKER_HEARTBEAT_STALE_AFTER": str(STALE_AFTER),
                "WORKER_SUPERVISOR_INTERVAL": "1",
                "INVOKEAI_LOCAL_URL": invokeai.url,
                "INVOKEAI_READ_TIMEOUT": "10",
                "RUNPOD_API_KEY": API_KEY,
                "RUNPOD_API_BASE_URL": runpod.url,
                "RUNPOD_PROXY_URL_TEMPLATE": invokeai.url,
                "RUNPOD_IDLE_TIMEOUT": str(IDLE_MINUTES),
            }
            started.append(Stack(tmp_path, database, workers=workers, env=env))
            return started[-1].start(probe_every=PROBE_EVERY)

        try:
            yield start
        finally:
            for one in started:
                one.stop()
                print(f"--- the stack's output, last lines ---\n{one.log_tail()}")


def beat_after(stack: Stack, moment: float):
    """Wait for a heartbeat that finished after `moment` (a time.time())."""

    def fresh():
        worker = stack.worker()
        return worker["beat_at"] and datetime.fromisoformat(worker["beat_at"]).timestamp() > moment and worker

    return wait_for(fresh, "a heartbeat after the kill", timeout=120)


def test_a_worker_killed_while_it_waits_on_the_queue_stops_everything_until_the_supervisor_restarts_it(stack):
    """django-q2's known defect, and the answer to it: alert, `health`, restart, tasks run again."""
    stack = stack(workers=1)
    wait_for(lambda: stack.worker()["state"] == "ok", "a first heartbeat", timeout=60)
    roster = stack.roster()
    [worker] = roster.workers
    supervisor = stack.supervisor()
    # Held still while the stall is looked at; otherwise it acts within a second of the heartbeat going stale.
    supervisor.suspend()
    try:
        killed_at = time.time()
        worker.kill()
        stale = wait_for(
            lambda: (health := stack.worker())["state"] == "stale" and health, "a stale heartbeat", timeout=60
        )
        # The cluster replaced its worker and carries on looking alive, yet no probe has run since the kill.
        assert alive(roster.main) and alive(roster.sentinel) and alive(roster.monitor) and alive(roster.pusher)
        assert len(roster.sentinel.children()) == 3
        assert datetime.fromisoformat(stale["beat_at"]).timestamp() < killed_at
        assert stale["title"] == "Background work has stopped."
        assert "pods are not stopped when idle" in stale["message"]
        health = stack.manage("health")
        assert health.returncode == 1
        assert "stale: Background work has stopped. The worker's last heartbeat was" in health.stderr
        alert = stack.page("/worker/alert/")
        assert "<strong>Background work has stopped.</strong>" in alert and " hidden" not in alert
    finally:
        supervisor.resume()

    recovered = beat_after(stack, killed_at)
    assert recovered["state"] == "ok"
    assert (recovered["restarts"], recovered["restart_reason"][:17]) == (1, "no heartbeat for ")
    assert not alive(worker) and not alive(roster.main) and not alive(roster.sentinel)
    stack.roster(replacing=roster)
    health = stack.manage("health")
    assert health.returncode == 0, health.stderr
    assert health.stdout.startswith("ok: The worker's last heartbeat was")
    assert " hidden" in stack.page("/worker/alert/")
    # The web server was never touched.
    assert alive(stack.web)
    # And the minute schedule beats, not only the probe.
    scheduled = 'from django_q.models import Task; print(Task.objects.filter(group="worker.heartbeat").count())'
    count = lambda: int(stack.manage("shell", "-v0", "-c", scheduled).stdout)  # noqa: E731
    wait_for(lambda: count() > 0, "a scheduled heartbeat", timeout=120)


def test_killing_each_cluster_process_during_a_step_loses_no_image_and_the_pod_still_stops_on_time(
    stack, invokeai, runpod
):
    stack = stack(workers=2)
    wait_for(lambda: stack.worker()["state"] == "ok", "a first heartbeat", timeout=60)
    stack.post("/api/backend/mode", {"mode": "remote"})
    stack.post("/api/backend/pod/start", {}, expect=202)
    wait_for(lambda: (stack.get("/api/backend/status")["pod"] or {}).get("state") == "ready", "a ready pod", timeout=90)
    stack.post("/api/models/refresh/", {})
    model = next(model for model in stack.get("/api/models/", type="main") if model["name"] == "tiny-sd1")
    session = stack.post("/api/generation/sessions/", {"title": "Killed"}, expect=201)["id"]
    body = {"prompt": "a lighthouse", "model_key": model["key"], "batch_size": IMAGES, "width": 64, "height": 64}
    step_id = stack.post(f"/api/generation/sessions/{session}/steps/", {**body, "steps": 2}, expect=202)["id"]

    def step():
        return stack.get(f"/api/generation/steps/{step_id}/")

    wait_for(lambda: step()["images"], "a first image", timeout=60)
    roster = stack.roster()
    for role, index in [("pusher", 0), ("monitor", 0), ("sentinel", 0), ("main", 0), ("workers", 0), ("workers", 1)]:
        assert step()["status"] == "running", f"the step ended before the {role} was killed"
        victim = roster.workers[index] if role == "workers" else getattr(roster, role)
        restarts = stack.worker()["restarts"]
        killed_at = time.time()
        victim.kill()
        if role != "workers":
            # Never left to django-q2's reincarnation: the whole cluster is restarted.
            wait_for(lambda n=restarts: stack.worker()["restarts"] > n, f"a restart after the {role} died", timeout=30)
        beat_after(stack, killed_at)
        if stack.worker()["restarts"] > restarts:
            roster = stack.roster(replacing=roster)
        assert alive(stack.web), "the web server went down"

    done = wait_for(lambda: (body := step())["status"] != "running" and body, "the step's end", timeout=300)
    assert (done["status"], done["images_failed"], done["error_message"]) == ("completed", 0, "")
    assert len({image["id"] for image in done["images"]}) == len(done["images"]) == IMAGES
    assert stack.get("/api/photos/", generated="true", limit=100)["total"] == IMAGES
    step_dir = stack.data_dir / "photos" / "generated" / "sessions" / str(session) / str(step_id) / "variants"
    assert len(list(step_dir.glob("*.png"))) == IMAGES
    # One batch on InvokeAI, every item of it made once: nothing was sent again.
    assert len(invokeai.items) == IMAGES

    # From here on nothing touches the studio: the pod is idle since its last activity.
    idle_since = 0.0

    def stopped():
        nonlocal idle_since
        pod = stack.get("/api/backend/status")["pod"]
        if pod["state"] == "ready" and pod["idle_minutes"] is not None:
            idle_since = max(idle_since, time.time() - pod["idle_minutes"] * 60)
        return pod["state"] in ("stopping", "stopped")

    wait_for(stopped, "the idle stop", timeout=IDLE_MINUTES * 60 + LONGEST_SCHEDULE_GAP + 120, every=2)
    [session_row, *_] = stack.get("/api/backend/pod-sessions/")["items"]
    assert session_row["stop_reason"] == "idle"
    late = datetime.fromisoformat(session_row["stop_requested_at"]).timestamp() - idle_since
    assert IDLE_MINUTES * 60 <= late <= IDLE_MINUTES * 60 + LONGEST_SCHEDULE_GAP + 10, late
    wait_for(lambda: all(pod.desired_status == "EXITED" for pod in runpod.pods.values()), "RunPod's stop", timeout=120)


def test_killing_the_supervisor_leaves_the_web_server_and_the_worker_running_and_says_so(stack):
    stack = stack(workers=1)
    wait_for(lambda: stack.worker()["state"] == "ok", "a first heartbeat", timeout=60)
    roster = stack.roster()
    supervisor = stack.supervisor()
    cluster = [roster.main, roster.sentinel, *roster.workers, roster.monitor, roster.pusher]
    killed_at = time.time()
    supervisor.kill()
    unsupervised = wait_for(
        lambda: (health := stack.worker())["state"] == "unsupervised" and health, "the unsupervised state", timeout=60
    )
    assert unsupervised["title"] == "The background worker runs without its supervisor."
    assert "nothing restarts the worker if it stalls. Restart 'make run'" in unsupervised["message"]
    beat_after(stack, killed_at)
    health = stack.manage("health")
    assert health.returncode == 1 and "unsupervised: The background worker runs without" in health.stderr
    assert all(alive(process) for process in [stack.web, *cluster])
    # Stopping `make run` (honcho) still stops everything, the unsupervised cluster included.
    stack.honcho.send_signal(signal.SIGTERM)
    stack.honcho.wait(30)
    _, left = psutil.wait_procs([stack.web, *cluster], timeout=15)
    assert left == []
    assert not stack.web_answers()


def test_eight_steps_on_two_workers_are_all_followed_and_queued_tasks_still_run_at_once(stack, invokeai):
    """Followers take turns on the workers in bursts of a few seconds, so tasks queued meanwhile (a minute
    schedule, here the probes) wait for one burst of each follower at most, not for the steps to end."""
    stack = stack(workers=2)
    wait_for(lambda: stack.worker()["state"] == "ok", "a first heartbeat", timeout=60)
    stack.post("/api/models/refresh/", {})
    model = next(model for model in stack.get("/api/models/", type="main") if model["name"] == "tiny-sd1")
    body = {"prompt": "a lighthouse", "model_key": model["key"], "width": 64, "height": 64, "steps": 2}
    started = time.time()
    steps = []
    for number in range(STEPS_AT_ONCE):
        session = stack.post("/api/generation/sessions/", {"title": f"Busy {number}"}, expect=201)["id"]
        steps.append(stack.post(f"/api/generation/sessions/{session}/steps/", body, expect=202)["id"])

    previews: set[str] = set()

    def ended():
        bodies = [stack.get(f"/api/generation/steps/{step_id}/") for step_id in steps]
        running = [item for body in bodies for item in body["progress"]["items"]]
        previews.update(item["preview_url"] for item in running if item["preview_url"])
        return all(body["status"] != "running" for body in bodies) and bodies

    done = wait_for(ended, "the eight steps' end", timeout=STEPS_AT_ONCE * SECONDS_PER_IMAGE + 120, every=1)
    assert [(body["status"], body["images_retrieved"]) for body in done] == [("completed", 1)] * STEPS_AT_ONCE
    # The events listener the supervisor runs beside the cluster was connected: previews came through it.
    assert invokeai.sockets == 1 and len(previews) >= STEPS_AT_ONCE // 2, previews
    waits = stack.queue_waits(since=started)
    # A probe every 2 s for the whole run, each started within a few bursts of the followers (3 s each).
    assert len(waits) >= STEPS_AT_ONCE * SECONDS_PER_IMAGE // PROBE_EVERY // 2
    print(f"queue waits of {len(waits)} probes: median {sorted(waits)[len(waits) // 2]:.1f} s, max {max(waits):.1f} s")
    assert max(waits) < 20, sorted(waits)[-5:]


def test_a_killed_events_listener_is_started_again_and_the_step_loses_nothing(stack, invokeai):
    stack = stack(workers=2)
    wait_for(lambda: stack.worker()["state"] == "ok", "a first heartbeat", timeout=60)
    stack.post("/api/models/refresh/", {})
    model = next(model for model in stack.get("/api/models/", type="main") if model["name"] == "tiny-sd1")
    session = stack.post("/api/generation/sessions/", {"title": "Listener"}, expect=201)["id"]
    body = {"prompt": "a lighthouse", "model_key": model["key"], "width": 64, "height": 64, "steps": 4}
    step_id = stack.post(f"/api/generation/sessions/{session}/steps/", {**body, "batch_size": 4}, expect=202)["id"]

    def step():
        return stack.get(f"/api/generation/steps/{step_id}/")

    wait_for(lambda: any(item["preview_url"] for item in step()["progress"]["items"]), "a first preview", timeout=60)
    listener = stack.events_listener()
    restarts = stack.worker()["restarts"]
    listener.kill()
    # Started again on its own, at the supervisor's next check; the cluster is left alone.
    stack.events_listener(replacing=listener)
    assert stack.worker()["restarts"] == restarts
    wait_for(lambda: invokeai.sockets == 1, "the new listener's socket", timeout=30)
    done = wait_for(lambda: (body := step())["status"] != "running" and body, "the step's end", timeout=120)
    assert (done["status"], done["images_retrieved"], done["images_failed"]) == ("completed", 4, 0)
    assert len({image["id"] for image in done["images"]}) == 4 and done["progress"]["items"] == []
    assert len(invokeai.items) == 4
