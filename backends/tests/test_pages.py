"""The backend page, the status badge on every page, and the API key that no page, API answer, admin form or
log line ever contains."""

from __future__ import annotations

import logging
import re

import pytest
from django.urls import get_resolver

from backends import crypto, pods, tasks
from backends.models import PodSession
from backends.services import api_key_set, backend_mode_set, backend_settings_get
from gallery_project.tests.test_login_required import sample_path, walk
from testing.fake_runpod import API_KEY

pytestmark = pytest.mark.django_db

GPU = "NVIDIA GeForce RTX 4090"


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_every_page_has_the_badge_and_the_backend_link(owner_client, settings):
    settings.INVOKEAI_LOCAL_URL = "http://127.0.0.1:9999"
    settings.RUNPOD_API_KEY = ""
    assert "Local · checking…" in text(owner_client.get("/"))
    assert tasks.backend_connection_check() is False
    for path in ("/", "/trash/", "/backend/"):
        page = text(owner_client.get(path))
        assert 'id="backend-badge"' in page, path
        assert "Local · not answering" in page
        assert 'href="/backend/"' in page
    page = text(owner_client.get("/backend/"))
    assert "Local InvokeAI at <code>http://127.0.0.1:9999</code>: not answering (InvokeAI at" in page
    assert "Enter your RunPod API key in the settings below to rent a GPU by the minute." in page
    assert 'id="start-pod"' not in page


def test_the_badge_is_cheap(owner_client, django_assert_max_num_queries):
    # Session, user, then the badge's two reads: nothing from RunPod or InvokeAI.
    with django_assert_max_num_queries(4):
        owner_client.get("/backend/badge/")


def test_remote_without_a_pod(owner_client, runpod_key):
    backend_mode_set(mode="remote")
    page = text(owner_client.get("/backend/"))
    assert "Remote · no pod" in page
    assert "No pod is running: start one below." in page
    assert 'id="start-pod"' in page and "Start a pod" in page


def test_without_a_key_the_page_asks_for_one(owner_client, settings):
    settings.RUNPOD_API_KEY = ""
    backend_mode_set(mode="remote")
    page = text(owner_client.get("/backend/"))
    assert "Enter your RunPod API key in the settings below" in page
    assert 'id="start-pod"' not in page
    assert "Not set." in page


def test_starting_shows_progress_and_polls(owner_client, app_runpod):
    backend_mode_set(mode="remote")
    response = owner_client.post("/backend/pod/start/", {"gpu_type": GPU})
    assert response.status_code == 302
    page = text(owner_client.get("/backend/"))
    assert f"Starting a pod with a {GPU}." in page
    assert '<li class="done">Creating</li>' in page
    assert '<li class="current">Starting<small>Waiting for RunPod to run the pod</small></li>' in page
    assert 'hx-trigger="every 3s"' in page
    assert "RunPod RTX 4090 · starting" in page
    fragment = text(owner_client.get("/backend/", headers={"HX-Request": "true"}))
    assert fragment.strip().startswith('<section id="pod-panel"')
    assert "<html" not in fragment
    badge = text(owner_client.get("/backend/badge/"))
    assert 'hx-trigger="every 5s"' in badge
    # Ready (or stopped): the page reloads once, so its costs and history follow.
    pods.pod_stop()
    assert owner_client.get("/backend/", headers={"HX-Request": "true"})["HX-Refresh"] == "true"


def test_ready_shows_cost_ticking_and_the_idle_countdown(owner_client, app_runpod, clock):
    backend_mode_set(mode="remote")
    owner_client.post("/backend/pod/start/", {"gpu_type": GPU})
    session = PodSession.objects.get()
    app_runpod.boot(session.pod_id)
    tasks.pod_advance(session.pk)
    clock.advance(minutes=12)
    page = text(owner_client.get("/"))
    assert "RunPod RTX 4090 · ready" in page
    assert 'data-cost="0.1380" data-cost-per-hour="0.6900">$0.138<' in page
    assert 'idle stop in <span data-tick-countdown data-seconds="1080">18 min</span>' in page
    backend = text(owner_client.get("/backend/"))
    assert '<li class="current ready">Ready</li>' in backend
    assert "InvokeAI 6.14.2 is ready." in backend
    assert 'hx-trigger="every 3s"' not in backend
    assert 'data-confirm="Stop the pod?' in backend


