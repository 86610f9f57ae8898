"""Another account, not staff, in Chromium: its own empty gallery, no Backend in the nav, the backend page
refused, the owner's photo page not found."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conftest import ARTIFACTS
from photos.tests.conftest import upload  # noqa: F401  (the fixture)
from testing.accounts import PASSWORD, other_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_second_account_sees_its_own_gallery_only(page, live_server, upload):  # noqa: F811
    owners = upload("the-owners-photo.jpg")
    other_account("guest")
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Username").type("guest")
    page.get_by_label("Password").type(PASSWORD)
    page.get_by_label("Password").press("Enter")
    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator(".topbar")).to_contain_text("guest")
    expect(page.locator(".nav")).not_to_contain_text("Backend")
    expect(page.locator(f'[data-photo-id="{owners.pk}"]')).to_have_count(0)
    page.screenshot(path=ARTIFACTS / "guest-gallery.png")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=ARTIFACTS / "guest-gallery-phone.png")
    page.set_viewport_size({"width": 1440, "height": 900})

    page.locator("#backend-badge").click()  # no link for them: nothing happens
    expect(page).to_have_url(f"{live_server.url}/")
    response = page.goto(f"{live_server.url}/backend/")
    assert response.status == 403
    expect(page.locator("body")).to_contain_text("Only staff accounts may see or change the backend and its models.")
    page.screenshot(path=ARTIFACTS / "guest-backend-403.png")
    assert page.goto(f"{live_server.url}/photos/{owners.pk}/").status == 404
