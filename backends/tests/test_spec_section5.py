"""The backend endpoints as the spec's API section lists them (section 5.3, quoted in issue 5 and listed in the
README's "Remote GPU on RunPod"): each path and method, with and without the trailing slash, and the fields the
spec names. The spec's text is not in the repository; this is its list, so a change that breaks it shows here.

    GET  /api/backend/status        mode, url, connected, api_version; remote: pod id, state, session start,
                                    current cost, idle minutes and minutes until auto-stop
    POST /api/backend/mode          {"mode": "local" | "remote"}
    POST /api/backend/pod/start     {"gpu_type": ..., "fresh": false} -> 202
    POST /api/backend/pod/stop
    GET  /api/backend/pod-sessions/
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from backends import tasks
from testing.accounts import other_account

pytestmark = pytest.mark.django_db

SPEC_STATUS = {"mode", "url", "connected", "api_version"}
SPEC_POD = {"pod_id", "state", "session_started_at", "current_cost", "idle_minutes", "minutes_until_auto_stop"}
ENDPOINTS = [
    ("get", "/api/backend/status"),
    ("post", "/api/backend/mode"),
    ("post", "/api/backend/pod/start"),
    ("post", "/api/backend/pod/stop"),
    ("get", "/api/backend/pod-sessions/"),
]


def both_spellings(path: str) -> list[str]:
    bare = path.rstrip("/")
    return [bare, f"{bare}/"]


@pytest.mark.parametrize("slash", [False, True])
def test_the_spec_sequence_local_then_remote_with_a_pod_then_local(api, app_runpod, clock, slash):
    def url(path: str) -> str:
        return both_spellings(path)[slash]

    local = api.get(url("/api/backend/status")).json()
    assert set(local) >= SPEC_STATUS and local["mode"] == "local" and local["pod"] is None

    remote = api.post(url("/api/backend/mode"), {"mode": "remote"}, format="json")
    assert remote.status_code == 200 and remote.json()["mode"] == "remote"

    started = api.post(url("/api/backend/pod/start"), {"gpu_type": "", "fresh": False}, format="json")
    assert started.status_code == 202 and started.json()["state"] == "starting"
    app_runpod.boot(started.json()["pod_id"])
    tasks.pod_advance(started.json()["id"])
    clock.advance(minutes=5)

    status = api.get(url("/api/backend/status")).json()
    assert set(status) >= SPEC_STATUS and status["connected"] is True
    assert set(status["pod"]) >= SPEC_POD
    assert (status["pod"]["pod_id"], status["pod"]["state"]) == (started.json()["pod_id"], "ready")
    assert (status["pod"]["idle_minutes"], status["pod"]["minutes_until_auto_stop"]) == (5.0, 25.0)

    history = api.get(url("/api/backend/pod-sessions/")).json()
    assert history["total"] == 1 and history["items"][0]["pod_id"] == started.json()["pod_id"]

    stopped = api.post(url("/api/backend/pod/stop"))
    assert stopped.status_code == 200 and stopped.json()["state"] == "stopped"
    back = api.post(url("/api/backend/mode"), {"mode": "local"}, format="json").json()
    assert back["mode"] == "local"


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p in ENDPOINTS for p in both_spellings(p)])
def test_every_spec_endpoint_needs_a_login_and_writes_need_staff(anon_api, method, path):
    assert getattr(anon_api, method)(path).status_code == 401
    guest = APIClient()
    guest.force_authenticate(other_account())
    answer = getattr(guest, method)(path, {}, format="json")
    # Every account reads whether generating can work now; the rest is the staff's.
    assert answer.status_code == (200 if path.startswith("/api/backend/status") else 403)
