"""The spec's own photo endpoints beside the app's: `GET /api/photos/thumbnail/{id}`, and `GET /api/photos/{id}`
answering the file to a client that asks for an image (JSON otherwise, as before)."""

from __future__ import annotations

import pytest

from testing.accounts import other_account

from .images import image_bytes

pytestmark = pytest.mark.django_db

CHROME_PAGE = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,"
    "application/signed-exchange;v=b3;q=0.7"
)
CHROME_IMG = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
FIREFOX_PAGE = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
FIREFOX_IMG = "image/avif,image/webp,*/*"


def body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.fixture
def photo(upload):
    return upload("x.jpg", image_bytes("JPEG", (800, 600)))


@pytest.mark.parametrize("path", ["/api/photos/thumbnail/{id}", "/api/photos/thumbnail/{id}/"])
def test_the_spec_thumbnail_path_is_the_apps_thumbnail(api, photo, path):
    alias = api.get(path.format(id=photo.pk))
    own = api.get(f"/api/photos/{photo.pk}/thumbnail")
    assert (alias.status_code, alias["Content-Type"], alias["ETag"]) == (200, "image/webp", own["ETag"])
    assert body(alias) == body(own)


def test_the_thumbnail_alias_is_the_owners_only(api, anon_api, photo, upload):
    assert anon_api.get(f"/api/photos/thumbnail/{photo.pk}").status_code == 401
    guests = upload("g.jpg", image_bytes("JPEG", (300, 300), color=(1, 2, 3)), owner=other_account())
    missing = api.get(f"/api/photos/thumbnail/{guests.pk}")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert api.get("/api/photos/thumbnail/not-a-uuid").status_code == 404


@pytest.mark.parametrize(
    "accept", ["image/*", "image/jpeg", "image/png", CHROME_IMG, FIREFOX_IMG, "application/json;q=0.5, image/*"]
)
def test_asking_for_an_image_gets_the_file(api, photo, accept):
    response = api.get(f"/api/photos/{photo.pk}", HTTP_ACCEPT=accept)
    assert (response.status_code, response["Content-Type"]) == (200, "image/jpeg")
    assert body(response) == body(api.get(f"/api/photos/{photo.pk}/file"))
    assert "Accept" in response["Vary"]


@pytest.mark.parametrize(
    "accept",
    [None, "*/*", "application/json", CHROME_PAGE, FIREFOX_PAGE, "image/png, application/json", "image/*;q=0.5, */*"],
)
def test_anything_else_gets_the_json_as_before(api, photo, accept):
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = api.get(f"/api/photos/{photo.pk}", **headers)
    assert (response.status_code, response["Content-Type"]) == (200, "application/json")
    assert response.json()["id"] == str(photo.pk)
    assert "Accept" in response["Vary"]


def test_errors_are_json_even_to_a_client_asking_for_an_image(api, anon_api, photo):
    missing = api.get("/api/photos/00000000-0000-0000-0000-000000000000", HTTP_ACCEPT="image/*")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert anon_api.get(f"/api/photos/{photo.pk}", HTTP_ACCEPT="image/*").status_code == 401
    # A type the API has no answer in is refused as before.
    assert api.get(f"/api/photos/{photo.pk}", HTTP_ACCEPT="text/csv").status_code == 406


@pytest.mark.parametrize("path", ["/api/photos/{id}/file", "/api/photos/{id}/thumbnail", "/api/photos/{id}/display"])
def test_file_paths_answer_a_client_that_names_an_image_type(api, photo, path):
    # DRF's negotiation refused these with 406 before: it knows only JSON.
    response = api.get(path.format(id=photo.pk), HTTP_ACCEPT="image/png")
    assert response.status_code == 200 and response["Content-Type"].startswith("image/")
    body(response)


def test_the_image_answer_is_conditional_like_the_file(api, photo):
    first = api.get(f"/api/photos/{photo.pk}", HTTP_ACCEPT="image/*")
    body(first)
    again = api.get(f"/api/photos/{photo.pk}", HTTP_ACCEPT="image/*", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
