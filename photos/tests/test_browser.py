"""The gallery in real Chromium: log in, drop photos, open the lightbox, delete one, restore it; the trash; the
lightbox's address, its swipes on a phone; range selection."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from albums import services as album_services
from conftest import ARTIFACTS, log_in
from photos import services
from photos.models import Photo

from .images import camera_mpo, halves, image_bytes, png_16bit, with_garbage_pixels

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DROP_FILES = """
async ([files]) => {
  const transfer = new DataTransfer();
  for (const [name, type, b64] of files) {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], name, { type }));
  }
  for (const kind of ["dragenter", "dragover", "drop"]) {
    document.body.dispatchEvent(new DragEvent(kind, { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }
}
"""


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"gallery-{name}.png")


LOADED_THUMBNAILS = "() => [...document.querySelectorAll('#grid .tile img')].filter((i) => i.naturalWidth).length"


def thumbnails_loaded(page) -> int:
    return page.evaluate(LOADED_THUMBNAILS)


def test_upload_lightbox_delete_and_restore(page, live_server, user):
    page.goto(f"{live_server.url}/")
    page.fill("input[name=username]", "owner")
    page.fill("input[name=password]", "correct horse battery")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator(".empty").is_visible()
    shot(page, "empty")

    files = [
        ["beach.jpg", "image/jpeg", base64.b64encode(image_bytes("JPEG", (1200, 800))).decode()],
        [
            "forest.png",
            "image/png",
            base64.b64encode(image_bytes("PNG", (600, 900), color=(30, 140, 60))).decode(),
        ],
        ["notes.txt", "text/plain", base64.b64encode(b"not a photo").decode()],
    ]
    page.evaluate(DROP_FILES, [files])

    page.wait_for_function("() => document.querySelectorAll('.upload-item.done').length === 2")
    failed = page.locator(".upload-item.failed")
    assert failed.count() == 1
    # What to do instead, in words: no library names.
    assert "the gallery takes JPEG, PNG, WebP or HEIC photos" in failed.inner_text()
    assert "export it again as JPEG or PNG" in failed.inner_text()
    page.wait_for_function(f"() => ({LOADED_THUMBNAILS})() === 2")
    assert thumbnails_loaded(page) == 2
    assert page.locator("#photo-count").inner_text() == "2 photos"
    assert Photo.objects.count() == 2
    shot(page, "uploaded")

    page.locator("#grid .tile").first.click()
    dialog = page.locator("#lightbox")
    dialog.locator(".lightbox-stage img").wait_for()
    assert dialog.evaluate("(d) => d.open")
    first_id = dialog.locator(".lightbox-frame").get_attribute("data-photo-id")
    page.wait_for_function("() => document.querySelector('#lightbox .lightbox-stage img').naturalWidth > 0")
    shot(page, "lightbox")

    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        f"() => document.querySelector('#lightbox .lightbox-frame').dataset.photoId !== '{first_id}'"
    )
    second_id = dialog.locator(".lightbox-frame").get_attribute("data-photo-id")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(
        f"() => document.querySelector('#lightbox .lightbox-frame').dataset.photoId === '{first_id}'"
    )

    dialog.get_by_role("button", name="Move to trash").click()
    page.get_by_text("Moved to trash.").wait_for()
    page.wait_for_function("() => document.querySelectorAll('#grid .tile').length === 1")
    assert page.locator("#photo-count").inner_text() == "1 photo"
    assert Photo.objects.get(pk=first_id).deleted_at is not None
    # The lightbox moves on to the next photo.
    page.wait_for_function(
        f"() => document.querySelector('#lightbox .lightbox-frame').dataset.photoId === '{second_id}'"
    )
    page.keyboard.press("Escape")
    wait_for_no_photo_in_address(page)

    page.goto(f"{live_server.url}/trash/")
    trashed = page.locator(f".tile[data-photo-id='{first_id}']")
    trashed.locator("img").wait_for()
    shot(page, "trash")
    trashed.get_by_role("button", name="Restore").click()
    trashed.wait_for(state="detached")
    assert Photo.objects.get(pk=first_id).deleted_at is None

    page.goto(f"{live_server.url}/")
    page.wait_for_function("() => document.querySelectorAll('#grid .tile').length === 2")


def photos_in_the_trash(upload, count: int) -> list:
    trashed = []
    for i in range(count):
        photo = upload(f"old-{i}.jpg", image_bytes("JPEG", (600, 400), color=(50 * i, 90, 90)))
        services.photo_delete(photo_id=photo.pk, owner=photo.owner)
        trashed.append(photo)
    return trashed


def test_emptying_the_trash_asks_first(logged_in_page, live_server, upload):
    page = logged_in_page
    photos_in_the_trash(upload, 2)
    page.goto(f"{live_server.url}/trash/")
    expect(page.locator("#grid .tile")).to_have_count(2)

    asked: list[str] = []

    def dismiss(dialog) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.get_by_role("button", name="Empty trash").click()
    expect(page.locator("#grid .tile")).to_have_count(2)
    assert asked and "cannot be undone" in asked[0]
    assert Photo.objects.filter(deleted_at__isnull=False).count() == 2

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Empty trash").click()
    expect(page.get_by_text("The trash is empty.")).to_be_visible()
    assert Photo.objects.count() == 0


def test_trashed_photos_open_and_restore_with_a_true_count(logged_in_page, live_server, upload):
    page = logged_in_page
    newest_first = list(reversed(photos_in_the_trash(upload, 3)))
    page.goto(f"{live_server.url}/trash/")
    count = page.locator("#photo-count")
    expect(count).to_have_text("3 photos")

    # A trashed photo opens in the lightbox, says it is in the trash, and can be restored from there.
    page.locator(f"#grid .tile[data-photo-id='{newest_first[0].pk}'] img").click()
    dialog = page.locator("#lightbox")
    expect(dialog.locator(".lightbox-frame")).to_have_attribute("data-photo-id", str(newest_first[0].pk))
    page.wait_for_function("() => document.querySelector('#lightbox .lightbox-stage img').naturalWidth > 0")
    expect(dialog).to_contain_text("In the trash since")
    dialog.get_by_role("button", name="Restore").click()
    expect(count).to_have_text("2 photos")
    # It moves on to the next photo in the trash.
    expect(dialog.locator(".lightbox-frame")).to_have_attribute("data-photo-id", str(newest_first[1].pk))
    page.keyboard.press("Escape")

    page.locator(f"#grid .tile[data-photo-id='{newest_first[2].pk}']").get_by_role("button", name="Restore").click()
    expect(count).to_have_text("1 photo")
    assert Photo.objects.filter(deleted_at__isnull=False).count() == 1
    page.reload()
    expect(count).to_have_text("1 photo")

    page.locator("#grid .tile").get_by_role("button", name="Restore").click()
    expect(count).to_have_text("0 photos")
    expect(page.get_by_text("The trash is empty.")).to_be_visible()
    expect(page.get_by_role("button", name="Empty trash")).to_be_hidden()


def test_a_refused_upload_shows_as_failed(logged_in_page, live_server):
    page = logged_in_page
    page.goto(f"{live_server.url}/")
    files = [["notes.jpg", "image/jpeg", base64.b64encode(b"not a photo at all" * 2000).decode()]]
    page.evaluate(DROP_FILES, [files])
    row = page.locator(".upload-item.failed")
    expect(row).to_have_count(1)
    # Its bar went all the way while the bytes were sent; a full bar would say it worked.
    expect(row.locator("progress")).to_be_hidden()
    color = row.locator(".status").evaluate("(el) => getComputedStyle(el).color")
    assert color == "rgb(239, 111, 108)"  # --danger
    shot(page, "upload-failed")


@pytest.mark.parametrize("viewport", [{"width": 1440, "height": 900}, {"width": 390, "height": 844}])
def test_a_tall_photo_fits_the_window(browser, live_server, user, client, upload, viewport):
    tall = upload("tower.jpg", image_bytes("JPEG", (600, 2400)))
    context = browser.new_context(viewport=viewport)
    try:
        log_in(context, live_server, client, user)
        page = context.new_page()
        page.goto(f"{live_server.url}/photos/{tall.pk}/")
        page.wait_for_function("() => document.querySelector('.lightbox-stage img').naturalWidth > 0")
        box = page.locator(".lightbox-stage img").bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], box
        assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"], box
        page.screenshot(path=ARTIFACTS / f"photo-page-tall-{viewport['width']}.png")

        page.goto(f"{live_server.url}/")
        page.locator("#grid .tile").first.click()
        page.wait_for_function("() => document.querySelector('#lightbox .lightbox-stage img')?.naturalWidth > 0")
        box = page.locator("#lightbox .lightbox-stage img").bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], box
    finally:
        context.close()


def photo_in_address(page) -> str | None:
    return parse_qs(urlparse(page.url).query).get("photo", [None])[0]


def wait_for_no_photo_in_address(page) -> None:
    """Closing the lightbox goes Back in the history, which the browser does a moment later."""
    page.wait_for_function("() => !new URLSearchParams(location.search).has('photo')")


def shown_photo(page) -> str:
    return page.locator("#lightbox .lightbox-frame").get_attribute("data-photo-id")


def test_the_lightbox_has_an_address_and_back_closes_it(logged_in_page, live_server, upload):
    page = logged_in_page
    oldest, middle, newest = (upload(f"p{i}.jpg", image_bytes(color=(80 * i, 100, 100))) for i in range(3))
    page.goto(f"{live_server.url}/?kind=all")
    dialog = page.locator("#lightbox")

    page.locator(f"#grid .tile[data-photo-id='{newest.pk}']").click()
    expect(dialog).to_be_visible()
    assert photo_in_address(page) == str(newest.pk)
    assert parse_qs(urlparse(page.url).query)["kind"] == ["all"]
    page.keyboard.press("ArrowRight")
    expect(dialog.locator(".lightbox-frame")).to_have_attribute("data-photo-id", str(middle.pk))
    assert photo_in_address(page) == str(middle.pk)

    # Back closes the lightbox (one step, however many photos were seen), and Forward opens it again.
    page.go_back()
    expect(dialog).to_be_hidden()
    assert page.url == f"{live_server.url}/?kind=all"
    page.go_forward()
    expect(dialog).to_be_visible()
    assert shown_photo(page) == str(middle.pk)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    wait_for_no_photo_in_address(page)
    assert page.url == f"{live_server.url}/?kind=all"

    # The address opens the lightbox by itself, even for a photo that is not on the grid (here: filtered out).
    page.goto(f"{live_server.url}/?kind=generated&photo={oldest.pk}")
    expect(dialog).to_be_visible()
    assert shown_photo(page) == str(oldest.pk)
    assert page.locator("#grid .tile").count() == 0
    page.locator("#lightbox [data-action=close]").click()
    expect(dialog).to_be_hidden()
    # Opened by the link, it closes without leaving the page: the address just loses the photo.
    wait_for_no_photo_in_address(page)
    assert page.url == f"{live_server.url}/?kind=generated"


def test_the_shared_lightbox_has_an_address_too(page, live_server, upload, user):
    photos = [upload(f"p{i}.jpg", image_bytes(color=(80 * i, 100, 100))) for i in range(2)]
    album = album_services.album_create(owner=user, name="Trip")
    album_services.album_add_photos(album_id=album.pk, owner=user, photo_ids=[p.pk for p in photos])
    token = album_services.share_link_create(owner=user, album_id=album.pk).token
    page.goto(f"{live_server.url}/s/{token}/?photo={photos[1].pk}")
    dialog = page.locator("#lightbox")
    expect(dialog).to_be_visible()
    page.wait_for_function("() => document.querySelector('#lightbox .lightbox-stage img')?.naturalWidth > 0")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    wait_for_no_photo_in_address(page)


def test_shift_click_selects_a_range(logged_in_page, live_server, upload):
    page = logged_in_page
    for i in range(6):
        upload(f"p{i}.jpg", image_bytes(color=(40 * i, 100, 100)))
    page.goto(f"{live_server.url}/")
    page.get_by_role("button", name="Select").click()
    tiles = page.locator("#grid .tile")
    count = page.locator("[data-selection-count]")

    tiles.nth(0).click()
    tiles.nth(3).click(modifiers=["Shift"])
    expect(count).to_have_text("4 photos selected")
    expect(page.locator("#grid .tile.selected")).to_have_count(4)
    # Unselecting a tile and shift-clicking on: the range takes the unselected state.
    tiles.nth(2).click()
    tiles.nth(5).click(modifiers=["Shift"])
    expect(count).to_have_text("2 photos selected")
    selected = page.locator("#grid .tile").evaluate_all("(all) => all.map((t) => t.classList.contains('selected'))")
    assert selected == [True, True, False, False, False, False]
    expect(page.locator("#lightbox")).to_be_hidden()


def touch_swipe(cdp, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A finger moving across the screen, as the phone's touch screen reports it to the page."""
    (x0, y0), (x1, y1) = start, end
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x0, "y": y0}]})
    for i in range(1, 9):
        point = {"x": x0 + (x1 - x0) * i / 8, "y": y0 + (y1 - y0) * i / 8}
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_the_phone_lightbox_swipes(browser, live_server, user, client, upload):
    photos = [upload(f"p{i}.jpg", image_bytes(color=(80 * i, 100, 100))) for i in range(3)]
    newest_first = [str(p.pk) for p in reversed(photos)]
    context = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    try:
        log_in(context, live_server, client, user)
        page = context.new_page()
        page.goto(f"{live_server.url}/")
        page.locator("#grid .tile").first.tap()
        dialog = page.locator("#lightbox")
        expect(dialog.locator(".lightbox-frame")).to_have_attribute("data-photo-id", newest_first[0])
        stage = dialog.locator(".lightbox-stage").bounding_box()
        middle = (stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] / 2)
        cdp = context.new_cdp_session(page)

        touch_swipe(cdp, middle, (middle[0] - 150, middle[1] + 10))
        expect(dialog.locator(".lightbox-frame")).to_have_attribute("data-photo-id", newest_first[1])
        touch_swipe(cdp, middle, (middle[0] - 150, middle[1]))
        expect(dialog.locator(".lightbox-frame")).to_have_attribute("data-photo-id", newest_first[2])
        touch_swipe(cdp, middle, (middle[0] + 150, middle[1] - 10))
        expect(dialog.locator(".lightbox-frame")).to_have_attribute("data-photo-id", newest_first[1])
        assert photo_in_address(page) == newest_first[1]
        page.screenshot(path=ARTIFACTS / "lightbox-phone.png")

        touch_swipe(cdp, (middle[0], middle[1] - 100), (middle[0] + 5, middle[1] + 100))
        expect(dialog).to_be_hidden()
        wait_for_no_photo_in_address(page)
    finally:
        context.close()


