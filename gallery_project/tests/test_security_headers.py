"""Every response carries a strict Content-Security-Policy and a Permissions-Policy; the favicon is served.

That the pages keep to the policy in a real browser is tested in test_browser_pages.py (and by every browser
test: the `page` fixture fails a test on any violation).
"""

from __future__ import annotations

import pytest

from albums import services as album_services
from photos.tests.factories import PhotoFactory

pytestmark = pytest.mark.django_db


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


def assert_strict(response) -> dict[str, list[str]]:
    policy = directives(response)
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    assert "camera=()" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]
    return policy


def test_every_kind_of_page_sends_the_policy(owner_client, client, user):
    photo = PhotoFactory()
    token = album_services.share_link_create(owner=photo.owner, photo_id=photo.pk).token
    for url in ["/", f"/photos/{photo.pk}/", "/trash/", "/albums/", "/shares/", "/studio/", "/backend/", "/admin/"]:
        response = owner_client.get(url)
        assert response.status_code == 200, url
        assert assert_strict(response)["img-src"] == ["'self'"], url
    assert_strict(owner_client.get("/no-such-page/"))
    assert_strict(owner_client.get("/api/photos/"))
    client.logout()
    assert_strict(client.get("/login/"))
    assert_strict(client.get(f"/s/{token}/"))
    assert_strict(client.get("/s/not-a-token/"))


def test_the_api_docs_load_their_script_from_a_url(owner_client):
    page = owner_client.get("/api/docs/")
    policy = assert_strict(page)
    # Swagger UI draws its icons as data: images; nothing else is widened.
    assert policy["img-src"] == ["'self'", "data:"]
    html = page.content.decode()
    assert "<script>" not in html and "<style>" not in html
    script = owner_client.get("/api/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle" in script.content


def test_the_favicon_is_served_to_anyone(client, owner_client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert b"".join(response.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert '<link rel="icon" href="/favicon.ico"' in owner_client.get("/").content.decode()
    assert '<link rel="icon" href="/favicon.ico"' in client.get("/no-such-page/").content.decode()
