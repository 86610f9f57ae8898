"""The albums and share-links API: shapes, status codes, both slash forms, and query counts."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from albums import services
from albums.models import ShareLink
from photos import services as photo_services
from photos.tests.factories import PhotoFactory

from .conftest import ids_in

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/api/albums/", "/api/albums"])
def test_create_then_list(api, path):
    response = api.post(path, {"name": "Trip", "description": "Alps"}, format="json")
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["photo_ids"] == []
    assert created["page_url"] == f"/albums/{created['id']}/"

    listed = api.get(path).json()
    assert [(a["name"], a["photo_count"], a["cover_thumbnail_url"]) for a in listed] == [("Trip", 0, None)]


def test_create_refuses_a_taken_or_reserved_name(api, album):
    for name in ("HOLIDAY", "Uncategorized", ""):
        response = api.post("/api/albums/", {"name": name}, format="json")
        assert response.status_code == 400, name
        assert set(response.json()) == {"code", "message", "details"}


def test_retrieve_update_delete(api, album, photos, user):
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[photos[0].pk, photos[1].pk])
    body = api.get(f"/api/albums/{album.pk}").json()
    assert body["photo_ids"] == [str(photos[0].pk), str(photos[1].pk)]
    assert body["cover_thumbnail_url"] == f"/api/photos/{photos[0].pk}/thumbnail"

    patched = api.patch(
        f"/api/albums/{album.pk}/",
        {"name": "Renamed", "is_archived": True, "cover_photo_id": str(photos[1].pk)},
        format="json",
    ).json()
    assert (patched["name"], patched["is_archived"], patched["cover_photo_id"]) == (
        "Renamed",
        True,
        str(photos[1].pk),
    )
    assert patched["cover_thumbnail_url"] == f"/api/photos/{photos[1].pk}/thumbnail"
    reset = api.patch(f"/api/albums/{album.pk}", {"cover_photo_id": None}, format="json").json()
    assert reset["cover_photo_id"] is None

    assert api.delete(f"/api/albums/{album.pk}/").status_code == 204
    assert api.get(f"/api/albums/{album.pk}/").status_code == 404
    assert api.get(f"/api/photos/{photos[0].pk}/").status_code == 200


def test_unknown_album_is_404(api):
    response = api.get(f"/api/albums/{uuid.uuid4()}/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_add_and_remove_photos(api, album, photos):
    url = f"/api/albums/{album.pk}/photos/"
    added = api.post(url, {"photo_ids": [str(photos[0].pk), str(photos[1].pk)]}, format="json")
    assert added.json() == {"added": 2}
    again = api.post(url.rstrip("/"), {"photo_ids": [str(photos[1].pk), str(photos[2].pk)]}, format="json")
    assert again.json() == {"added": 1}
    assert ids_in(album) == [photos[0].pk, photos[1].pk, photos[2].pk]

    removed = api.delete(url, {"photo_ids": [str(photos[1].pk)]}, format="json")
    assert removed.json() == {"removed": 1}
    assert ids_in(album) == [photos[0].pk, photos[2].pk]


@pytest.mark.parametrize("body", [{}, {"photo_ids": []}, {"photo_ids": ["nope"]}, {"photo_ids": "x"}])
def test_bad_photo_ids_are_400(api, album, body):
    response = api.post(f"/api/albums/{album.pk}/photos/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_adding_a_trashed_photo_is_400(api, album, photos, user):
    photo_services.photo_delete(owner=user, photo_id=photos[0].pk)
    response = api.post(f"/api/albums/{album.pk}/photos/", {"photo_ids": [str(photos[0].pk)]}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_photos"


def test_reorder(api, album, photos, user):
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[p.pk for p in photos[:3]])
    order = [str(photos[i].pk) for i in (2, 0, 1)]
    response = api.post(f"/api/albums/{album.pk}/reorder", {"photo_ids": order}, format="json")
    assert response.status_code == 200
    assert response.json()["photo_ids"] == order

    stale = api.post(f"/api/albums/{album.pk}/reorder/", {"photo_ids": order[:2]}, format="json")
    assert stale.status_code == 409
    assert stale.json()["code"] == "album_changed"


def test_photo_list_by_album_in_album_order_with_cursor(api, album, photos, user):
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[p.pk for p in photos])
    order = [photos[i].pk for i in (3, 0, 4, 1, 2)]
    services.album_reorder(owner=user, album_id=album.pk, photo_ids=order)

    seen, cursor = [], ""
    while True:
        body = api.get(f"/api/photos/?album_id={album.pk}&limit=2&cursor={cursor}").json()
        assert body["total"] == 5
        seen += [item["id"] for item in body["items"]]
        if not (cursor := body["next_cursor"]):
            break
    assert seen == [str(pk) for pk in order]
    # sort does not apply to an album; offsets work as for the gallery.
    body = api.get(f"/api/photos/?album_id={album.pk}&sort=oldest&offset=3").json()
    assert [item["id"] for item in body["items"]] == [str(pk) for pk in order[3:]]


def test_photo_list_uncategorized_and_bad_album_ids(api, album, photos, user):
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[photos[0].pk])
    body = api.get("/api/photos/?album_id=none").json()
    assert body["total"] == 4
    assert str(photos[0].pk) not in {item["id"] for item in body["items"]}
    assert api.get(f"/api/photos/?album_id={uuid.uuid4()}").json()["total"] == 0

    assert api.get("/api/photos/?album_id=holiday").status_code == 400
    date_cursor = api.get("/api/photos/?limit=1").json()["next_cursor"]
    response = api.get(f"/api/photos/?album_id={album.pk}&cursor={date_cursor}")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_cursor"


def test_move(api, album, photos, user):
    other = services.album_create(owner=user, name="Other")
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[photos[0].pk, photos[1].pk])
    body = {"photo_ids": [str(photos[0].pk)], "from_album_id": str(album.pk), "to_album_id": str(other.pk)}
    assert api.post("/api/albums/move/", body, format="json").status_code == 204
    assert (ids_in(album), ids_in(other)) == ([photos[1].pk], [photos[0].pk])

    to_none = {"photo_ids": [str(photos[0].pk)], "from_album_id": str(other.pk), "to_album_id": "none"}
    assert api.post("/api/albums/move", to_none, format="json").status_code == 204
    assert ids_in(other) == []
    bad = {"photo_ids": [str(photos[0].pk)], "from_album_id": "none", "to_album_id": "somewhere"}
    assert api.post("/api/albums/move/", bad, format="json").status_code == 400


def test_album_list_query_count_does_not_grow(api, django_assert_num_queries, user):
    def fill(count):
        for _ in range(count):
            album = services.album_create(owner=user, name=f"A{uuid.uuid4().hex[:6]}")
            services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[PhotoFactory().pk for _ in range(3)])

    fill(2)
    with django_assert_num_queries(1):
        api.get("/api/albums/")
    fill(10)
    with django_assert_num_queries(1):
        assert len(api.get("/api/albums/").json()) == 12


def test_album_detail_query_count_does_not_grow(api, album, django_assert_num_queries, user):
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[PhotoFactory().pk for _ in range(2)])
    with django_assert_num_queries(2):  # the album (count and cover annotated) + its photo ids
        api.get(f"/api/albums/{album.pk}/")
    services.album_add_photos(owner=user, album_id=album.pk, photo_ids=[PhotoFactory().pk for _ in range(40)])
    with django_assert_num_queries(2):
        assert len(api.get(f"/api/albums/{album.pk}/").json()["photo_ids"]) == 42


# --- Share links ---


def test_share_album_answers_201_with_the_link_once(api, album):
    response = api.post(
        f"/api/albums/{album.pk}/shares/",
        {
            "expires_in": "7d",
            "max_views": 5,
            "allow_download": True,
            "max_downloads": 2,
            "password": "open sesame",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    token = body["url"].rsplit("/s/", 1)[1].strip("/")
    assert body["url"] == f"http://testserver/s/{token}/"
    assert len(token) >= 43
    assert body["album_id"] == str(album.pk)
    assert (body["max_views"], body["max_downloads"], body["allow_download"]) == (5, 2, True)
    assert body["has_password"] is True and "password" not in body
    assert body["status"] == "active"
    assert 6.9 < (ShareLink.objects.get().expires_at - timezone.now()).total_seconds() / 86400 < 7.1

    listed = api.get("/api/shares/").json()
    assert len(listed) == 1
    assert "url" not in listed[0] and token not in str(listed)
    stored = ShareLink.objects.get()
    assert token not in stored.token_hash and stored.password.startswith("md5$")


def test_share_photo(api, photos):
    response = api.post(f"/api/photos/{photos[0].pk}/shares", {}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["photo_id"], body["album_id"], body["expires_at"]) == (str(photos[0].pk), None, None)
    assert body["target_name"] == photos[0].filename


@pytest.mark.parametrize(
    "body",
    [
        {"expires_in": "forever"},
        {"expires_at": "2001-01-01T00:00:00Z"},
        {"expires_in": "1d", "expires_at": "2099-01-01T00:00:00Z"},
        {"max_views": 0},
        {"max_downloads": 3},
        {"password": "abc"},
    ],
)
def test_share_settings_are_validated(api, album, body):
    response = api.post(f"/api/albums/{album.pk}/shares/", body, format="json")
    assert response.status_code == 400, body
    assert not ShareLink.objects.exists()


def test_sharing_something_missing_is_404(api):
    assert api.post(f"/api/albums/{uuid.uuid4()}/shares/", {}, format="json").status_code == 404
    assert api.post(f"/api/photos/{uuid.uuid4()}/shares/", {}, format="json").status_code == 404


def test_list_filters_and_revoke(api, album, photos, user):
    album_link = services.share_link_create(owner=user, album_id=album.pk).link
    photo_link = services.share_link_create(owner=user, photo_id=photos[0].pk).link
    assert {s["id"] for s in api.get(f"/api/shares/?album_id={album.pk}").json()} == {str(album_link.pk)}
    assert {s["id"] for s in api.get(f"/api/shares/?photo_id={photos[0].pk}").json()} == {str(photo_link.pk)}

    assert api.delete(f"/api/shares/{album_link.pk}/").status_code == 204
    assert api.delete(f"/api/shares/{album_link.pk}").status_code == 204  # revoking twice is fine
    statuses = {s["id"]: s["status"] for s in api.get("/api/shares/").json()}
    assert statuses == {str(album_link.pk): "revoked", str(photo_link.pk): "active"}
    assert [s["id"] for s in api.get("/api/shares/?active=true").json()] == [str(photo_link.pk)]
    assert api.delete(f"/api/shares/{uuid.uuid4()}/").status_code == 404


def test_share_list_query_count_does_not_grow(api, album, django_assert_num_queries, user):
    services.share_link_create(owner=user, album_id=album.pk)
    with django_assert_num_queries(1):
        api.get("/api/shares/")
    for _ in range(5):
        services.share_link_create(owner=user, photo_id=PhotoFactory().pk)
        services.share_link_create(owner=user, album_id=album.pk)
    with django_assert_num_queries(1):
        assert len(api.get("/api/shares/").json()) == 11


def test_anonymous_api_calls_are_refused(anon_api, album):
    for method, path in [
        ("get", "/api/albums/"),
        ("post", f"/api/albums/{album.pk}/shares/"),
        ("get", "/api/shares/"),
        ("post", "/api/albums/move/"),
    ]:
        assert getattr(anon_api, method)(path).status_code == 401, path


def test_an_unknown_expiry_preset_names_the_valid_ones(api, album):
    response = api.post(f"/api/albums/{album.pk}/shares/", {"expires_in": "86400"}, format="json")
    assert response.json()["message"] == "expires_in: Use one of 1h, 1d, 7d, 30d, never, or give expires_at instead."
