"""The timeline's pieces in real Chromium: the details panel (desktop and phone), favourites, bulk actions on
a Shift-click range and its ZIP, the jump list and the date scrubber."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from photos.models import Photo

from .images import image_bytes
from .test_ai_recipe import a1111_png
from .test_details import camera_jpeg

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def downloaded_zip(page, tmp_path) -> list[str]:
    """The names in the ZIP the selection bar's Download ZIP saves."""
    with page.expect_download() as download_info:
        page.locator("#selection-bar [data-action=bulk-download]").click()
    saved = tmp_path / "photos.zip"
    download_info.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive_file:
        return archive_file.namelist()


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


def test_favourites_bulk_actions_and_a_zip_of_a_range(logged_in_page, live_server, upload, tmp_path):
    page = logged_in_page
    photos = [upload(f"p{i}.jpg", image_bytes(color=(40 * i, 100, 100))) for i in range(6)]
    newest_first = list(reversed(photos))
    page.goto(f"{live_server.url}/")
    tiles = page.locator("#grid .tile")

    # A star on the tile, and the same photo's star in the lightbox agrees.
    first = tiles.nth(0)
    first.hover()
    with page.expect_response(lambda response: response.request.method == "PATCH"):
        first.locator("[data-action=favorite]").click()
    expect(first.locator("[data-action=favorite]")).to_have_attribute("aria-pressed", "true")
    first.locator(".photo-link").click()
    star = page.locator("#lightbox .lightbox-info [data-action=favorite]")
    expect(star).to_have_attribute("aria-pressed", "true")
    with page.expect_response(lambda response: response.request.method == "PATCH"):
        star.click()
    expect(star).to_have_attribute("aria-pressed", "false")
    expect(first.locator("[data-action=favorite]")).to_have_attribute("aria-pressed", "false")
    page.keyboard.press("Escape")

    # Select a range with Shift-click, favourite it, and download it as one ZIP.
    page.get_by_role("button", name="Select").click()
    tiles.nth(1).click()
    tiles.nth(3).click(modifiers=["Shift"])
    expect(page.locator("[data-selection-count]")).to_have_text("3 photos selected")
    page.screenshot(path="/tmp/gallery-selection-1280.png")
    page.locator("#selection-bar [data-action=bulk-favorite]").click()
    expect(page.locator("#grid .tile [aria-pressed=true]")).to_have_count(3)
    assert {p.pk for p in Photo.objects.filter(is_favorite=True)} == {p.pk for p in newest_first[1:4]}

    page.get_by_role("button", name="Select").click()
    tiles.nth(1).click()
    tiles.nth(3).click(modifiers=["Shift"])
    assert downloaded_zip(page, tmp_path) == [f"{p.filename}" for p in photos[2:5]]  # oldest taken first

    # Trash a range; Undo brings it back.
    page.get_by_role("button", name="Select").click()
    tiles.nth(0).click()
    tiles.nth(1).click(modifiers=["Shift"])
    page.locator("#selection-bar [data-action=bulk-trash]").click()
    expect(tiles).to_have_count(4)
    expect(page.locator("#photo-count")).to_have_text("4 photos")
    assert Photo.objects.filter(deleted_at__isnull=False).count() == 2
    page.locator(".toast").get_by_role("button", name="Undo").click()
    expect(tiles).to_have_count(6)
    assert Photo.objects.filter(deleted_at__isnull=False).count() == 0


