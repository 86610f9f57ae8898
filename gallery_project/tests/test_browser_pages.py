"""Every page in real Chromium, on a 390x844 phone (touch) and at 1440x900: nothing scrolls sideways, every
link of the navigation can be reached and followed, and no page breaks its Content-Security-Policy.

Screenshots of every page at both sizes land in test-artifacts/pages/ (look at them after a layout change).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from albums import services as album_services
from conftest import ARTIFACTS, log_in, watch_console, watch_csp
from generation import services as generation_services
from generation.tests.conftest import enqueued, follow, invokeai, sd1, session, step_request  # noqa: F401
from photos import services as photo_services
from photos.tests.conftest import upload  # noqa: F401
from photos.tests.images import image_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True, "device_scale_factor": 2}
DESKTOP = {"viewport": {"width": 1440, "height": 900}}
SIZES = {"phone": PHONE, "desktop": DESKTOP}

# Standalone pages, without the site's top bar.
WITHOUT_NAV = {"not-found", "bad-request", "api-docs"}
NAV_LINKS = ["Gallery", "Studio", "Albums", "Shared links", "Backend", "Trash", "API", "Admin"]


def shot(page, size: str, name: str) -> None:
    folder = ARTIFACTS / "pages"
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=folder / f"{size}-{name}.png", full_page=True)


def overflow(page) -> int:
    """How many CSS pixels the document is wider than the viewport (0 when nothing scrolls sideways).

    Measured against the device's width: a phone browser zooms out to fit a page that is too wide, so its
    `innerWidth` grows with the page.
    """
    return page.evaluate("() => document.documentElement.scrollWidth") - page.viewport_size["width"]


@pytest.fixture
def site(user, upload, invokeai, sd1, session, follow):  # noqa: F811
    """A gallery in use: uploads, a studio session whose step made two images, an album shared twice, the trash."""
    photos = [
        upload(f"holiday-{i}.jpg", image_bytes("JPEG", size, color=(40 * i, 120, 200 - 40 * i)))
        for i, size in enumerate([(1600, 1000), (800, 1200), (1200, 1200), (2400, 900)])
    ]
    step = generation_services.step_create(session_id=session.pk, owner=user, request=step_request(sd1, batch_size=2))
    follow(step.pk)
    album = album_services.album_create(owner=user, name="Summer by the sea", description="Two weeks on the coast.")
    album_services.album_add_photos(album_id=album.pk, owner=user, photo_ids=[p.pk for p in photos[:3]])
    shared = album_services.share_link_create(owner=user, album_id=album.pk, allow_download=True)
    locked = album_services.share_link_create(owner=user, photo_id=photos[0].pk, password="open sesame")
    trashed = upload("old.jpg", image_bytes("JPEG", (900, 600), color=(90, 90, 90)))
    photo_services.photo_delete(photo_id=trashed.pk, owner=user)
    return {
        "generated": step.alternatives.first().photo,
        "trashed": trashed,
        "photo": photos[1],
        "album": album,
        "session": session,
        "share": shared.token,
        "locked_share": locked.token,
        "shared_photo": photos[0],
    }


def owner_pages(site) -> dict[str, str]:
    return {
        "gallery": "/",
        "photo": f"/photos/{site['photo'].pk}/",
        "generated-photo": f"/photos/{site['generated'].pk}/",
        "trash": "/trash/",
        "trashed-photo": f"/photos/{site['trashed'].pk}/",
        "albums": "/albums/",
        "album": f"/albums/{site['album'].pk}/",
        "uncategorized": "/albums/uncategorized/",
        "shares": "/shares/",
        "studio": "/studio/",
        "studio-session": f"/studio/{site['session'].pk}/",
        "backend": "/backend/",
        "models": "/studio/models/",
        "presets": "/studio/presets/",
        "workflows": "/studio/workflows/",
        "queue": "/queue/",
        "duplicates": "/duplicates/",
        "not-found": "/no-such-page/",
        "bad-request": "/?kind=nonsense",
        "api-docs": "/api/docs/",
    }


def visitor_pages(site) -> dict[str, str]:
    return {
        "login": "/login/",
        "share-album": f"/s/{site['share']}/",
        "share-photo": f"/s/{site['share']}/photos/{site['shared_photo'].pk}/",
        "share-password": f"/s/{site['locked_share']}/",
        "share-not-found": "/s/not-a-token/",
    }


def admin_pages(site) -> dict[str, str]:
    """Django's own pages: only the policy is checked (their layout is Django's)."""
    return {
        "admin": "/admin/",
        "admin-photos": "/admin/photos/photo/",
        "admin-photo": f"/admin/photos/photo/{site['generated'].pk}/change/",
        "admin-album": f"/admin/albums/album/{site['album'].pk}/change/",
    }


def open_menu(page) -> None:
    """On a phone the navigation sits behind the menu button; on a desktop the button is not shown."""
    button = page.locator(".menu-button")
    if button.is_visible():
        button.click()
        expect(button).to_have_attribute("aria-expanded", "true")


def unreachable_links(page) -> list[str]:
    """The navigation's links and buttons that cannot be seen and tapped inside the viewport."""
    open_menu(page)
    width = page.viewport_size["width"]
    topbar = page.locator(".topbar")
    controls = [topbar.get_by_role("link", name=name, exact=True) for name in NAV_LINKS]
    controls.append(topbar.get_by_role("button", name="Log out"))
    missing = []
    for name, control in zip([*NAV_LINKS, "Log out"], controls, strict=True):
        box = control.bounding_box() if control.is_visible() else None
        if box is None or box["x"] < 0 or box["x"] + box["width"] > width:
            missing.append(name)
    return missing