def test_stop_from_the_page(owner_client, app_runpod):
    backend_mode_set(mode="remote")
    owner_client.post("/backend/pod/start/", {"gpu_type": GPU})
    response = owner_client.post("/backend/pod/stop/", follow=True)
    assert "The pod is stopped." in text(response)
    assert PodSession.objects.get().state == "stopped"
    assert "Resume pod" in text(response)


def test_no_capacity_on_the_page_offers_another_gpu_type(owner_client, app_runpod):
    backend_mode_set(mode="remote")
    app_runpod.no_capacity(GPU)
    page = text(owner_client.post("/backend/pod/start/", {"gpu_type": GPU}, follow=True))
    assert f"no {GPU} free right now" in page
    assert "Try this GPU type" in page
    assert '<option value="NVIDIA RTX A5000">' in page


def test_an_alert_shows_in_the_badge_on_every_page(owner_client, app_runpod):
    owner_client.post("/backend/pod/start/", {"gpu_type": GPU})
    PodSession.objects.update(state="stopping", alert="RunPod has not confirmed that pod x stopped after 3 tries.")
    page = text(owner_client.get("/"))
    assert "Pod may still be billing" in page
    assert "Check RunPod:" in text(owner_client.get("/backend/"))


def test_settings_form(owner_client):
    response = owner_client.post(
        "/backend/settings/",
        {
            "local_backend_url": "http://gpu-box:9090",
            "runpod_gpu_type": "NVIDIA A40",
            "runpod_cloud_type": "SECURE",
            "runpod_image": "ghcr.io/invoke-ai/invokeai:v6.14.2",
            "runpod_volume_in_gb": "80",
            "runpod_volume_mount_path": "/workspace",
            "idle_timeout_minutes": "15",
            "max_session_hours": "4",
            "monthly_budget": "25.00",
        },
    )
    assert response.status_code == 302
    row = backend_settings_get()
    assert (row.local_backend_url, row.runpod_gpu_type, row.idle_timeout_minutes) == (
        "http://gpu-box:9090",
        "NVIDIA A40",
        15,
    )
    assert (row.max_session_hours, str(row.monthly_budget), row.terminate_if_stop_fails) == (4, "25.00", False)


def test_settings_that_cannot_be_sent_to_runpod_are_refused(owner_client):
    response = owner_client.post(
        "/backend/settings/",
        {
            "runpod_gpu_type": 'RTX "4090"',
            "runpod_cloud_type": "SECURE",
            "runpod_image": "img",
            "runpod_volume_in_gb": "50",
            "runpod_volume_mount_path": "/workspace",
            "max_session_hours": "0",
        },
    )
    assert response.status_code == 400
    page = text(response)
    assert "Use only the characters RunPod requests can carry for the GPU type." in page
    assert "Ensure this value is greater than or equal to 1." in page
    assert backend_settings_get().runpod_gpu_type == ""


def test_the_key_form_stores_and_removes(owner_client, settings):
    settings.RUNPOD_API_KEY = ""
    page = text(owner_client.post("/backend/api-key/", {"api_key": API_KEY}, follow=True))
    assert "Set (stored encrypted in the app)." in page
    assert crypto.decrypt(backend_settings_get().runpod_api_key_encrypted) == API_KEY
    page = text(owner_client.post("/backend/api-key/", {"remove": "true"}, follow=True))
    assert "Not set." in page
    assert "does not look like a RunPod API key" in text(
        owner_client.post("/backend/api-key/", {"api_key": "x"}, follow=True)
    )


