"""The backend page and the studio in real Chromium as the mode follows the pod: start a pod from local mode (the
page switches to remote and says so), the studio says the pod is starting and offers Generate once it is ready,
stopping goes back to local; a changed local URL is the one the page reports on; without a key, switching to
remote asks for one without sending you to the page you are on. At 1440x900 and on a 390x844 phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from backends import tasks
from backends.models import BackendSettings, PodSession
from conftest import ARTIFACTS
from gallery_project.tests.test_browser_pages import open_menu
from generation.models import CachedModel

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = pytest.mark.parametrize(
    "viewport", [{"width": 1440, "height": 900}, {"width": 390, "height": 844}], ids=["desktop", "phone"]
)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"backend-{name}-{page.viewport_size['width']}.png", full_page=True)


def go_to(page, name: str) -> None:
    """Follow a link of the top bar, as a person does (on a phone, through the menu)."""
    open_menu(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def mode_radio(page, value: str):
    return page.locator(f'input[name=mode][value="{value}"]')


@SIZES
def test_starting_a_pod_switches_to_remote_and_stopping_it_back_to_local(
    logged_in_page, live_server, app_runpod, viewport
):
    # A model the studio knows, so that only the missing pod can keep Generate from being offered.
    CachedModel.objects.create(key="k1", hash="h1", name="tiny-sd1", type="main", base="sd-1")
    page = logged_in_page
    page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/backend/")
    expect(mode_radio(page, "local")).to_be_checked()
    expect(page.locator("#pod-panel")).to_contain_text("Starting a pod switches to remote mode")
    page.locator("#start-pod").click()
    expect(page.locator(".messages")).to_contain_text("Remote mode is on: the studio generates on the pod once")
    expect(mode_radio(page, "remote")).to_be_checked()
    expect(page.locator("#backend-badge")).to_contain_text("starting")
    shot(page, "started-from-local")

    go_to(page, "Studio")
    notice = page.locator("#backend-notice")
    expect(notice).to_contain_text("The RunPod pod is still starting")
    expect(page.get_by_role("button", name="Generate")).to_be_disabled()
    shot(page, "studio-pod-starting")

    session = PodSession.objects.get()
    app_runpod.boot(session.pod_id)
    assert tasks.pod_advance(session.pk) == "ready"
    expect(notice).to_be_hidden(timeout=15_000)
    expect(page.get_by_role("button", name="Generate")).to_be_enabled()

    go_to(page, "Backend")
    expect(page.locator("#pod-panel")).to_contain_text("Stopping it switches back to the local InvokeAI.")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#stop-pod").click()
    expect(page.locator(".messages")).to_contain_text("The pod is stopped. Back to the local InvokeAI at")
    expect(mode_radio(page, "local")).to_be_checked()
    expect(page.locator("#backend-badge")).to_contain_text("Local ·")
    shot(page, "stopped-back-to-local")
    assert BackendSettings.objects.get().backend_mode == "local"


@SIZES
def test_a_local_url_set_on_the_page_is_the_one_its_error_names(logged_in_page, live_server, settings, viewport):
    settings.INVOKEAI_LOCAL_URL = "http://127.0.0.1:9"
    settings.RUNPOD_API_KEY = ""
    assert tasks.backend_connection_check() is False
    page = logged_in_page
    page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/backend/")
    now = page.locator("#pod-panel .connection")
    expect(now).to_contain_text("http://127.0.0.1:9 is not answering")

    page.get_by_label("Local InvokeAI URL").fill("http://127.0.0.1:10")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".messages")).to_contain_text("Settings saved.")
    expect(now).to_contain_text("Local InvokeAI at http://127.0.0.1:10: checking…")
    assert tasks.backend_connection_check() is False
    page.reload()
    expect(now).to_contain_text("InvokeAI at http://127.0.0.1:10 is not answering")
    expect(now).not_to_contain_text("127.0.0.1:9 ")
    expect(now).not_to_contain_text("INVOKEAI_LOCAL_URL")
    shot(page, "local-url-error")


@SIZES
def test_without_a_key_remote_mode_asks_for_one_here(logged_in_page, live_server, settings, viewport):
    settings.RUNPOD_API_KEY = ""
    page = logged_in_page
    page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/backend/")
    page.get_by_text("Remote (RunPod)", exact=True).click()
    messages = page.locator(".messages")
    expect(messages).to_contain_text("enter your RunPod API key in the settings, then start a pod")
    expect(messages).not_to_contain_text("backend page")
    expect(page.locator("#pod-panel")).to_contain_text("Enter your RunPod API key in the settings below")
    shot(page, "remote-without-key")
