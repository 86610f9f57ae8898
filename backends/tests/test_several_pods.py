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