def test_deleting_a_stopped_pod_from_the_page(owner_client, app_runpod):
    owner_client.post("/backend/pod/start/", {"gpu_type": GPU})
    owner_client.post("/backend/pod/stop/")
    pod_id = PodSession.objects.get().pod_id
    page = text(owner_client.get("/backend/"))
    assert "$10.00/month for 50 GB on stopped pods" in page
    response = owner_client.post(f"/backend/stopped-pods/{pod_id}/terminate/", follow=True)
    assert f"Pod {pod_id} and its volume disk are deleted." in text(response)
    assert app_runpod.pods == {}


# --- the key never leaves ---


def _every_get_path() -> list[str]:
    paths = []
    for name, regex in walk(get_resolver().url_patterns):
        path = sample_path(regex)
        if name not in ("logout",) and "{" not in path:
            paths.append(path)
    return paths


def test_the_api_key_never_appears_in_any_response(
    owner_client, api, app_runpod, use_fake_invokeai, clock, settings, caplog
):
    caplog.set_level(logging.DEBUG)
    settings.RUNPOD_API_KEY = "rpa_ENVIRONMENT0KEY0never0shown"
    api_key_set(api_key=API_KEY)
    ciphertexts = [backend_settings_get().runpod_api_key_encrypted]
    bodies = []
    # Every flow that touches RunPod, through the API and the page, with a failure or two.
    bodies.append(api.post("/api/backend/mode", {"mode": "remote"}, format="json"))
    bodies.append(api.post("/api/backend/pod/start", {}, format="json"))
    app_runpod.boot(PodSession.objects.get().pod_id)
    tasks.pod_advance(PodSession.objects.get().pk)
    app_runpod.fail("stop", kind="auth")
    bodies.append(api.post("/api/backend/pod/stop", format="json"))
    for _ in range(4):
        clock.advance(minutes=2)
        tasks.pods_verify_stopping()
    tasks.pods_reconcile()
    app_runpod.fail("resume", kind="auth")
    bodies.append(owner_client.post("/backend/pod/start/", {"gpu_type": GPU}, follow=True))
    bodies.append(owner_client.post("/backend/api-key/", {"api_key": API_KEY}, follow=True))
    ciphertexts.append(backend_settings_get().runpod_api_key_encrypted)
    # Every page and API view there is, the admin's included.
    for path in _every_get_path():
        bodies.append(owner_client.get(path))
    bodies.append(owner_client.get("/admin/backends/backendsettings/1/change/"))
    bodies.append(owner_client.get(f"/admin/backends/podsession/{PodSession.objects.first().pk}/change/"))
    assert all(response.status_code < 500 for response in bodies)
    assert len(bodies) > 40
    secrets = (API_KEY, settings.RUNPOD_API_KEY, *ciphertexts)
    for response in bodies:
        content = response.content.decode(errors="replace")
        for secret in secrets:
            assert secret not in content, response.request["PATH_INFO"]
    for secret in secrets:
        assert secret not in caplog.text
    # The admin has no field for the key at all, and saving its form keeps the stored key.
    assert "api_key" not in text(owner_client.get("/admin/backends/backendsettings/1/change/"))
    assert PodSession.objects.filter(state="failed", message__contains="refused the API key").exists()


def test_each_of_several_pods_has_its_own_stop(owner_client, app_runpod):
    backend_mode_set(mode="remote")
    owner_client.post("/backend/pod/start/", {"gpu_type": GPU})
    first = PodSession.objects.get()
    second = pods.pod_start(another=True)
    page = text(owner_client.get("/backend/"))
    for session in (first, second):
        assert f'hx-post="/backend/pods/{session.pk}/stop/"' in page
    assert 'id="stop-pod"' not in page

    panel = owner_client.post(f"/backend/pods/{first.pk}/stop/", HTTP_HX_REQUEST="true")
    assert f"Pod {first.pod_id} is stopped." in text(panel)
    assert 'id="stop-pod"' in text(panel)  # one pod left: its own Stop, as ever
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.state, second.state) == ("stopped", "starting")

    again = owner_client.post(f"/backend/pods/{first.pk}/stop/", follow=True)
    assert f"Pod {first.pod_id} is already stopped." in text(again)
