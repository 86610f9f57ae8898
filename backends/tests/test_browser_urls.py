"""The backend page's InvokeAI URLs in real Chromium: a metadata address is refused next to the field, at both
sizes, and a LAN address written oddly is saved in its normal form."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from backends.services import backend_settings_get
from conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize(("width", "height"), [(1440, 900), (390, 844)])
def test_a_metadata_url_is_refused_and_a_lan_url_saved(logged_in_page, live_server, _loopback_only, width, height):
    page = logged_in_page
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{live_server.url}/backend/")
    field = page.get_by_label("Local InvokeAI URL")
    field.fill("http://0xa9fea9fe/latest/meta-data/")
    field.press("Enter")
    error = page.locator("label", has=page.get_by_label("Local InvokeAI URL")).locator(".error")
    expect(error).to_contain_text("0xa9fea9fe (that is 169.254.169.254) is a link-local address")
    error.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"backend-url-refused-{width}.png")
    assert backend_settings_get().local_backend_url == ""

    field = page.get_by_label("Local InvokeAI URL")
    field.fill("HTTP://GPU-Box:9090/")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator(".messages")).to_contain_text("Settings saved.")
    expect(page.get_by_label("Local InvokeAI URL")).to_have_value("http://gpu-box:9090")
    assert backend_settings_get().local_backend_url == "http://gpu-box:9090"
    # The page fetched nothing from either address: only the live server on loopback was contacted.
    assert _loopback_only == []
