"""The gallery in real Chromium: log in, drop two photos, open the lightbox, delete one, restore it."""

from __future__ import annotations

import base64

import pytest

from conftest import ARTIFACTS
from photos.models import Photo

from .images import image_bytes

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
    assert "only .jpg" in failed.inner_text()
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

    page.goto(f"{live_server.url}/trash/")
    trashed = page.locator(f".tile[data-photo-id='{first_id}']")
    trashed.locator("img").wait_for()
    shot(page, "trash")
    trashed.get_by_role("button", name="Restore").click()
    trashed.wait_for(state="detached")
    assert Photo.objects.get(pk=first_id).deleted_at is None

    page.goto(f"{live_server.url}/")
    page.wait_for_function("() => document.querySelectorAll('#grid .tile').length === 2")