@pytest.mark.parametrize("viewport", [(1440, 900), (390, 844)], ids=["desktop", "phone"])
def test_upload_refusals_say_what_to_do_and_camera_files_are_taken(logged_in_page, live_server, viewport):
    page = logged_in_page
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    page.goto(f"{live_server.url}/")
    grey16 = png_16bit(0, halves((400, 300), (10280,), (51400,)))

    def encoded(name: str, data: bytes) -> list[str]:
        return [name, "application/octet-stream", base64.b64encode(data).decode()]

    files = [
        encoded("IMG_2041.JPG", camera_mpo()),
        encoded("scan-16bit.png", grey16),
        encoded("animation.gif", image_bytes("GIF")),
        encoded("scan.tiff", image_bytes("TIFF")),
        encoded("garbled.png", with_garbage_pixels(image_bytes("PNG"))),
        encoded("icon.png", image_bytes("PNG", (48, 48))),
    ]
    page.evaluate(DROP_FILES, [files])

    page.wait_for_function("() => document.querySelectorAll('.upload-item.done, .upload-item.failed').length === 6")
    assert page.locator(".upload-item.done").count() == 2
    failed = {row.locator(".name").inner_text(): row.inner_text() for row in page.locator(".upload-item.failed").all()}
    assert set(failed) == {"animation.gif", "scan.tiff", "garbled.png", "icon.png"}
    assert "the gallery takes JPEG, PNG, WebP or HEIC photos" in failed["animation.gif"]
    assert "is a .tiff file" in failed["scan.tiff"]
    assert "damaged or incomplete" in failed["garbled.png"]
    assert "between 100 and 8192 px" in failed["icon.png"]
    for text in failed.values():
        assert "export it again as JPEG or PNG" in text or "Resize it" in text
        assert "Pillow" not in text
    page.wait_for_function(f"() => ({LOADED_THUMBNAILS})() === 2")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"gallery-refusals-{viewport[0]}.png", full_page=True)
    assert Photo.objects.count() == 2


def test_thumbnails_and_the_lightbox_come_from_signed_urls(logged_in_page, live_server, upload):
    page = logged_in_page
    for index in range(3):
        upload(f"signed-{index}.jpg", image_bytes(color=(60 * index, 120, 90)))
    page.goto(f"{live_server.url}/")
    page.wait_for_function(f"({LOADED_THUMBNAILS})() === 3")
    sources = page.eval_on_selector_all("#grid .tile img", "(images) => images.map((i) => i.getAttribute('src'))")
    assert all(source.startswith("/media/") for source in sources)
    page.locator("#grid .tile").first.click()
    display = page.locator("#lightbox-body .lightbox-stage img")
    expect(display).to_be_visible()
    page.wait_for_function("document.querySelector('#lightbox-body .lightbox-stage img').naturalWidth > 0")
    assert display.get_attribute("src").startswith("/media/") and ".display.webp" in display.get_attribute("src")
    shot(page, "signed-lightbox")
    page.screenshot(path="/tmp/serving-signed-lightbox.png")
