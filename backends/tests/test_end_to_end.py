"""The whole remote lifecycle on one machine: the real runpod SDK against the fake RunPod's GraphQL server on
127.0.0.1 (RUNPOD_API_BASE_URL), the pod's proxy URL (RUNPOD_PROXY_URL_TEMPLATE) pointed at an InvokeAI, and
the app's own API and scheduled tasks: start -> ready -> generate -> idle stop.

The InvokeAI is the fake one, and also a real one when INVOKEAI_TEST_URL is set (marker `invokeai`), e.g. the
CPU server of shared/invokeai-peer/setup.sh. Only the idle timer runs on the test's clock; a real InvokeAI
generates in real time.
"""

from __future__ import annotations

import os
import time

import pytest

from backends import manager, signals, tasks
from backends.invokeai import graphs
from backends.models import PodSession
from backends.services import backend_settings_update
from testing.fake_runpod import API_KEY

pytestmark = pytest.mark.django_db

REAL_URL = os.environ.get("INVOKEAI_TEST_URL", "")
# A shared real server may be busy with someone else's work; the idle stop waits for its queue to drain.
DRAIN_TIMEOUT = 300


class InvokeAITarget:
    def __init__(self, url: str, fake=None) -> None:
        self.url = url
        self.fake = fake

    def wait(self, client, batch):
        deadline = time.monotonic() + 300
        while not (progress := client.batch_progress(batch, output_node=graphs.OUTPUT_NODE)).finished:
            assert time.monotonic() < deadline, f"batch not finished: {progress}"
            if self.fake is not None:
                self.fake.clock.advance(0.5)
            else:
                time.sleep(0.25)
        return progress

    def queue_empty(self, client) -> bool:
        queue = client.queue_status()
        return queue.pending + queue.in_progress == 0


@pytest.fixture(params=[pytest.param("fake", id="fake"), pytest.param("real", id="real", marks=pytest.mark.invokeai)])
def invokeai(request):
    if request.param == "fake":
        return InvokeAITarget(request.getfixturevalue("fake_invokeai").url, request.getfixturevalue("fake_invokeai"))
    if not REAL_URL:
        pytest.skip("set INVOKEAI_TEST_URL to run against a real InvokeAI")
    return InvokeAITarget(REAL_URL.rstrip("/"))


def idle_check_until_stopped(invokeai, clock, client) -> str:
    """Let the idle timeout pass with the pod's queue empty, as often as someone else's work gets in the way."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while True:
        while not invokeai.queue_empty(client):
            assert time.monotonic() < deadline, f"the InvokeAI queue at {invokeai.url} never drained"
            time.sleep(1)
        clock.advance(minutes=30)
        outcome = tasks.pods_idle_check()
        if outcome != "busy":
            return outcome


def test_start_ready_generate_idle_stop(api, runpod_server, invokeai, clock, settings):
    settings.RUNPOD_API_KEY = API_KEY
    settings.RUNPOD_PROXY_URL_TEMPLATE = invokeai.url
    settings.INVOKEAI_READ_TIMEOUT = 120
    backend_settings_update(idle_timeout_minutes=30)

    assert api.post("/api/backend/mode", {"mode": "remote"}, format="json").status_code == 200
    started = api.post("/api/backend/pod/start", {}, format="json")
    assert started.status_code == 202, started.json()
    session_id, pod_id = started.json()["id"], started.json()["pod_id"]
    assert [operation for operation, _ in runpod_server.requests] == ["gpu", "gpu", "create"]

    # The minute schedule walks it: the container is not up yet, then it is and InvokeAI answers.
    tasks.pods_advance()
    assert PodSession.objects.get(pk=session_id).progress == "container"
    runpod_server.boot(pod_id)
    clock.advance(seconds=15)
    tasks.pods_advance()
    status = api.get("/api/backend/status").json()
    assert (status["pod"]["state"], status["url"], status["connected"]) == ("ready", invokeai.url, True)
    assert status["api_version"].startswith("6.")

    # Generate through the client the rest of the app gets, as the studio would.
    signals.user_activity.send(sender=None)
    client = manager.invokeai_client()
    assert client.base_url == invokeai.url
    model = next(model for model in client.list_models(model_type="main") if model.name == "tiny-sd1")
    params = graphs.GenerationParameters(model=model.identifier, prompt="a lighthouse", width=64, height=64, steps=2)
    batch = client.enqueue(graphs.build_batch(params))
    try:
        clock.advance(minutes=1)
        check = tasks.pods_idle_check()
        if invokeai.fake is not None:
            assert check == "busy"
        progress = invokeai.wait(client, batch)
    finally:
        client.cancel_batches([batch.batch_id])
    [item] = progress.items
    assert item.status == "completed", item
    assert client.image(item.image_name).startswith(b"\x89PNG")
    signals.images_generated.send(sender=None, count=1)

    # Not stopped early...
    clock.advance(minutes=29)
    assert tasks.pods_idle_check() in ("idle", "busy")
    assert PodSession.objects.get(pk=session_id).state == "ready"
    # ...stopped once idle for the timeout, and the stop verified with RunPod.
    assert idle_check_until_stopped(invokeai, clock, client) == "stopped idle"
    session = PodSession.objects.get(pk=session_id)
    assert (session.state, session.stop_reason, session.images_generated) == ("stopped", "idle", 1)
    assert runpod_server.pods[pod_id].desired_status == "EXITED"
    assert session.estimated_cost > 0
    history = api.get("/api/backend/pod-sessions/").json()["items"][0]
    assert history["cost_per_image"] == history["estimated_cost"]
    status = api.get("/api/backend/status").json()
    assert (status["url"], status["pod"]["state"]) == ("", "stopped")
    assert status["storage"]["stopped_volume_gb"] == 50
