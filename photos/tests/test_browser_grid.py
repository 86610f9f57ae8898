"""The grid in real Chromium, by clicks and keys at a desktop's and a phone's size: a step's alternatives as one
stack that opens in place, the every-alternative toggle, zoom levels with month headers at the densest, and
justified rows, each remembered on the next visit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from generation.models import GenerationSession, GenerationStep, StepAlternative
from photos.models import Photo

from .images import image_bytes
from .test_browser_timeline import downloaded_zip

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def dated(photo: Photo, when: datetime) -> Photo:
    Photo.objects.filter(pk=photo.pk).update(taken_at=when)
    return photo


def alternatives_of_a_step(upload, user, count: int, when: datetime) -> list[Photo]:
    session = GenerationSession.objects.create(owner=user)
    step = GenerationStep.objects.create(
        session=session, position=1, prompt="a boat", model_key="m", model_hash="h", model_name="m", batch_size=count
    )
    photos = []
    for index in range(count):
        photo = upload(f"boat-{index}.png", image_bytes("PNG", (512, 512), color=(200, 40 * index, 60)))
        Photo.objects.filter(pk=photo.pk).update(is_generated=True, taken_at=when.replace(second=59 - index))
        StepAlternative.objects.create(step=step, photo=photo, item_id=index + 1, index=index)
        photos.append(photo)
    return photos


def test_a_stack_of_alternatives_opens_in_place_and_the_toggle_is_remembered(sized_page, live_server, upload, user):
    page, width = sized_page, sized_page.viewport["width"]
    before = dated(upload("harbour.jpg", image_bytes(color=(20, 90, 160))), datetime(2024, 6, 2, 12, tzinfo=UTC))
    boats = alternatives_of_a_step(upload, user, 3, datetime(2024, 6, 1, 12, tzinfo=UTC))
    page.goto(f"{live_server.url}/")
    tiles = page.locator("#grid .tile")
    expect(tiles).to_have_count(2)
    stack = page.locator("#grid .tile.stack")
    expect(stack.locator(".stack-count")).to_have_text("3")
    expect(stack).to_have_attribute("data-photo-id", str(boats[0].pk))
    page.screenshot(path=f"/tmp/gallery2-stack-{width}.png")

    # Opening the stack puts its alternatives in its place, in the timeline's order; each opens the lightbox.
    stack.locator(".photo-link").click()
    expect(tiles).to_have_count(4)
    expect(page.locator("#grid .tile.stack")).to_have_count(0)
    assert [tiles.nth(i).get_attribute("data-photo-id") for i in range(4)] == [str(p.pk) for p in (before, *boats)]
    tiles.nth(2).locator(".photo-link").click()
    expect(page.locator("#lightbox .lightbox-frame")).to_have_attribute("data-photo-id", str(boats[1].pk))
    page.screenshot(path=f"/tmp/gallery2-stack-open-lightbox-{width}.png")
    page.keyboard.press("Escape")

    # The toggle shows every alternative, and the next visit still does; unticked, the stack is back.
    page.get_by_text("Every alternative").click()
    page.wait_for_url("**alternatives=all**")
    expect(tiles).to_have_count(4)
    page.goto(f"{live_server.url}/")
    expect(tiles).to_have_count(4)
    expect(page.get_by_label("Every alternative")).to_be_checked()
    page.get_by_text("Every alternative").click()
    page.wait_for_url("**alternatives=stacked**")
    expect(tiles).to_have_count(2)
    page.goto(f"{live_server.url}/")
    expect(page.locator("#grid .tile.stack")).to_have_count(1)


def test_a_selected_stack_stands_for_all_its_photos(sized_page, live_server, upload, user, tmp_path):
    page = sized_page
    boats = alternatives_of_a_step(upload, user, 3, datetime(2024, 6, 1, 12, tzinfo=UTC))
    loose = dated(upload("quay.jpg", image_bytes(color=(90, 90, 20))), datetime(2024, 5, 1, 12, tzinfo=UTC))
    page.goto(f"{live_server.url}/")
    page.get_by_role("button", name="Select").click()
    page.locator("#grid .tile.stack").click()
    page.locator(f"#grid .tile[data-photo-id='{loose.pk}']").click(modifiers=["Shift"])
    expect(page.locator("[data-selection-count]")).to_have_text("4 photos selected")
    assert sorted(downloaded_zip(page, tmp_path)) == sorted([*(p.filename for p in boats), "quay.jpg"])
    expect(page.locator("#grid .tile")).to_have_count(4)  # the stack opened on the way


def test_zoom_levels_by_keys_and_buttons_with_month_headers_at_the_densest(sized_page, live_server, upload):
    page, width = sized_page, sized_page.viewport["width"]
    for month in (3, 4):
        for day in (1, 2):
            dated(
                upload(f"m{month}-{day}.jpg", image_bytes(color=(60 * day, 30 * month, 90))),
                datetime(2022, month, day, 12, tzinfo=UTC),
            )
    page.goto(f"{live_server.url}/")
    grid = page.locator("#grid")
    expect(grid).to_have_class("grid zoom-m")
    tile_width = page.locator("#grid .tile").first.bounding_box()["width"]
    expect(page.locator(".day-header:visible")).to_have_count(4)

    page.get_by_role("button", name="Larger tiles").click()
    expect(grid).to_have_class("grid zoom-l")
    assert page.locator("#grid .tile").first.bounding_box()["width"] > tile_width * 1.3
    page.screenshot(path=f"/tmp/gallery2-zoom-l-{width}.png")
    expect(page.get_by_role("button", name="Larger tiles")).to_be_disabled()

    page.locator("body").click(position={"x": 5, "y": 300})
    for _ in range(3):
        page.keyboard.press("-")
    expect(grid).to_have_class("grid zoom-xs")
    expect(page.get_by_role("button", name="Smaller tiles")).to_be_disabled()
    # The densest zoom heads months: April and March, no days.
    headers = page.locator(".day-header:visible")
    expect(headers).to_have_count(2)
    assert [headers.nth(i).inner_text().strip() for i in range(2)] == ["April 2022", "March 2022"]
    assert page.locator("#grid .tile").first.bounding_box()["width"] < tile_width * 0.8
    page.screenshot(path=f"/tmp/gallery2-zoom-xs-{width}.png")

    # Remembered on the next visit; "+" on the keyboard zooms back in. Typing in the search box does not zoom.
    page.reload()
    expect(grid).to_have_class("grid zoom-xs")
    page.keyboard.press("+")
    expect(grid).to_have_class("grid zoom-s")
    page.get_by_label("Search").fill("-")
    expect(grid).to_have_class("grid zoom-s")


def test_justified_rows_keep_every_photo_whole_and_are_remembered(sized_page, live_server, upload):
    page, width = sized_page, sized_page.viewport["width"]
    sizes = [(400, 1200), (1200, 400), (640, 480), (480, 640), (800, 800), (1000, 500)]
    for index, size in enumerate(sizes):
        dated(
            upload(f"shape-{index}.jpg", image_bytes(size=size, color=(30 * index, 120, 80))),
            datetime(2023, 9, 10, 12, index, tzinfo=UTC),
        )
    page.goto(f"{live_server.url}/?q=shape")  # a search, so that each tile has its caption
    page.get_by_role("button", name="Whole photos").click()
    grid = page.locator("#grid")
    expect(grid).to_have_class("grid zoom-m justified")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#grid .tile img')].every((img) => img.complete && img.naturalWidth)"
    )
    images = page.locator("#grid .tile img")
    rows: dict[int, list[float]] = {}
    for index in range(images.count()):
        box = images.nth(index).bounding_box()
        natural = images.nth(index).evaluate("(img) => img.naturalWidth / img.naturalHeight")
        # Whole: the tile's shape is the photo's (within the 5% steps of the aspect classes).
        assert abs(box["width"] / box["height"] - natural) / natural < 0.06
        rows.setdefault(round(box["y"]), []).append(box["height"])
        assert box["x"] + box["width"] <= width
    # Rows of one height each; the tall 1:3 photo is whole, not a square crop.
    assert all(max(heights) - min(heights) < 1.5 for heights in rows.values())
    caption = page.locator("#grid .tile .caption").first
    expect(caption).to_be_visible()
    page.screenshot(path=f"/tmp/gallery2-justified-{width}.png", full_page=True)
    page.goto(f"{live_server.url}/")
    expect(grid).to_have_class("grid zoom-m justified")
    expect(page.get_by_role("button", name="Whole photos")).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name="Whole photos").click()
    expect(grid).to_have_class("grid zoom-m")


def test_on_a_phone_the_toolbar_leaves_most_of_the_first_screen_to_the_photos(sized_page, live_server, upload):
    page = sized_page
    upload("one.jpg", image_bytes(color=(90, 30, 160)))
    page.goto(f"{live_server.url}/")
    top = page.locator("#grid .tile").first.bounding_box()["y"]
    # Every control stays on the page, in rows short enough that the first photos start high on the first screen.
    assert top < page.viewport_size["height"] * 0.4, top
    for name in ("Larger tiles", "Smaller tiles", "Whole photos", "Select"):
        expect(page.get_by_role("button", name=name)).to_be_visible()
    expect(page.get_by_label("Every alternative")).to_be_visible()
