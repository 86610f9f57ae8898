"""The pod's dead-man switch: the watchdog script against the fake RunPod on loopback, on a fake clock; the pod
it is started in; the app's pings."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from backends.pods import deadman, watchdog
from backends.runpod import PodSpec, check_spec
from gallery_project.errors import InvalidInput
from testing.fake_runpod import API_KEY, FakeRunPod


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += minutes * 60


@pytest.fixture
def runpod():
    server = FakeRunPod().serve()
    yield server
    server.stop()


@pytest.fixture
def pod(runpod):
    return runpod.add_pod("photo-studio-1")


def make_watchdog(runpod, pod, clock, *, minutes=20, key=API_KEY):
    return deadman.Watchdog(
        minutes=minutes,
        token="the-token",
        clock=clock,
        stop=lambda: deadman.stop_pod(api_base_url=runpod.url, api_key=key, pod_id=pod.id, timeout=5),
    )


def test_the_pod_stops_itself_once_the_app_is_silent_for_the_limit(runpod, pod):
    clock = Clock()
    dog = make_watchdog(runpod, pod, clock)
    clock.advance(19.9)
    assert dog.check() is False and pod.desired_status == "RUNNING", "a pod never pinged gets the limit too"
    assert dog.ping("the-token")
    clock.advance(19.9)
    assert dog.check() is False and pod.desired_status == "RUNNING"
    clock.advance(0.1)
    assert dog.check() is True
    assert pod.desired_status == "EXITED"
    assert runpod.requests[-1] == ("stop", f"Bearer {API_KEY}")


def test_a_wrong_token_does_not_keep_the_pod_alive(runpod, pod):
    clock = Clock()
    dog = make_watchdog(runpod, pod, clock)
    clock.advance(15)
    assert not dog.ping("guess") and not dog.ping("")
    clock.advance(5)
    assert dog.check() and pod.desired_status == "EXITED"


def test_a_failed_stop_is_tried_again_every_minute(runpod, pod):
    clock = Clock()
    dog = make_watchdog(runpod, pod, clock)
    runpod.fail("stop", times=2)
    clock.advance(20)
    assert dog.check() is False and pod.desired_status == "RUNNING"
    clock.advance(0.5)
    assert dog.check() is False
    assert [op for op in runpod.requests if op[0] == "stop"] == [("stop", f"Bearer {API_KEY}")], "not hammered"
    clock.advance(0.5)
    assert dog.check() is False, "second failure"
    clock.advance(1)
    assert dog.check() is True and pod.desired_status == "EXITED"


def test_a_refused_key_is_a_failure_not_a_stop(runpod, pod):
    clock = Clock()
    dog = make_watchdog(runpod, pod, clock, key="not-the-key")
    clock.advance(20)
    assert dog.check() is False and dog.stops_requested == 0
    assert pod.desired_status == "RUNNING"


def test_a_stuck_pod_is_asked_again(runpod, pod):
    """RunPod accepted the stop but the pod runs on: the container is still alive to ask again."""
    clock = Clock()
    dog = make_watchdog(runpod, pod, clock)
    runpod.stuck(pod.id)
    clock.advance(20)
    assert dog.check()
    clock.advance(1)
    dog.check()
    assert dog.stops_requested == 2


def post(url: str, token: str | None) -> int:
    request = urllib.request.Request(url, method="POST", data=b"")  # noqa: S310 - a loopback http URL
    if token is not None:
        request.add_header(deadman.TOKEN_HEADER, token)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_ping_endpoint(runpod, pod):
    clock = Clock()
    dog = make_watchdog(runpod, pod, clock)
    server = deadman.serve(dog, host="127.0.0.1", port=0)
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        clock.advance(10)
        assert post(f"{url}/ping", "wrong") == 403
        assert post(f"{url}/ping", None) == 403
        assert post(f"{url}/other", "the-token") == 404
        assert dog.last_ping == 1000.0
        assert post(f"{url}/ping", "the-token") == 204
        assert dog.last_ping == clock.now
    finally:
        server.shutdown()
        server.server_close()


def test_the_script_runs_as_the_pod_runs_it(runpod, pod, tmp_path, settings):
    """The archive from the pod's environment, run by a plain python3 with only the variables RunPod injects
    and ours: with a limit of a few seconds and no ping, it stops its own pod."""
    settings.RUNPOD_DEADMAN_MINUTES = 20
    env = watchdog.pod_env()
    archive = tmp_path / "deadman.pyz"
    archive.write_bytes(base64.b64decode(env["DEADMAN_SCRIPT"]))
    with zipfile.ZipFile(io.BytesIO(archive.read_bytes())) as opened:
        assert opened.read("__main__.py").decode() == Path(deadman.__file__).read_text()
    process_env = {
        "PATH": os.environ["PATH"],
        **env,
        "RUNPOD_DEADMAN_MINUTES": "0.03",  # 1.8 s
        "DEADMAN_HOST": "127.0.0.1",
        "DEADMAN_PORT": "0",
        "RUNPOD_POD_ID": pod.id,
        "RUNPOD_API_KEY": API_KEY,
        "RUNPOD_API_BASE_URL": runpod.url,
    }
    process = subprocess.Popen([sys.executable, "-I", str(archive)], env=process_env, stderr=subprocess.PIPE)  # noqa: S603
    try:
        deadline = time.monotonic() + 30
        while pod.desired_status == "RUNNING" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pod.desired_status == "EXITED"
    finally:
        process.kill()
        log = process.communicate()[1].decode()
    assert "asked RunPod to stop this pod" in log


def test_without_its_pod_id_or_key_the_script_says_so(tmp_path):
    archive = tmp_path / "deadman.pyz"
    archive.write_bytes(base64.b64decode(watchdog.script_archive()))
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-I", str(archive)], env={"PATH": os.environ["PATH"]}, capture_output=True, timeout=30
    )
    assert b"cannot stop itself" in done.stderr


# --- The pod the app starts, and the app's pings ---


def test_pods_are_created_with_the_watchdog(settings):
    from backends.pods.start import _pod_spec

    spec = _pod_spec(
        type(
            "Session",
            (),
            {
                "name": "photo-studio-7",
                "image": "ghcr.io/invoke-ai/invokeai:v6.14.2",
                "gpu_type": "NVIDIA A40",
                "cloud_type": "SECURE",
                "volume_in_gb": 50,
                "network_volume_id": "",
            },
        )(),
        type("Row", (), {"runpod_volume_mount_path": "/workspace"})(),
    )
    check_spec(spec)
    assert spec.ports == "9090/http,9091/http"
    assert "python3 /tmp/deadman.pyz &" in spec.docker_args and "exec invokeai-web" in spec.docker_args
    assert spec.env["RUNPOD_DEADMAN_MINUTES"] == "20" and spec.env["DEADMAN_TOKEN"] == watchdog.token()
    assert "RUNPOD_API_KEY" not in spec.env, "the pod's own key is RunPod's to inject, never the app's"


def test_a_start_command_with_a_double_quote_is_refused():
    with pytest.raises(InvalidInput):
        check_spec(
            PodSpec(
                name="photo-studio-1",
                image="img",
                gpu_type="NVIDIA A40",
                cloud_type="SECURE",
                volume_in_gb=1,
                volume_mount_path="/workspace",
                docker_args='bash -c "x"',
            )
        )


@pytest.mark.django_db
def test_the_app_pings_starting_and_ready_pods_only(settings, runpod, pod):
    from backends.models import PodSession

    clock = Clock()
    dog = deadman.Watchdog(minutes=20, token=watchdog.token(), clock=clock, stop=lambda: None)
    server = deadman.serve(dog, host="127.0.0.1", port=0)
    settings.RUNPOD_PROXY_URL_TEMPLATE = f"http://127.0.0.1:{server.server_address[1]}/{{pod_id}}"
    try:
        for state, pod_id in (("ready", "podready1"), ("starting", "podstart1"), ("stopped", "podstop1")):
            PodSession.objects.create(state=state, pod_id=pod_id, gpu_type="NVIDIA A40")
        clock.advance(5)
        assert sorted(watchdog.pods_ping()) == ["podready1", "podstart1"]
        assert dog.last_ping == clock.now
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.django_db
def test_a_ping_that_fails_is_logged_not_raised(settings, caplog):
    from backends.models import PodSession

    settings.RUNPOD_PROXY_URL_TEMPLATE = "http://127.0.0.1:9/{pod_id}"  # nothing listens on the discard port
    PodSession.objects.create(state="ready", pod_id="podready1", gpu_type="NVIDIA A40")
    assert watchdog.pods_ping() == []
    assert "Could not ping the watchdog of pod podready1" in caplog.text
