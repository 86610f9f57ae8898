"""The timeline's pieces in real Chromium, on a desktop and a phone: the details panel of the lightbox."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conftest import log_in

from .test_ai_recipe import a1111_png
from .test_details import camera_jpeg

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
VIEWPORTS = [{"width": 1440, "height": 900}, {"width": 390, "height": 844}]


@pytest.fixture(params=VIEWPORTS, ids=["desktop", "phone"])
def sized_page(request, browser, live_server, user, client):
    context = browser.new_context(viewport=request.param)
    log_in(context, live_server, client, user)
    page = context.new_page()
    page.viewport = request.param
    yield page
    context.close()


def test_the_details_panel_shows_camera_place_and_recipe(sized_page, live_server, upload):
    page = sized_page
    width = page.viewport["width"]
    camera = upload("berlin.jpg", camera_jpeg())
    made = upload("castle.png", a1111_png())
    page.goto(f"{live_server.url}/")
    page.locator(f"#grid .tile[data-photo-id='{camera.pk}']").click()
    panel = page.locator("#lightbox .lightbox-info")
    expect(panel.locator("[data-detail=camera]")).to_have_text("Canon EOS R5")
    expect(panel.locator("[data-detail=exposure]")).to_have_text("f/4 · 1/250 s · ISO 200 · 50 mm")
    expect(panel.locator("[data-detail=taken]")).to_contain_text("2023")
    link = panel.get_by_role("link", name="Open map")
    expect(link).to_have_attribute(
        "href", "https://www.openstreetmap.org/?mlat=52.520000&mlon=13.410000#map=15/52.520000/13.410000"
    )
    expect(link).to_have_attribute("target", "_blank")
    page.wait_for_function("() => document.querySelector('#lightbox .lightbox-stage img')?.naturalWidth > 0")
    page.screenshot(path=f"/tmp/gallery-details-camera-{width}.png")

    page.keyboard.press("Escape")
    page.locator(f"#grid .tile[data-photo-id='{made.pk}']").click()
    recipe = page.locator("#lightbox .recipe")
    expect(recipe).to_contain_text("AUTOMATIC1111")
    expect(recipe.locator("[data-detail=prompt]")).to_contain_text("a castle on a hill")
    recipe.scroll_into_view_if_needed()
    expect(recipe.get_by_text("add_detail (0.7), film_grain (1)")).to_be_visible()
    page.screenshot(path=f"/tmp/gallery-details-recipe-{width}.png")
