"""The RunPod adapter contract: every test runs on the in-memory fake and on `RunPodSDK` driving the runpod SDK
against the same fake served as GraphQL on 127.0.0.1. A test passing on one and failing on the other means the
fake no longer behaves like the adapter the app really uses."""

from __future__ import annotations

from decimal import Decimal

import pytest

from backends.runpod import (
    PodSpec,
    RunPodAuthError,
    RunPodCapacityError,
    RunPodRefused,
    RunPodSDK,
    RunPodUnreachable,
)
from gallery_project.errors import InvalidInput
from testing.fake_runpod import API_KEY, NO_GPUS_ON_HOST, NO_INSTANCES

GPU = "NVIDIA GeForce RTX 4090"


def spec(**overrides) -> PodSpec:
    values = {
        "name": "photo-studio-1",
        "image": "ghcr.io/invoke-ai/invokeai:v6.14.2",
        "gpu_type": GPU,
        "cloud_type": "SECURE",
        "volume_in_gb": 50,
        "volume_mount_path": "/workspace",
        "env": {"INVOKEAI_ROOT": "/workspace/invokeai"},
    }
    return PodSpec(**(values | overrides))


def test_a_new_pod_runs_before_its_container_does(account):
    fake, adapter = account
    pod_id = adapter.create_pod(spec())
    pod = adapter.get_pod(pod_id)
    assert (pod.id, pod.name, pod.is_running, pod.is_stopped) == (pod_id, "photo-studio-1", True, False)
    # runtime is null while the image is pulled: no ports yet, and no crash reading them.
    assert pod.has_runtime_ports is False
    assert pod.cost_per_hour == Decimal("0.69")
    fake.boot(pod_id)
    assert adapter.get_pod(pod_id).has_runtime_ports is True
    assert [listed.id for listed in adapter.list_pods()] == [pod_id]


def test_stop_resume_terminate(account):
    fake, adapter = account
    pod_id = adapter.create_pod(spec())
    fake.boot(pod_id)
    adapter.stop_pod(pod_id)
    stopped = adapter.get_pod(pod_id)
    # RunPod keeps reporting a stopped pod's old runtime ports; only desiredStatus tells.
    assert (stopped.desired_status, stopped.is_stopped, stopped.has_runtime_ports) == ("EXITED", True, True)
    adapter.resume_pod(pod_id)
    assert adapter.get_pod(pod_id).is_running
    adapter.terminate_pod(pod_id)
    assert adapter.get_pod(pod_id) is None
    assert adapter.list_pods() == []


def test_no_capacity_is_its_own_error_with_runpods_words(account):
    fake, adapter = account
    fake.no_capacity(GPU)
    with pytest.raises(RunPodCapacityError, match="no longer any instances available") as caught:
        adapter.create_pod(spec())
    assert caught.value.details["runpod_message"] == NO_INSTANCES
    assert caught.value.status == 503


def test_resume_without_a_free_gpu_on_the_host_is_a_capacity_error(account):
    fake, adapter = account
    pod_id = adapter.create_pod(spec())
    adapter.stop_pod(pod_id)
    fake.no_capacity(GPU)
    with pytest.raises(RunPodCapacityError) as caught:
        adapter.resume_pod(pod_id)
    assert caught.value.details["runpod_message"] == NO_GPUS_ON_HOST


def test_unknown_gpu_type_is_refused(account):
    _, adapter = account
    with pytest.raises(RunPodRefused, match="no GPU type 'NVIDIA Imaginary 9000'") as caught:
        adapter.create_pod(spec(gpu_type="NVIDIA Imaginary 9000"))
    assert caught.value.code == "runpod_unknown_gpu"


@pytest.mark.parametrize(
    ("kind", "error"),
    [("transport", RunPodUnreachable), ("auth", RunPodAuthError), ("refused", RunPodRefused)],
)
def test_failures_map_to_the_adapters_errors(account, kind, error):
    fake, adapter = account
    pod_id = adapter.create_pod(spec())
    fake.fail("stop", kind=kind)
    with pytest.raises(error):
        adapter.stop_pod(pod_id)
    adapter.stop_pod(pod_id)
    assert adapter.get_pod(pod_id).is_stopped


def test_a_lost_answer_leaves_a_pod_the_caller_does_not_know(account):
    fake, adapter = account
    fake.lose_answer("create")
    with pytest.raises(RunPodUnreachable):
        adapter.create_pod(spec(name="photo-studio-7"))
    assert [pod.name for pod in adapter.list_pods()] == ["photo-studio-7"]


