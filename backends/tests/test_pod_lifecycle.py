"""Starting a pod (refusals, capacity, resume), walking it to ready through the three checks, the start timeout,
and stopping it: retried on transport errors, verified, escalated when RunPod will not stop it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from backends import pods
from backends.models import BackendSettings, PodSession
from backends.runpod import RunPodAuthError, RunPodCapacityError
from backends.services import api_key_clear, backend_settings_get, backend_settings_update
from gallery_project.errors import Conflict
from testing.fake_runpod import NO_INSTANCES

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_sleep")]

State = PodSession.State
GPU = "NVIDIA GeForce RTX 4090"


# --- start ---


def test_start_records_the_session_before_calling_runpod(pod_env, monkeypatch):
    seen = []
    create = pod_env.runpod.create_pod

    def spy(spec):
        seen.append(list(PodSession.objects.values_list("state", "name", "pod_id")))
        return create(spec)

    monkeypatch.setattr(pod_env.runpod, "create_pod", spy)
    session = pod_env.start()
    assert seen == [[("creating", f"photo-studio-{session.pk}", "")]]
    assert (session.state, session.progress, session.pod_id) == (State.STARTING, "runpod", "fakepod0001")
    # RunPod's price until the pod reports its own.
    assert session.cost_per_hour == Decimal("0.69")
    spec = pod_env.runpod.pods[session.pod_id].spec
    assert (spec.name, spec.image) == (session.name, "ghcr.io/invoke-ai/invokeai:latest")
    # InvokeAI's port and the dead-man switch's (backends/tests/test_deadman.py).
    assert spec.ports == "9090/http,9091/http" and "deadman" in spec.docker_args
    assert (spec.volume_in_gb, spec.volume_mount_path) == (50, "/workspace")
    assert spec.env["INVOKEAI_ROOT"] == "/workspace/invokeai"
    assert set(spec.env) == {
        "INVOKEAI_ROOT",
        "DEADMAN_SCRIPT",
        "DEADMAN_TOKEN",
        "DEADMAN_PORT",
        "RUNPOD_DEADMAN_MINUTES",
    }


def test_start_is_refused_without_a_key(pod_env, settings):
    settings.RUNPOD_API_KEY = ""
    api_key_clear()
    with pytest.raises(Conflict, match="No RunPod API key") as caught:
        pod_env.start()
    assert caught.value.code == "runpod_no_key"
    assert not PodSession.objects.exists()
    assert pod_env.runpod.calls == []


def test_start_is_refused_while_a_pod_is_active(pod_env):
    first = pod_env.start()
    with pytest.raises(Conflict, match="A pod is already starting") as caught:
        pod_env.start()
    assert caught.value.details == {"session_id": first.pk, "state": "starting"}
    assert len(pod_env.runpod.pods) == 1


def test_the_budget_refuses_a_start(pod_env):
    backend_settings_update(monthly_budget=Decimal("5.00"))
    PodSession.objects.create(
        pod_id="old1", gpu_type=GPU, state=State.STOPPED, created_at=pod_env.clock.now, estimated_cost=Decimal("5.00")
    )
    with pytest.raises(Conflict, match=r"cost \$5.00, which reaches the \$5.00 budget") as caught:
        pod_env.start()
    assert caught.value.code == "budget_reached"
    assert pod_env.runpod.pods == {}
    # Last month's spending does not count.
    PodSession.objects.update(created_at=pod_env.clock.now.replace(month=2))
    assert pod_env.start().state == State.STARTING


def test_no_capacity_says_so_and_offers_other_gpu_types(pod_env):
    pod_env.runpod.no_capacity(GPU)
    with pytest.raises(RunPodCapacityError) as caught:
        pod_env.start()
    error = caught.value
    assert f"no {GPU} free right now" in error.message
    assert NO_INSTANCES in error.message
    assert {gpu["id"] for gpu in error.details["alternatives"]} == {"NVIDIA RTX A5000", "NVIDIA A40"}
    session = PodSession.objects.get(pk=error.details["session_id"])
    assert (session.state, session.error_code, session.estimated_cost) == (State.FAILED, "capacity", 0)
    assert {gpu["id"] for gpu in backend_settings_get().known_gpu_types} >= {GPU, "NVIDIA A40"}
    # Trying another GPU type works.
    assert pod_env.start(gpu_type="NVIDIA RTX A5000").gpu_type == "NVIDIA RTX A5000"


def test_a_refused_key_fails_the_start(pod_env):
    pod_env.runpod.fail("create", kind="auth")
    with pytest.raises(RunPodAuthError):
        pod_env.start()
    assert PodSession.objects.get().state == State.FAILED


def test_the_next_start_resumes_the_stopped_pod_and_keeps_its_models(pod_env):
    first = pod_env.ready()
    pod_env.stop()
    assert backend_settings_get().stopped_pods == [{"id": first.pod_id, "name": first.name, "volume_in_gb": 50}]
    pod_env.clock.advance(hours=1)
    second = pod_env.start()
    assert (second.pod_id, second.name, second.resumed) == (first.pod_id, first.name, True)
    assert pod_env.runpod.pods[first.pod_id].desired_status == "RUNNING"
    assert len(pod_env.runpod.pods) == 1
    assert backend_settings_get().stopped_pods == []


def test_a_resume_without_gpu_offers_a_new_pod(pod_env):
    first = pod_env.ready()
    pod_env.stop()
    pod_env.runpod.no_capacity(GPU)
    with pytest.raises(RunPodCapacityError, match="Start a new pod instead"):
        pod_env.start()
    pod_env.runpod.full.clear()
    fresh = pod_env.start(fresh=True)
    assert fresh.pod_id != first.pod_id and not fresh.resumed
    # The old pod is still there, stopped, and its disk still billed.
    assert [pod["id"] for pod in backend_settings_get().stopped_pods] == [first.pod_id]


def test_another_gpu_type_creates_a_new_pod(pod_env):
    first = pod_env.ready()
    pod_env.stop()
    second = pod_env.start(gpu_type="NVIDIA A40")
    assert second.pod_id != first.pod_id


# --- readiness ---


def test_the_three_readiness_checks_with_backoff(pod_env):
    session = pod_env.start()
    session = pod_env.advance(session)
    # (2) runtime is null while the image is pulled.
    assert (session.state, session.progress) == (State.STARTING, "container")
    assert session.next_check_at == pod_env.clock.now + pods.BACKOFF[0]
    calls = len(pod_env.runpod.calls)
    assert pod_env.advance(session).attempts == 1
    assert len(pod_env.runpod.calls) == calls, "checked again before the backoff"
    pod_env.runpod.boot(session.pod_id)
    # (3) the proxy answers 502 until InvokeAI listens.
    pod_env.invokeai.fail_requests("/api/v1/app/version", status=502, times=4)
    pod_env.clock.advance(seconds=15)
    session = pod_env.advance(session)
    assert (session.state, session.progress) == (State.STARTING, "invokeai")
    assert "(502)" in session.message
    assert session.next_check_at == pod_env.clock.now + pods.BACKOFF[1]
    pod_env.clock.advance(seconds=30)
    session = pod_env.advance(session)
    assert session.state == State.READY
    assert (session.ready_at, session.message) == (pod_env.clock.now, "InvokeAI 6.14.2 is ready.")
    row = BackendSettings.objects.get()
    assert (row.is_connected, row.api_version) == (True, "6.14.2")


def test_a_pod_not_ready_in_time_is_stopped_and_failed(pod_env, settings):
    settings.RUNPOD_START_TIMEOUT = 20
    session = pod_env.start()
    for _ in range(20):
        pod_env.clock.advance(minutes=1)
        session = pod_env.advance(session)
    assert (session.state, session.stop_reason) == (State.FAILED, "error")
    assert "not ready after 20 minutes (last: pulling the image and starting the container)" in session.message
    assert pod_env.runpod.pods[session.pod_id].desired_status == "EXITED"
    # It ran (and cost) for 20 minutes.
    assert session.estimated_cost == Decimal("0.2300")


def test_a_pod_stopped_outside_while_starting_fails_the_session(pod_env):
    session = pod_env.start()
    pod_env.runpod.stop_pod(session.pod_id)
    assert pod_env.advance(session).state == State.FAILED


def test_a_pod_deleted_outside_while_starting_fails_the_session(pod_env):
    session = pod_env.start()
    pod_env.runpod.terminate_pod(session.pod_id)
    session = pod_env.advance(session)
    assert (session.state, session.message) == (State.FAILED, "The pod no longer exists on RunPod.")
    assert backend_settings_get().stopped_pods == []


def test_runpod_unreachable_while_starting_is_retried(pod_env):
    session = pod_env.start()
    pod_env.runpod.boot(session.pod_id)
    pod_env.runpod.fail("get", kind="transport")
    session = pod_env.advance(session)
    assert (session.state, session.attempts) == (State.STARTING, 1)
    pod_env.clock.advance(seconds=15)
    assert pod_env.advance(session).state == State.READY


# --- stop ---


def test_stop_is_verified(pod_env):
    session = pod_env.ready()
    pod_env.clock.advance(minutes=10)
    session = pod_env.stop()
    assert (session.state, session.stop_reason, session.message) == (State.STOPPED, "user", "Stopped.")
    assert pod_env.runpod.pods[session.pod_id].desired_status == "EXITED"
    assert [call[0] for call in pod_env.runpod.calls[-3:]] == ["get", "stop", "get"]
    assert session.estimated_cost == Decimal("0.1150")
    row = BackendSettings.objects.get()
    assert row.lifetime_cost == Decimal("0.1150")
    assert row.lifetime_usage_hours == pytest.approx(10 / 60)


def test_stop_is_retried_on_transport_errors_until_verified(pod_env):
    session = pod_env.ready()
    pod_env.runpod.fail("stop", kind="transport", times=2)
    session = pod_env.stop()
    # Stopping: no new work goes to it.
    assert (session.state, session.attempts) == (State.STOPPING, 1)
    pod_env.clock.advance(seconds=5)
    assert pod_env.verify(session).attempts == 1, "retried before the backoff"
    pod_env.clock.advance(seconds=10)
    session = pod_env.verify(session)
    assert (session.state, session.attempts) == (State.STOPPING, 2)
    pod_env.clock.advance(seconds=30)
    session = pod_env.verify(session)
    assert session.state == State.STOPPED
    assert "after 3 tries" in session.message
    assert session.alert == ""
    assert pod_env.runpod.pods[session.pod_id].desired_status == "EXITED"


def test_a_pod_that_will_not_stop_raises_an_alert_then_is_terminated(pod_env, caplog):
    backend_settings_update(terminate_if_stop_fails=True)
    session = pod_env.ready()
    pod_env.runpod.stuck(session.pod_id)
    session = pod_env.stop()
    for _ in range(2):
        pod_env.clock.advance(minutes=2)
        session = pod_env.verify(session)
    assert session.state == State.STOPPING
    assert "has not confirmed that pod fakepod0001 stopped after 3 tries" in session.alert
    assert "may still be billing" in session.alert
    assert any(record.levelname == "ERROR" for record in caplog.records)
    for _ in range(2):
        pod_env.clock.advance(minutes=2)
        session = pod_env.verify(session)
    assert "asked RunPod to terminate it" in session.alert
    assert session.pod_id not in pod_env.runpod.pods
    pod_env.clock.advance(minutes=2)
    session = pod_env.verify(session)
    assert (session.state, session.alert) == (State.STOPPED, "")
    assert backend_settings_get().stopped_pods == []


def test_without_terminate_a_stuck_pod_keeps_being_stopped(pod_env):
    session = pod_env.ready()
    pod_env.runpod.stuck(session.pod_id)
    session = pod_env.stop()
    for _ in range(8):
        pod_env.clock.advance(minutes=2)
        session = pod_env.verify(session)
    assert session.state == State.STOPPING and session.alert
    assert session.pod_id in pod_env.runpod.pods
    pod_env.runpod.stuck(session.pod_id, False)
    pod_env.clock.advance(minutes=2)
    assert pod_env.verify(session).state == State.STOPPED


def test_a_stop_without_a_key_becomes_an_alert(pod_env, settings):
    session = pod_env.ready()
    settings.RUNPOD_API_KEY = ""
    session = pods.pod_stop(now=pod_env.clock.now)
    for _ in range(3):
        pod_env.clock.advance(minutes=2)
        session = pods.pod_verify_stop(session_id=session.pk, now=pod_env.clock.now)
    assert "No RunPod API key" in session.alert


def test_stopping_twice_is_harmless(pod_env):
    session = pod_env.ready()
    pod_env.stop()
    with pytest.raises(Conflict, match="No pod is running"):
        pod_env.stop()
    # Asked for by its id, an ended session says so, and nothing more is asked of RunPod.
    with pytest.raises(Conflict, match="already stopped") as refused:
        pods.pod_stop(session_id=session.pk, now=pod_env.clock.now, adapter=pod_env.runpod)
    assert refused.value.code == "pod_not_active"


def test_stop_while_the_create_answer_is_still_out(pod_env):
    pod_env.runpod.lose_answer("create")
    session = pod_env.start()
    assert (session.state, session.pod_id) == (State.CREATING, "")
    session = pod_env.stop()
    assert session.state == State.STOPPING
    pod_env.clock.advance(minutes=1)
    assert pod_env.verify(session).state == State.STOPPING
    pod_env.clock.advance(minutes=1)
    session = pod_env.verify(session)
    # The pod RunPod made is found by its name, and stopped.
    assert (session.state, session.pod_id) == (State.STOPPED, "fakepod0001")
    assert pod_env.runpod.running() == []


def test_terminating_a_stopped_pod_ends_its_storage_charge(pod_env):
    session = pod_env.ready()
    pod_env.stop()
    with pytest.raises(Conflict):
        pods.pod_terminate_stopped(pod_id="someoneelse", adapter=pod_env.runpod)
    pods.pod_terminate_stopped(pod_id=session.pod_id, adapter=pod_env.runpod)
    assert pod_env.runpod.pods == {}
    assert backend_settings_get().stopped_pods == []
