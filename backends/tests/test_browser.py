"""The backend page in real Chromium, on the fake RunPod: switch to remote, start a pod and watch it go from
starting to ready without reloading, see its cost tick in the top bar, stop it after confirming."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from backends import pods, tasks
from backends.models import PodSession
from backends.services import backend_mode_set
from conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shot(page, name: str, *, element: str = "", full_page: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    if element:
        page.locator(element).screenshot(path=ARTIFACTS / f"backend-{name}.png")
    else:
        page.screenshot(path=ARTIFACTS / f"backend-{name}.png", full_page=full_page)


def test_start_watch_ready_and_stop(logged_in_page, live_server, app_runpod):
    page = logged_in_page
    page.goto(f"{live_server.url}/backend/")
    expect(page.locator("#backend-badge")).to_contain_text("Local ·")
    shot(page, "local")

    page.get_by_text("Remote (RunPod)", exact=True).click()
    expect(page.locator(".messages")).to_contain_text("no RunPod pod is running yet: start one to generate")
    expect(page.locator("#backend-badge")).to_contain_text("Remote · no pod")

    page.locator("#start-pod").click()
    expect(page.locator(".steps .current")).to_contain_text("Starting")
    expect(page.locator("#backend-badge")).to_contain_text("RunPod RTX 4090 · starting")
    shot(page, "starting")

    session = PodSession.objects.get()
    app_runpod.boot(session.pod_id)
    assert tasks.pod_advance(session.pk) == "ready"
    # The panel polls while the pod starts: it turns ready without a reload.
    expect(page.locator(".pod-message")).to_have_text("InvokeAI 6.14.2 is ready.", timeout=10_000)
    expect(page.locator("#backend-badge")).to_contain_text("ready", timeout=10_000)
    cost = page.locator("#pod-panel [data-tick-cost]")
    first = cost.text_content()
    expect(cost).not_to_have_text(first, timeout=5_000)
    expect(page.locator("#backend-badge [data-tick-countdown]")).to_have_text(re.compile(r"^\d+:\d\d$"))
    shot(page, "ready")
    page.goto(f"{live_server.url}/")
    shot(page, "badge", element=".topbar")

    page.goto(f"{live_server.url}/backend/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#stop-pod").click()
    expect(page.locator(".messages")).to_contain_text("The pod is stopped. Back to the local InvokeAI")
    expect(page.locator("#backend-badge")).to_contain_text("Local ·")
    expect(page.locator("table.sessions:not(.backends)")).to_contain_text("Stopped by you")
    shot(page, "stopped", full_page=True)
    assert app_runpod.running() == []


def test_dismissing_the_confirmation_keeps_the_pod(logged_in_page, live_server, app_runpod):
    backend_mode_set(mode="remote")
    page = logged_in_page
    page.goto(f"{live_server.url}/backend/")
    page.locator("#start-pod").click()
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator("#stop-pod").click()
    expect(page.locator("#stop-pod")).to_be_visible()
    assert PodSession.objects.get().state == "starting"


def test_stop_the_first_of_two_pods_by_its_own_button(sized_page, live_server, app_runpod):
    started = [pods.pod_start(), pods.pod_start(another=True)]
    for session in started:
        app_runpod.boot(session.pod_id)
        assert tasks.pod_advance(session.pk) == "ready"
    first, second = started
    page, size = sized_page, (sized_page.viewport["width"], sized_page.viewport["height"])
    page.goto(f"{live_server.url}/backend/")
    rows = page.locator(".pod-list li")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(first.pod_id)
    expect(rows.nth(1)).to_contain_text(second.pod_id)
    shot(page, f"two-pods-{size[0]}x{size[1]}", full_page=True)

    # Dismissed, nothing is stopped.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator(f'[data-stop-pod="{first.pk}"]').click()
    expect(rows).to_have_count(2)
    assert PodSession.objects.get(pk=first.pk).state == "ready"

    dialogs: list[str] = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.locator(f'[data-stop-pod="{first.pk}"]').click()
    expect(page.locator("#pod-panel .notice")).to_have_text(f"Pod {first.pod_id} is stopped.")
    assert len(dialogs) == 1 and first.pod_id in dialogs[0]
    # One pod left: the panel shows it, ready, with its own Stop.
    expect(rows).to_have_count(0)
    expect(page.locator("#pod-panel")).to_contain_text(second.pod_id)
    expect(page.locator(".pod-message")).to_have_text("InvokeAI 6.14.2 is ready.")
    expect(page.locator("#stop-pod")).to_be_visible()
    shot(page, f"one-of-two-stopped-{size[0]}x{size[1]}", full_page=True)
    # The history below says so too, without a reload.
    states = page.locator("table.sessions:not(.backends) tbody .pill")
    expect(states).to_have_text(["Ready", "Stopped"])
    assert PodSession.objects.get(pk=first.pk).state == "stopped"
    assert PodSession.objects.get(pk=second.pk).state == "ready"
    assert [pod.id for pod in app_runpod.running()] == [second.pod_id]
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
