"""Which InvokeAI is used follows the pod: starting one switches to remote mode (a new pod was paid for to be
used), the user's stop switches back to local; an automatic stop (idle, budget, longest session, a start that
never got ready) keeps remote mode, so the studio says that no pod runs instead of sending work elsewhere.

And what the backend page and the studio say meanwhile: where the InvokeAI in use is (never the environment's
default when another address is set), and that there is nothing to generate on before anyone tries.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from backends import manager, services, tasks
from backends.models import BackendSettings, PodSession
from backends.runpod import RunPodCapacityError
from backends.services import backend_mode_set, backend_settings_get, backend_settings_update
from gallery_project.errors import Unavailable
from generation.models import CachedModel, GenerationSession, GenerationStep

pytestmark = pytest.mark.django_db

GPU = "NVIDIA GeForce RTX 4090"
Mode = BackendSettings.Mode


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def mode() -> str:
    return BackendSettings.objects.get().backend_mode


@pytest.fixture
def local(pod_env):
    """The fake RunPod and its pods, with the app in local mode."""
    backend_mode_set(mode=Mode.LOCAL)
    return pod_env


def test_starting_a_pod_switches_to_remote_and_stopping_it_back_to_local(local):
    services.connection_record(connected=True, version="6.14.2")
    session = local.start()
    assert mode() == Mode.REMOTE
    # What the local InvokeAI answered says nothing about the pod.
    assert BackendSettings.objects.get().is_connected is False
    with pytest.raises(Unavailable, match="still starting") as caught:
        manager.current_backend_url()
    assert caught.value.code == "pod_starting"

    local.runpod.boot(session.pod_id)
    local.advance(session)
    assert manager.current_backend_url() == local.invokeai.url
    local.stop()
    assert mode() == Mode.LOCAL


@pytest.mark.parametrize("reason", ["idle", "budget", "max_lifetime"])
def test_an_automatic_stop_keeps_remote_mode(local, reason):
    session = local.ready()
    row = backend_settings_get()
    if reason == "idle":
        local.clock.advance(minutes=row.effective_idle_timeout + 1)
    elif reason == "budget":
        BackendSettings.objects.filter(pk=row.pk).update(monthly_budget=Decimal("0.01"))
        local.clock.advance(hours=1)
    else:
        local.clock.advance(hours=row.max_session_hours)
    check = local.idle_check()
    assert (check.outcome, check.reason) == ("stopped", reason)
    assert PodSession.objects.get(pk=session.pk).state == PodSession.State.STOPPED
    assert mode() == Mode.REMOTE
    with pytest.raises(Unavailable, match="No RunPod pod is running"):
        manager.current_backend_url()


def test_a_start_that_never_gets_ready_keeps_remote_mode(local, settings):
    session = local.start()
    local.clock.advance(minutes=settings.RUNPOD_START_TIMEOUT + 1)
    local.advance(session)
    assert PodSession.objects.get(pk=session.pk).state == PodSession.State.FAILED
    assert mode() == Mode.REMOTE


def test_a_start_runpod_refuses_changes_nothing(local):
    local.runpod.no_capacity(GPU)
    with pytest.raises(RunPodCapacityError, match=f"no {GPU} free"):
        local.start()
    assert mode() == Mode.LOCAL
    assert manager.current_backend_url() == backend_settings_get().effective_local_url


def test_the_api_start_and_stop_switch_the_mode(api, app_runpod, fake_invokeai):
    assert api.get("/api/backend/status").json()["mode"] == "local"
    started = api.post("/api/backend/pod/start", {}, format="json")
    assert started.status_code == 202
    status = api.get("/api/backend/status").json()
    assert (status["mode"], status["url"]) == ("remote", "")
    assert "still starting" in status["url_problem"]
    app_runpod.boot(started.json()["pod_id"])
    assert tasks.pod_advance(started.json()["id"]) == "ready"
    assert api.get("/api/backend/status").json()["url"] == fake_invokeai.url
    assert api.post("/api/backend/pod/stop", {}, format="json").status_code == 200
    assert api.get("/api/backend/status").json()["mode"] == "local"


def test_the_pod_panel_says_what_starting_and_stopping_do(owner_client, app_runpod):
    page = owner_client.get("/backend/").content.decode()
    assert 'id="start-pod"' in page
    assert "Starting a pod switches to remote mode: the studio generates on the pod once it is ready." in page
    response = owner_client.post("/backend/pod/start/", {"gpu_type": GPU}, follow=True)
    page = response.content.decode()
    assert "Remote mode is on: the studio generates on the pod once it is ready." in page
    assert "Stopping it switches back to the local InvokeAI." in page
    response = owner_client.post("/backend/pod/stop/", follow=True)
    assert "Back to the local InvokeAI at" in response.content.decode()
    assert mode() == Mode.LOCAL


def test_without_a_key_switching_to_remote_does_not_point_to_the_page_it_is_on(owner_client, settings):
    settings.RUNPOD_API_KEY = ""
    page = owner_client.post("/backend/mode/", {"mode": "remote"}, follow=True).content.decode()
    assert "enter your RunPod API key in the settings, then start a pod" in page
    assert "on the backend page" not in page.split('class="messages"')[1].split("</ul>")[0]


def test_a_changed_local_url_forgets_the_old_answer_and_its_error_names_the_new_one(owner_client, settings):
    settings.INVOKEAI_LOCAL_URL = "http://127.0.0.1:9"
    assert tasks.backend_connection_check() is False
    assert "http://127.0.0.1:9 is not answering" in BackendSettings.objects.get().connection_error

    backend_settings_update(local_backend_url="http://127.0.0.1:10")
    row = BackendSettings.objects.get()
    assert (row.is_connected, row.connection_error) == (False, "")
    assert "<code>http://127.0.0.1:10</code>: checking…" in text(owner_client.get("/backend/"))

    assert tasks.backend_connection_check() is False
    now = text(owner_client.get("/backend/")).split('id="pod-panel"')[1].split("</p>")[0]
    assert "InvokeAI at http://127.0.0.1:10 is not answering" in now
    assert "127.0.0.1:9 " not in now and "INVOKEAI_LOCAL_URL" not in now


def test_without_a_pod_the_studio_api_refuses_before_recording_anything(api, db):
    CachedModel.objects.create(key="k1", hash="h1", name="tiny-sd1", type="main", base="sd-1")
    backend_mode_set(mode=Mode.REMOTE)
    session = api.post("/api/generation/sessions/", {}, format="json").json()["id"]
    body = {"prompt": "a lighthouse", "model_key": "k1", "width": 64, "height": 64}
    refused = api.post(f"/api/generation/sessions/{session}/steps/", body, format="json")
    assert (refused.status_code, refused.json()["code"]) == (503, "no_pod")
    assert not GenerationStep.objects.exists()
    generate = api.post("/api/generate", {"prompt": "a lighthouse", "model": "tiny-sd1"}, format="json")
    assert (generate.status_code, generate.json()["code"]) == (503, "no_pod")
    assert GenerationSession.objects.count() == 1