def test_prices_come_from_runpod_per_cloud(account):
    _, adapter = account
    assert adapter.gpu_price(GPU, "SECURE") == Decimal("0.69")
    assert adapter.gpu_price(GPU, "COMMUNITY") == Decimal("0.34")
    # Either cloud may take the pod: the dearer price until the pod reports its own.
    assert adapter.gpu_price(GPU, "ALL") == Decimal("0.69")
    assert adapter.gpu_price("NVIDIA A40", "COMMUNITY") is None
    with pytest.raises(RunPodRefused):
        adapter.gpu_price("NVIDIA Imaginary 9000", "ALL")
    assert {gpu.id for gpu in adapter.gpu_types()} >= {GPU, "NVIDIA A40"}


@pytest.mark.parametrize(
    "unsafe",
    [
        {"name": 'photo-studio-1", imageName: "evil'},
        {"env": {"INVOKEAI_ROOT": '/workspace" } ] }'}},
        {"env": {"bad key": "x"}},
        {"image": "img\nmutation"},
        {"gpu_type": 'RTX "4090"'},
        {"volume_mount_path": "workspace"},
        {"cloud_type": "BOGUS"},
    ],
)
def test_values_that_would_break_the_sdks_graphql_are_refused_before_sending(account, unsafe):
    fake, adapter = account
    with pytest.raises(InvalidInput) as caught:
        adapter.create_pod(spec(**unsafe))
    assert caught.value.code == "runpod_unsafe_value"
    assert fake.pods == {}
    assert fake.requests == []


def test_the_sdk_sends_the_start_command_and_the_watchdog_unchanged(runpod_server):
    from backends.pods import watchdog

    adapter = RunPodSDK(API_KEY)
    pod_id = adapter.create_pod(spec(env=watchdog.pod_env(), ports=watchdog.PORTS, docker_args=watchdog.COMMAND))
    [sent] = runpod_server.create_inputs
    assert sent["dockerArgs"] == watchdog.COMMAND
    assert sent["env"]["DEADMAN_SCRIPT"] == watchdog.script_archive()
    assert sent["ports"] == "9090/http,9091/http"
    assert runpod_server.pods[pod_id].spec.docker_args == watchdog.COMMAND


def test_the_sdk_sends_the_spec_and_the_key_as_a_bearer_header(runpod_server):
    adapter = RunPodSDK(API_KEY)
    adapter.create_pod(spec(env={"INVOKEAI_ROOT": "/workspace/invokeai", "A": "b=c"}))
    [sent] = runpod_server.create_inputs
    assert sent["imageName"] == "ghcr.io/invoke-ai/invokeai:v6.14.2"
    assert sent["gpuTypeId"] == GPU
    assert (sent["cloudType"], sent["ports"], sent["volumeInGb"]) == ("SECURE", "9090/http", "50")
    assert (sent["volumeMountPath"], sent["containerDiskInGb"]) == ("/workspace", "30")
    assert sent["env"] == {"INVOKEAI_ROOT": "/workspace/invokeai", "A": "b=c"}
    assert "dockerArgs" not in sent or not sent["dockerArgs"], "the image's own command"
    # No SSH: the app only talks HTTP through RunPod's proxy.
    assert "startSsh" not in sent
    assert {header for _, header in runpod_server.requests} == {f"Bearer {API_KEY}"}
    assert API_KEY not in repr(adapter)


def test_a_network_volume_replaces_the_pod_volume(runpod_server):
    RunPodSDK(API_KEY).create_pod(spec(network_volume_id="netvol1"))
    [sent] = runpod_server.create_inputs
    assert (sent["networkVolumeId"], sent["volumeInGb"]) == ("netvol1", "0")
    # The SDK asks which data centre holds the volume before deploying.
    assert [operation for operation, _ in runpod_server.requests] == ["gpu", "user", "create"]


def test_a_wrong_key_is_an_auth_error(runpod_server):
    with pytest.raises(RunPodAuthError, match="refused the API key"):
        RunPodSDK("rpa_WRONG").list_pods()


def test_runpod_down_is_unreachable(runpod_server):
    runpod_server.stop()
    with pytest.raises(RunPodUnreachable):
        RunPodSDK(API_KEY).list_pods()
