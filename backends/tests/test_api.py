"""The backend API: status, mode, pod start and stop, the session history; errors in the project's shape."""

from __future__ import annotations

from decimal import Decimal

import pytest

from backends import tasks
from backends.models import PodSession
from backends.services import backend_settings_update
from testing.fake_runpod import NO_INSTANCES

pytestmark = pytest.mark.django_db

GPU = "NVIDIA GeForce RTX 4090"


def test_status_in_local_mode(api, settings):
    settings.INVOKEAI_LOCAL_URL = "http://127.0.0.1:9999"
    body = api.get("/api/backend/status").json()
    assert (body["mode"], body["url"], body["connected"], body["pod"]) == (
        "local",
        "http://127.0.0.1:9999",
        False,
        None,
    )
    assert body["api_key"] == {"is_set": False, "source": "", "problem": ""}
    assert (body["monthly_budget"], body["spent_this_month"]) == ("50.00", "0.0000")
    assert api.get("/api/backend/status/").status_code == 200


def test_switching_to_remote_without_a_pod_says_how_to_start_one(api):
    response = api.post("/api/backend/mode", {"mode": "remote"}, format="json")
    body = response.json()
    assert response.status_code == 200
    assert body["message"] == (
        "Remote mode is on. To rent a GPU, enter your RunPod API key in the settings, then start a pod."
    )
    assert (body["mode"], body["url"]) == ("remote", "")
    assert "start one on the backend page" in body["url_problem"]
    bad = api.post("/api/backend/mode/", {"mode": "cloud"}, format="json")
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid")


def test_start_without_a_key_is_refused_clearly(api, settings):
    settings.RUNPOD_API_KEY = ""
    response = api.post("/api/backend/pod/start", {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "runpod_no_key"
    assert "enter one on the backend page" in response.json()["message"]


def test_start_then_status_then_stop(api, app_runpod, fake_invokeai, clock):
    api.post("/api/backend/mode", {"mode": "remote"}, format="json")
    response = api.post("/api/backend/pod/start/", {}, format="json")
    assert response.status_code == 202
    started = response.json()
    assert (started["state"], started["gpu_type"], started["cost_per_hour"]) == ("starting", GPU, "0.6900")

    app_runpod.boot(started["pod_id"])
    assert tasks.pod_advance(started["id"]) == "ready"
    clock.advance(minutes=10)
    status = api.get("/api/backend/status").json()
    pod = status["pod"]
    assert (pod["state"], pod["pod_id"], pod["session_id"]) == ("ready", started["pod_id"], started["id"])
    # The pod's proxy URL (RUNPOD_PROXY_URL_TEMPLATE points at the fake InvokeAI here).
    assert status["url"] == fake_invokeai.url
    assert pod["current_cost"] == "0.1150"
    assert (pod["idle_minutes"], pod["minutes_until_auto_stop"], pod["auto_stop_reason"]) == (10.0, 20.0, "idle")
    assert status["connected"] is True

    conflict = api.post("/api/backend/pod/start", {}, format="json")
    assert (conflict.status_code, conflict.json()["code"]) == (409, "pod_active")

    stopped = api.post("/api/backend/pod/stop", format="json")
    assert stopped.status_code == 200
    assert (stopped.json()["state"], stopped.json()["stop_reason"]) == ("stopped", "user")
    nothing = api.post("/api/backend/pod/stop", format="json")
    assert (nothing.status_code, nothing.json()["code"]) == (409, "no_pod")


def test_stop_not_yet_confirmed_answers_202(api, app_runpod):
    session = api.post("/api/backend/pod/start", {}, format="json").json()
    app_runpod.fail("stop", kind="transport")
    response = api.post("/api/backend/pod/stop", format="json")
    assert (response.status_code, response.json()["state"]) == (202, "stopping")
    assert PodSession.objects.get(pk=session["id"]).state == "stopping"


def test_no_capacity_answers_503_with_other_gpu_types(api, app_runpod):
    app_runpod.no_capacity(GPU)
    response = api.post("/api/backend/pod/start", {"gpu_type": GPU}, format="json")
    body = response.json()
    assert (response.status_code, body["code"]) == (503, "runpod_no_capacity")
    assert NO_INSTANCES in body["message"]
    assert [gpu["id"] for gpu in body["details"]["alternatives"]] == ["NVIDIA RTX A5000", "NVIDIA A40"]
    retry = api.post("/api/backend/pod/start", {"gpu_type": "NVIDIA RTX A5000"}, format="json")
    assert retry.status_code == 202


def test_budget_refusal(api, app_runpod):
    backend_settings_update(monthly_budget=Decimal("0"))
    response = api.post("/api/backend/pod/start", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "budget_reached")


def test_session_history_pages_with_costs(api, app_runpod, clock):
    for _ in range(3):
        api.post("/api/backend/pod/start", {}, format="json")
        clock.advance(hours=1)
        api.post("/api/backend/pod/stop", format="json")
    body = api.get("/api/backend/pod-sessions/?limit=2").json()
    assert (body["total"], body["limit"], body["offset"], len(body["items"])) == (3, 2, 0, 2)
    newest = body["items"][0]
    assert (newest["state"], newest["estimated_cost"], newest["resumed"]) == ("stopped", "0.6900", True)
    assert api.get("/api/backend/pod-sessions?offset=2").json()["items"][0]["resumed"] is False


def test_the_api_needs_a_login(anon_api):
    for path in ("/api/backend/status", "/api/backend/pod-sessions/"):
        assert anon_api.get(path).status_code == 401
    for path in ("/api/backend/mode", "/api/backend/pod/start", "/api/backend/pod/stop"):
        assert anon_api.post(path).status_code == 401


def test_a_gpu_type_that_cannot_be_sent_is_refused(api, app_runpod):
    response = api.post("/api/backend/pod/start", {"gpu_type": 'RTX "4090"'}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_gpu_type")
    assert app_runpod.calls == []


def test_one_pod_of_two_is_stopped_by_its_session_id(api, app_runpod):
    first = api.post("/api/backend/pod/start", {}, format="json").json()
    second = api.post("/api/backend/pod/start", {"another": True}, format="json").json()
    for pod in (first, second):
        app_runpod.boot(pod["pod_id"])
        assert tasks.pod_advance(pod["id"]) == "ready"

    stopped = api.post(f"/api/backend/pod-sessions/{first['id']}/stop/", format="json")
    assert stopped.status_code == 200
    assert (stopped.json()["id"], stopped.json()["state"]) == (first["id"], "stopped")
    assert PodSession.objects.get(pk=second["id"]).state == "ready"
    assert [pod.id for pod in app_runpod.running()] == [second["pod_id"]]

    again = api.post(f"/api/backend/pod-sessions/{first['id']}/stop", format="json")
    assert (again.status_code, again.json()["code"]) == (409, "pod_not_active")
    assert "already stopped" in again.json()["message"]
    missing = api.post("/api/backend/pod-sessions/999999/stop/", format="json")
    assert (missing.status_code, missing.json()["code"]) == (404, "pod_not_found")
    # The old route still stops the latest.
    latest = api.post("/api/backend/pod/stop", format="json")
    assert (latest.status_code, latest.json()["id"]) == (200, second["id"])


def test_the_per_pod_stop_is_in_the_schema(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/backend/pod-sessions/{session_id}/stop/"]["post"]
    assert {"200", "202", "404", "409"} <= set(operation["responses"])


def test_the_per_pod_stop_is_for_staff(anon_api):
    assert anon_api.post("/api/backend/pod-sessions/1/stop/", format="json").status_code in (401, 403)