def test_jump_to_a_year_and_select_a_day(sized_page, live_server, upload):
    page = sized_page
    width = page.viewport["width"]
    dated = {}
    for year in (2017, 2019, 2023):
        for day in (3, 4):
            photo = upload(f"y{year}-{day}.jpg", image_bytes(color=(year % 256, 30 * day, 90)))
            Photo.objects.filter(pk=photo.pk).update(taken_at=datetime(year, 8, day, 12, tzinfo=UTC))
            dated[(year, day)] = photo
    page.goto(f"{live_server.url}/")
    expect(page.locator(".day-header").first).to_contain_text("August 4, 2023")
    page.get_by_text("Jump to…").click()
    year_link = page.locator(".jump-list a.year", has_text="2019")
    expect(year_link).to_be_visible()
    page.screenshot(path=f"/tmp/gallery-jump-list-{width}.png")
    year_link.click()
    page.wait_for_url("**from=2019-08-31")
    expect(page.locator("#grid .tile").first).to_have_attribute("data-photo-id", str(dated[(2019, 4)].pk))
    expect(page.locator(".day-header").first).to_contain_text("August 4, 2019")
    # Select a whole day from its header.
    page.locator(".day-header", has_text="August 3, 2019").get_by_role("button", name="Choose day").click()
    expect(page.locator("[data-selection-count]")).to_have_text("1 photo selected")
    expect(page.locator(f"#grid .tile.selected[data-photo-id='{dated[(2019, 3)].pk}']")).to_have_count(1)
    page.screenshot(path=f"/tmp/gallery-timeline-{width}.png")


def test_scrub_to_a_year_open_the_details_and_zip_a_shift_click_range(sized_page, live_server, upload, tmp_path):
    """The issue's walk through the timeline: the scrubber jumps to a year without the pages between, the
    details panel opens on the photo found there, and a Shift-click range of it downloads as one ZIP."""
    page = sized_page
    width = page.viewport["width"]
    dated = {}
    for year in (2017, 2019, 2023):
        for day in (3, 4):
            photo = upload(f"s{year}-{day}.jpg", camera_jpeg() if (year, day) == (2019, 4) else image_bytes())
            Photo.objects.filter(pk=photo.pk).update(taken_at=datetime(year, 8, day, 12, tzinfo=UTC))
            dated[(year, day)] = photo
    page.goto(f"{live_server.url}/")
    scrubber = page.locator("nav.scrubber")
    expect(scrubber.locator(".scrubber-year")).to_have_count(3)
    expect(scrubber.locator(".scrubber-month.current")).to_have_attribute("data-month", "2023-08")
    # Pointing at a year's part of the scrubber names its month; a click there starts the grid at it.
    month = scrubber.locator(".scrubber-month[data-month='2019-08']")
    month.hover()
    expect(scrubber.locator(".scrubber-label")).to_have_text("August 2019")
    page.screenshot(path=f"/tmp/gallery2-scrubber-{width}.png")
    month.click()
    page.wait_for_url("**from=2019-08-31")
    tiles = page.locator("#grid .tile")
    expect(tiles.first).to_have_attribute("data-photo-id", str(dated[(2019, 4)].pk))
    expect(page.locator("nav.scrubber .scrubber-month.current")).to_have_attribute("data-month", "2019-08")

    # A drag from the top of the scrubber to its bottom ends at the oldest month.
    top, bottom = scrubber.locator(".scrubber-month").first.bounding_box(), scrubber.bounding_box()
    page.mouse.move(top["x"] + top["width"] / 2, top["y"] + 2)
    page.mouse.down()
    page.mouse.move(top["x"] + top["width"] / 2, bottom["y"] + bottom["height"] / 2, steps=5)
    page.mouse.move(top["x"] + top["width"] / 2, bottom["y"] + bottom["height"] - 2, steps=5)
    expect(scrubber.locator(".scrubber-label")).to_have_text("August 2017")
    page.mouse.up()
    page.wait_for_url("**from=2017-08-31")
    page.go_back()
    page.wait_for_url("**from=2019-08-31")

    tiles.first.click()
    panel = page.locator("#lightbox .lightbox-info")
    expect(panel.locator("[data-detail=taken]")).to_contain_text("2019")
    expect(panel.locator("[data-detail=camera]")).to_have_text("Canon EOS R5")
    page.screenshot(path=f"/tmp/gallery2-scrubbed-details-{width}.png")
    page.keyboard.press("Escape")

    page.get_by_role("button", name="Select").click()
    tiles.nth(0).click()
    tiles.nth(2).click(modifiers=["Shift"])
    expect(page.locator("[data-selection-count]")).to_have_text("3 photos selected")
    assert downloaded_zip(page, tmp_path) == ["s2017-4.jpg", "s2019-3.jpg", "s2019-4.jpg"]  # oldest taken first
