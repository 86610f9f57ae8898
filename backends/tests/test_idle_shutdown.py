"""The idle shutdown, tested the way SkyPilot tests autostop, on a clock the test moves (nothing sleeps):
not stopped early; stopped after the timeout; the timer reset by activity and by a new step; a busy queue on the
pod keeps it up; the longest session stops even a busy pod; a worker restart does not reset the timer; the
budget stops a running pod."""

from __future__ import annotations

from decimal import Decimal

import pytest

from backends import manager, signals
from backends.invokeai import graphs
from backends.invokeai.client import InvokeAIClient
from backends.models import BackendSettings, PodSession
from backends.services import backend_settings_update

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_sleep")]

State = PodSession.State


@pytest.fixture
def ready(pod_env):
    backend_settings_update(idle_timeout_minutes=30)
    return pod_env.ready()


def state(session: PodSession) -> str:
    session.refresh_from_db()
    return session.state


def enqueue(invokeai, count: int = 1):
    """Work on the pod's InvokeAI that is not ours (someone using InvokeAI's own UI through the proxy)."""
    model = invokeai.model("tiny-sd1")
    identifier = graphs.ModelIdentifier(**{key: model[key] for key in ("key", "hash", "name", "base", "type")})
    body = graphs.build_batch(
        graphs.GenerationParameters(model=identifier, prompt="a cat", width=64, height=64, steps=2, batch_size=count)
    )
    return InvokeAIClient(invokeai.url, connect_timeout=2, read_timeout=2).enqueue(body)


@pytest.fixture
def step_in_flight():
    """A step of ours running or being retrieved, as the generation app answers `busy_check`."""
    busy = {"now": True}

    def receiver(sender, **kwargs):
        return busy["now"]

    signals.busy_check.connect(receiver, dispatch_uid="test-step-in-flight")
    yield busy
    signals.busy_check.disconnect(dispatch_uid="test-step-in-flight")


def test_not_stopped_early(pod_env, ready):
    checks = pod_env.every_minute(29)
    assert {check.outcome for check in checks} == {"idle"}
    assert checks[-1].idle_minutes == pytest.approx(29)
    assert state(ready) == State.READY
    assert pod_env.runpod.pods[ready.pod_id].desired_status == "RUNNING"


def test_stopped_after_the_timeout_and_the_stop_verified(pod_env, ready):
    checks = pod_env.every_minute(30)
    assert (checks[-1].outcome, checks[-1].reason) == ("stopped", "idle")
    ready.refresh_from_db()
    assert (ready.state, ready.stop_reason) == (State.STOPPED, "idle")
    assert pod_env.runpod.pods[ready.pod_id].desired_status == "EXITED"
    assert ready.stopped_at == pod_env.clock.now
    assert ready.message == "Stopped after 30 idle minutes."
    # No more checks against a stopped pod.
    assert pod_env.idle_check().outcome == "no_pod"


def test_the_timer_is_reset_by_activity(pod_env, ready):
    pod_env.every_minute(20)
    # The studio is open, or a generate call came in.
    signals.user_activity.send(sender=None)
    checks = pod_env.every_minute(29)
    assert checks[-1].outcome == "idle"
    assert state(ready) == State.READY
    assert pod_env.every_minute(1)[-1].outcome == "stopped"


def test_the_timer_is_reset_by_a_new_step(pod_env, ready, step_in_flight):
    pod_env.every_minute(20)
    signals.user_activity.send(sender=None)
    # The step runs for five minutes: every check finds us busy and restarts the timer.
    assert {check.outcome for check in pod_env.every_minute(5)} == {"busy"}
    step_in_flight["now"] = False
    assert pod_env.every_minute(29)[-1].outcome == "idle"
    assert pod_env.every_minute(1)[-1].outcome == "stopped"


def test_a_busy_invokeai_queue_on_the_pod_keeps_it_up(pod_env, ready):
    enqueue(pod_env.invokeai, count=2)
    checks = pod_env.every_minute(45)
    assert {check.outcome for check in checks} == {"busy"}
    assert state(ready) == State.READY
    # The fake InvokeAI's queue drains when its own clock moves on.
    pod_env.invokeai.clock.advance(60)
    assert pod_env.every_minute(29)[-1].outcome == "idle"
    assert pod_env.every_minute(1)[-1].outcome == "stopped"


def test_an_invokeai_that_does_not_answer_does_not_keep_the_pod_up(pod_env, ready):
    pod_env.invokeai.refuse_connections()
    checks = pod_env.every_minute(30)
    assert checks[-1].outcome == "stopped"
    assert BackendSettings.objects.get().is_connected is False
    pod_env.invokeai.accept_connections()


def test_the_longest_session_stops_a_busy_pod(pod_env, step_in_flight):
    backend_settings_update(max_session_hours=1)
    session = pod_env.ready()
    checks = pod_env.every_minute(60)
    assert {check.outcome for check in checks[:-1]} == {"busy"}
    assert (checks[-1].outcome, checks[-1].reason) == ("stopped", "max_lifetime")
    session.refresh_from_db()
    assert (session.state, session.stop_reason) == (State.STOPPED, "max_lifetime")


def test_a_worker_restart_does_not_reset_the_timer(pod_env, ready):
    pod_env.every_minute(20)
    # A new worker process: no client, no cached state, only the database.
    manager._clients.__dict__.clear()
    pod_env.clock.advance(minutes=9)
    assert pod_env.idle_check().outcome == "idle"
    pod_env.clock.advance(minutes=1)
    assert pod_env.idle_check().outcome == "stopped"


def test_a_missed_check_stops_as_soon_as_the_next_one_runs(pod_env, ready):
    # The worker was down for an hour: the first check after it stops the pod, it does not start counting.
    pod_env.clock.advance(minutes=61)
    assert pod_env.idle_check().outcome == "stopped"


def test_the_budget_stops_a_running_pod(pod_env, step_in_flight):
    # $0.69 an hour (RunPod's price for the fake's RTX 4090): $1.00 lasts 86.96 minutes.
    backend_settings_update(monthly_budget=Decimal("1.00"), max_session_hours=8)
    session = pod_env.ready()
    checks = pod_env.every_minute(87)
    assert {check.outcome for check in checks[:86]} == {"busy"}
    assert (checks[86].outcome, checks[86].reason) == ("stopped", "budget")
    session.refresh_from_db()
    assert (session.state, session.stop_reason) == (State.STOPPED, "budget")
    assert session.estimated_cost == Decimal("1.0005")


def test_the_timeout_is_the_one_set_on_the_backend_page(pod_env, settings):
    settings.RUNPOD_IDLE_TIMEOUT = 45
    session = pod_env.ready()
    assert pod_env.every_minute(44)[-1].outcome == "idle"
    backend_settings_update(idle_timeout_minutes=10)
    assert pod_env.every_minute(1)[-1].outcome == "stopped"
    assert PodSession.objects.get(pk=session.pk).stop_reason == "idle"
