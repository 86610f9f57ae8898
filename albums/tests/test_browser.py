"""The whole album-and-share round trip in a real browser, as the owner and as someone given the link."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from albums.models import Album, ShareLink
from photos.tests.images import image_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


def tile_ids(page) -> list[str]:
    return page.locator("#grid .tile").evaluate_all("tiles => tiles.map(t => t.dataset.photoId)")


def test_album_reorder_share_open_anonymously_revoke(logged_in_page, live_server, browser, upload):
    page = logged_in_page
    photos = [upload(f"p{i}.jpg", image_bytes(color=(60 * i, 120, 200 - 60 * i))) for i in range(3)]
    newest_first = [str(p.pk) for p in reversed(photos)]

    # Create an album.
    page.goto(f"{live_server.url}/albums/")
    page.get_by_placeholder("New album name").fill("Trip")
    page.get_by_role("button", name="Create album").click()
    page.wait_for_url(re.compile(r"/albums/[0-9a-f-]{36}/$"))
    album = Album.objects.get(name="Trip")

    # Select the three photos in the gallery and add them to it.
    page.goto(f"{live_server.url}/")
    page.get_by_role("button", name="Select").click()
    for photo_id in newest_first:
        page.locator(f'#grid .tile[data-photo-id="{photo_id}"]').click()
    expect(page.locator("[data-selection-count]")).to_have_text("3 photos selected")
    page.get_by_role("button", name="Add to album…").click()
    page.locator(f'[data-choose-album="{album.pk}"]').click()
    expect(page.locator("#toasts")).to_contain_text("Added 3 photos to Trip")
    expect(page.locator("#lightbox")).not_to_be_visible()

    # On the album page, drag the first photo behind the last.
    page.goto(f"{live_server.url}/albums/{album.pk}/")
    assert tile_ids(page) == newest_first
    tiles = page.locator("#grid .tile")
    box = tiles.nth(2).bounding_box()
    tiles.nth(0).drag_to(tiles.nth(2), target_position={"x": box["width"] - 5, "y": box["height"] / 2})
    expect(page.locator("#toasts")).to_contain_text("Order saved")
    order = [newest_first[1], newest_first[2], newest_first[0]]
    assert tile_ids(page) == order
    page.reload()
    assert tile_ids(page) == order

    # Share it; the link is shown once, in the dialog.
    page.get_by_role("button", name="Share…").click()
    dialog = page.locator("dialog.share-dialog")
    dialog.get_by_role("button", name="Create link").click()
    url_field = dialog.locator("[data-share-url]")
    expect(url_field).to_have_value(re.compile(r"/s/[A-Za-z0-9_-]{43}/$"))
    share_url = url_field.input_value()
    expect(dialog.locator("tr[data-share-id]")).to_have_count(1)

    # Someone else, not logged in, in a browser of their own.
    visitor_context = browser.new_context()
    try:
        visitor = visitor_context.new_page()
        response = visitor.goto(share_url)
        assert response.status == 200
        expect(visitor.locator("#grid .tile")).to_have_count(3)
        assert tile_ids(visitor) == order
        # Every thumbnail loads, through the token-scoped image URLs.
        visitor.wait_for_function(
            "() => [...document.querySelectorAll('#grid img')].every(i => i.complete && i.naturalWidth > 0)"
        )
        assert "Log out" not in visitor.content()
        visitor.locator("#grid .tile").first.click()
        expect(visitor.locator("#lightbox .lightbox-stage img")).to_be_visible()
        visitor.keyboard.press("Escape")

        # The owner revokes it; the visitor's next load is a 404.
        page.once("dialog", lambda confirm: confirm.accept())
        dialog.get_by_role("button", name="Revoke").click()
        expect(dialog.locator(".status-badge")).to_have_text("Revoked")
        assert ShareLink.objects.get().revoked_at is not None
        response = visitor.reload()
        assert response.status == 404
        expect(visitor.locator("body")).to_contain_text("no longer shared")
        # The visitor cannot use the owner's app: the page offers no way into it.
        expect(visitor.get_by_role("heading")).to_have_text("Link not available")
        expect(visitor.locator("a")).to_have_count(0)
        visitor.screenshot(path="/tmp/shares-gone-desktop.png")
        visitor.set_viewport_size(PHONE)
        visitor.screenshot(path="/tmp/shares-gone-phone.png")
    finally:
        visitor_context.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_password_link_opens_in_a_browser(browser, live_server, upload, viewport, user):
    """The visitor types a wrong password, then the right one, pressing Enter each time, as people do."""
    from albums import services

    album = services.album_create(owner=user, name="Wedding")
    photos = [upload(f"w{i}.jpg", image_bytes(color=(50 * i, 90, 160))) for i in range(3)]
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[p.pk for p in photos])
    token = services.share_link_create(owner=user, album_id=album.pk, password="open sesame", allow_download=True).token
    name = "desktop" if viewport is DESKTOP else "phone"

    context = browser.new_context(viewport=viewport)
    try:
        visitor = context.new_page()
        visitor.set_default_timeout(15_000)
        visitor.goto(f"{live_server.url}/s/{token}/")
        password = visitor.get_by_label("Password")
        expect(password).to_be_focused()

        password.fill("open sesame?")
        password.press("Enter")
        expect(visitor.get_by_role("alert")).to_have_text("That is not the password for this link.")
        expect(visitor.locator("body")).not_to_contain_text("CSRF")
        visitor.screenshot(path=f"/tmp/shares-password-wrong-{name}.png")

        password = visitor.get_by_label("Password")
        password.fill("open sesame")
        password.press("Enter")
        expect(visitor.locator("#grid .tile")).to_have_count(3)
        visitor.wait_for_function(
            "() => [...document.querySelectorAll('#grid img')].every(i => i.complete && i.naturalWidth > 0)"
        )
        visitor.screenshot(path=f"/tmp/shares-password-album-{name}.png")
        visitor.locator("#grid .tile").nth(1).click()
        image = visitor.locator("#lightbox .lightbox-stage img")
        expect(image).to_be_visible()
        visitor.wait_for_function("() => document.querySelector('#lightbox .lightbox-stage img').naturalWidth > 0")
        expect(visitor.get_by_role("heading", name="Wedding", level=2)).to_be_visible()
        visitor.screenshot(path=f"/tmp/shares-password-lightbox-{name}.png")
        with visitor.expect_download() as download:
            visitor.get_by_role("link", name="Download original").click()
        assert download.value.suggested_filename == f"{photos[1].pk}.jpg", "named from the id, not w1.jpg"
        visitor.keyboard.press("Escape")
        expect(visitor.locator("#lightbox")).not_to_be_visible()
    finally:
        context.close()
