"""Several RunPod pods at once, on the fake RunPod and a clock the test moves: each pod has its own idle timer
and longest session, the budget stops them all, and new steps go to any ready pod."""

from __future__ import annotations

from decimal import Decimal

import pytest

from backends import manager, routing, signals
from backends.models import BackendSettings, PodSession
from backends.services import backend_settings_update
from testing.fake_invokeai import FakeInvokeAI

from .test_idle_shutdown import enqueue

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_sleep")]

State = PodSession.State


@pytest.fixture
def second_invokeai():
    server = FakeInvokeAI().start()
    yield server
    server.stop()


@pytest.fixture
def two_pods(pod_env, second_invokeai, monkeypatch):
    """Two ready pods, each with an InvokeAI of its own behind RunPod's proxy."""
    backend_settings_update(idle_timeout_minutes=30, max_session_hours=2)
    first = pod_env.ready()
    pod_env.clock.advance(minutes=10)
    second = pod_env.start(another=True)
    pod_env.runpod.boot(second.pod_id)
    urls = {first.pod_id: pod_env.invokeai.url, second.pod_id: second_invokeai.url}
    monkeypatch.setattr(manager, "proxy_url", lambda pod_id: urls[pod_id])
    second = pod_env.advance(second)
    assert second.state == State.READY and first.pod_id != second.pod_id
    return first, second


def state(session: PodSession) -> str:
    session.refresh_from_db()
    return session.state


def test_a_second_pod_is_refused_unless_asked_for(pod_env):
    from gallery_project.errors import Conflict

    pod_env.ready()
    with pytest.raises(Conflict, match="already"):
        pod_env.start()


def test_each_pod_stops_on_its_own_idle_timer(pod_env, two_pods, second_invokeai):
    first, second = two_pods
    # Work on the second pod's InvokeAI keeps it up, and only it.
    enqueue(second_invokeai, count=3)
    checks = {}
    for _ in range(30):
        pod_env.clock.advance(minutes=1)
        checks |= {check.session_id: check for check in pod_env_checks(pod_env)}
    # Ready 10 minutes before the second pod, the first is idle from then on: stopped at its 30th idle minute.
    assert (checks[first.pk].outcome, checks[first.pk].reason) == ("stopped", "idle")
    assert checks[second.pk].outcome == "busy"
    assert state(first) == State.STOPPED and state(second) == State.READY
    # Its work done, the second pod's timer runs from its last busy check.
    second_invokeai.clock.advance(3600)
    outcomes = []
    for _ in range(30):
        pod_env.clock.advance(minutes=1)
        outcomes.append(pod_env_checks(pod_env)[-1].outcome)
    assert outcomes[-1] == "stopped" and set(outcomes[:-1]) <= {"busy", "idle"}
    assert state(second) == State.STOPPED


def pod_env_checks(pod_env):
    from backends import pods

    return pods.pods_idle_check(now=pod_env.clock.now, adapter=pod_env.runpod)


def test_our_step_on_one_pod_keeps_only_that_pod_up(pod_env, two_pods, second_invokeai):
    first, second = two_pods

    def receiver(sender, backend_url="", **kwargs):
        return backend_url == second_invokeai.url

    signals.busy_check.connect(receiver, dispatch_uid="test-busy-on-second")
    try:
        for _ in range(30):
            pod_env.clock.advance(minutes=1)
            pod_env_checks(pod_env)
    finally:
        signals.busy_check.disconnect(dispatch_uid="test-busy-on-second")
    assert state(first) == State.STOPPED and state(second) == State.READY


def test_each_pod_has_its_own_longest_session(pod_env, two_pods, second_invokeai):
    first, second = two_pods
    enqueue(pod_env.invokeai, count=1)
    enqueue(second_invokeai, count=1)
    # The first pod started 10 minutes before the second: two hours after it, only it is stopped.
    pod_env.clock.advance(minutes=110)
    checks = {check.session_id: check for check in pod_env_checks(pod_env)}
    assert checks[first.pk].session_id == first.pk
    assert (checks[first.pk].outcome, checks[first.pk].reason) == ("stopped", "max_lifetime")
    assert checks[second.pk].outcome == "busy" and state(second) == State.READY
    pod_env.clock.advance(minutes=10)
    assert pod_env_checks(pod_env)[-1].reason == "max_lifetime"
    assert state(second) == State.STOPPED