def visit(page, live_server, path: str) -> None:
    page.goto(f"{live_server.url}{path}")
    page.wait_for_load_state("networkidle")


def page_problems(page, live_server, pages: dict[str, str], size: str, *, nav: bool = False) -> list[str]:
    """Visit each page and take its screenshot; say which are too wide or (with nav) hide a navigation link."""
    problems = []
    for name, path in pages.items():
        visit(page, live_server, path)
        shot(page, size, name)
        if (extra := overflow(page)) > 0:
            problems.append(f"{name} ({path}) is {extra} px too wide")
        if nav and name not in WITHOUT_NAV and (missing := unreachable_links(page)):
            problems.append(f"{name} ({path}): cannot reach {', '.join(missing)}")
        if nav and size == "phone" and name == "gallery":
            shot(page, size, "menu")
    return problems


@pytest.mark.parametrize("size", SIZES)
def test_every_page_fits_and_keeps_its_policy(browser, live_server, client, user, site, size):
    context = browser.new_context(**SIZES[size])
    violations = watch_csp(context)
    problems: list[str] = []
    try:
        visitor = context.new_page()
        watch_console(visitor, violations)
        problems += page_problems(visitor, live_server, visitor_pages(site), size)

        log_in(context, live_server, client, user)
        page = context.new_page()
        watch_console(page, violations)
        problems += page_problems(page, live_server, owner_pages(site), size, nav=True)

        visit(page, live_server, "/")
        # A photo's tile (a stack of a step's alternatives opens in place instead: photos' own tests).
        page.locator("#grid .tile:not(.stack)").first.click()
        page.wait_for_function("() => document.querySelector('#lightbox .lightbox-stage img')?.naturalWidth > 0")
        shot(page, size, "lightbox")

        # The pieces that float over a page: the selection bar and the share dialog.
        visit(page, live_server, f"/albums/{site['album'].pk}/")
        page.get_by_role("button", name="Select").click()
        page.locator("#grid .tile").first.click()
        expect(page.locator("#selection-bar")).to_be_visible()
        shot(page, size, "selecting")
        if (extra := overflow(page)) > 0:
            problems.append(f"the selection bar makes the album {extra} px too wide")
        page.keyboard.press("Escape")
        page.get_by_role("button", name="Share…").click()
        expect(page.locator("dialog.share-dialog")).to_be_visible()
        shot(page, size, "share-dialog")

        for name, path in admin_pages(site).items():
            visit(page, live_server, path)
            shot(page, size, name)
    finally:
        context.close()
    assert not problems, "\n".join(problems)
    assert not violations, "\n".join(violations)


@pytest.mark.parametrize("size", SIZES)
def test_the_first_run_page_fits(browser, live_server, db, size):
    context = browser.new_context(**SIZES[size])
    violations = watch_csp(context)
    try:
        page = context.new_page()
        watch_console(page, violations)
        visit(page, live_server, "/")
        expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
        shot(page, size, "setup")
        assert overflow(page) <= 0
    finally:
        context.close()
    assert not violations, "\n".join(violations)


def test_the_phone_menu_opens_closes_and_leads_on(browser, live_server, client, user):
    context = browser.new_context(**PHONE)
    try:
        log_in(context, live_server, client, user)
        page = context.new_page()
        visit(page, live_server, "/")
        header = page.locator(".topbar").bounding_box()
        assert header["height"] <= 64, header  # one row: the brand, the backend badge, the menu button
        button = page.get_by_role("button", name="Menu")
        albums = page.locator(".topbar").get_by_role("link", name="Albums", exact=True)
        expect(albums).to_be_hidden()

        button.tap()
        expect(albums).to_be_visible()
        page.keyboard.press("Escape")
        expect(albums).to_be_hidden()
        expect(button).to_have_attribute("aria-expanded", "false")
        expect(button).to_be_focused()

        button.tap()
        page.locator("main").tap(position={"x": 20, "y": 300})
        expect(albums).to_be_hidden()

        button.tap()
        albums.tap()
        page.wait_for_url(f"{live_server.url}/albums/")
        expect(page.get_by_role("heading", name="Albums")).to_be_visible()
        expect(page.locator(".topbar").get_by_role("link", name="Albums", exact=True)).to_be_hidden()
    finally:
        context.close()
