"""The backend page's list of backends in real Chromium, at 1440x900 and 390x844: add a second InvokeAI (a fake
one) by its URL, see both with status and queue, disable and remove the added one."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from backends import services, tasks
from backends.models import Backend
from conftest import ARTIFACTS
from testing.fake_invokeai import FakeInvokeAI

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def second():
    server = FakeInvokeAI().start()
    yield server
    server.stop()


def test_add_see_disable_and_remove_a_backend(sized_page, live_server, use_fake_invokeai, second):
    page, size = sized_page, (sized_page.viewport["width"], sized_page.viewport["height"])
    services.connection_check()
    page.goto(f"{live_server.url}/backend/")
    rows = page.locator("#backends-panel tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Local InvokeAI")

    page.locator("#backends-panel input[name=url]").fill("ftp://example.org")
    page.locator("#backends-panel input[name=name]").fill("Studio PC")
    page.locator("#add-backend").click()
    expect(page.locator("#backends-panel .error")).to_contain_text("http")
    assert not Backend.objects.exists()

    page.locator("#backends-panel input[name=url]").fill(second.url)
    page.locator("#add-backend").click()
    expect(page.locator(".messages")).to_contain_text("Studio PC added")
    tasks.backends_check()
    second.clock.advance(0)
    page.reload()
    expect(rows).to_have_count(2)
    added = page.locator(f'#backends-panel tr[data-backend="{second.url}"]')
    expect(added).to_contain_text("Studio PC")
    expect(added).to_contain_text("connected, 6.14.2")
    expect(added).to_contain_text("0 running, 0 waiting")
    expect(rows.first).to_contain_text("in use")
    page.locator("#backends-panel").scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"backends-list-{size[0]}x{size[1]}.png", full_page=True)

    added.get_by_role("button", name="Disable").click()
    expect(page.locator(".messages")).to_contain_text("gets no new steps")
    expect(added).to_contain_text("disabled")
    assert not Backend.objects.get().enabled

    page.once("dialog", lambda dialog: dialog.accept())
    added.get_by_role("button", name="Remove").click()
    expect(page.locator(".messages")).to_contain_text("Backend removed")
    expect(rows).to_have_count(1)
    assert not Backend.objects.exists()