def test_the_budget_stops_every_pod(pod_env, two_pods):
    first, second = two_pods
    BackendSettings.objects.update(monthly_budget=Decimal("0.01"))
    pod_env.clock.advance(minutes=30)
    reasons = {check.reason for check in pod_env_checks(pod_env)}
    assert reasons == {"budget"}
    assert state(first) == State.STOPPED and state(second) == State.STOPPED


@pytest.mark.usefixtures("two_pods")
def test_new_steps_may_go_to_either_ready_pod(pod_env, second_invokeai):
    assert routing.backend_choose() == second_invokeai.url  # the latest pod is the one in use
    enqueue(second_invokeai, count=2)
    assert routing.backend_choose() == pod_env.invokeai.url


def stops(pod_env) -> list[str]:
    return [argument for operation, argument in pod_env.runpod.calls if operation == "stop"]


def test_stopping_one_pod_keeps_the_others_and_remote_mode(pod_env, two_pods, second_invokeai):
    first, second = two_pods
    stopped = pod_env.stop(session_id=first.pk)
    assert stopped.state == State.STOPPED and state(second) == State.READY
    assert stops(pod_env) == [first.pod_id]
    assert [pod.id for pod in pod_env.runpod.running()] == [second.pod_id]
    # The other pod still takes steps: the app stays in remote mode, on it.
    assert BackendSettings.current().backend_mode == BackendSettings.Mode.REMOTE
    assert routing.backend_choose() == second_invokeai.url
    # Stopping the last one goes back to the local InvokeAI, as a single pod's stop does.
    pod_env.stop(session_id=second.pk)
    assert BackendSettings.current().backend_mode == BackendSettings.Mode.LOCAL


def test_stopping_a_stopped_or_unknown_pod_is_refused_clearly(pod_env, two_pods):
    from gallery_project.errors import Conflict, NotFound

    first, _ = two_pods
    pod_env.stop(session_id=first.pk)
    with pytest.raises(Conflict, match=f"Pod {first.pod_id} is already stopped") as refused:
        pod_env.stop(session_id=first.pk)
    assert refused.value.code == "pod_not_active"
    with pytest.raises(NotFound) as missing:
        pod_env.stop(session_id=first.pk + 1000)
    assert missing.value.code == "pod_not_found"
    assert stops(pod_env) == [first.pod_id]


def test_a_stop_racing_the_idle_stop_stops_once(pod_env, two_pods, monkeypatch):
    """The user's stop arrives while the idle check is asking RunPod to stop the same pod."""
    first, second = two_pods
    answers = []
    real_stop = pod_env.runpod.stop_pod

    def stop_pod(pod_id):
        if not answers:
            answers.append(pod_env.stop(session_id=first.pk))
        real_stop(pod_id)

    monkeypatch.setattr(pod_env.runpod, "stop_pod", stop_pod)
    lifetime = BackendSettings.current().lifetime_cost
    pod_env.clock.advance(minutes=21)
    checks = {check.session_id: check for check in pod_env_checks(pod_env)}
    assert (checks[first.pk].outcome, checks[first.pk].reason) == ("stopped", "idle")
    # The user's stop found the pod already being stopped: it asked RunPod nothing and answered the session.
    assert answers[0].state == State.STOPPING
    assert stops(pod_env) == [first.pod_id]
    first.refresh_from_db()
    assert (first.state, first.stop_reason) == (State.STOPPED, "idle")
    # Its cost joins the totals once.
    assert BackendSettings.current().lifetime_cost == lifetime + first.estimated_cost
    # The retry schedule finds nothing left to do, and the other pod is untouched.
    assert pod_env.verify(first).state == State.STOPPED
    assert stops(pod_env) == [first.pod_id] and state(second) == State.READY


def test_two_workers_retrying_one_stop_at_once_call_runpod_once(pod_env, two_pods, monkeypatch):
    """The retry schedule runs on two workers at the same moment: the second finds the try taken."""
    first, second = two_pods
    pod_env.runpod.fail("stop", kind="transport")
    assert pod_env.stop(session_id=first.pk).state == State.STOPPING
    first.refresh_from_db()
    pod_env.clock.now = first.next_check_at
    others = []
    real_get = pod_env.runpod.get_pod

    def get_pod(pod_id):
        if not others:
            others.append(pod_env.verify(first))
        return real_get(pod_id)

    monkeypatch.setattr(pod_env.runpod, "get_pod", get_pod)
    assert pod_env.verify(first).state == State.STOPPED
    assert others[0].state == State.STOPPING
    # The failed try, then the one retry.
    assert stops(pod_env) == [first.pod_id, first.pod_id]
    assert state(second) == State.READY
