from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from photos.models import Photo
from testing.media import remove

from .conftest import as_upload
from .factories import PhotoFactory
from .images import image_bytes

pytestmark = pytest.mark.django_db


def consume(response) -> bytes:
    """Read a file response to its end, which closes the file (response.close() would also close the
    test's database connection through the request_finished signal)."""
    return b"".join(response.streaming_content)


def make_photos(count: int, **kwargs) -> list[Photo]:
    start = timezone.now() - timedelta(days=1)
    return [PhotoFactory(created_at=start + timedelta(seconds=i), **kwargs) for i in range(count)]


def test_list_shape_and_default_order(api):
    photos = make_photos(3)
    body = api.get("/api/photos/").json()

    assert set(body) == {"items", "total", "limit", "offset", "next_cursor"}
    assert (body["total"], body["limit"], body["offset"]) == (3, 50, 0)
    assert [item["id"] for item in body["items"]] == [str(p.id) for p in reversed(photos)]
    assert body["items"][0]["thumbnail_url"] == f"/api/photos/{photos[-1].id}/thumbnail"


def test_list_filters_sort_and_offset(api):
    uploaded = make_photos(3)
    generated = make_photos(2, is_generated=True, generation_prompt="a cat")
    PhotoFactory(deleted_at=timezone.now())

    assert api.get("/api/photos/").json()["total"] == 5
    assert {i["id"] for i in api.get("/api/photos/?generated=true").json()["items"]} == {str(p.id) for p in generated}
    assert {i["id"] for i in api.get("/api/photos/?generated=false").json()["items"]} == {str(p.id) for p in uploaded}
    oldest = api.get("/api/photos/?generated=false&sort=oldest&limit=2&offset=1").json()
    assert [i["id"] for i in oldest["items"]] == [str(uploaded[1].id), str(uploaded[2].id)]
    assert (oldest["limit"], oldest["offset"]) == (2, 1)


@pytest.mark.parametrize("sort", ["newest", "oldest"])
def test_cursor_walks_every_photo_once(api, sort):
    photos = make_photos(7)
    # Two photos with the same timestamp: the cursor must still not skip or repeat one.
    Photo.objects.filter(pk__in=[photos[2].pk, photos[3].pk]).update(created_at=photos[2].created_at)
    seen, cursor = [], ""
    while True:
        body = api.get(f"/api/photos/?limit=3&sort={sort}&cursor={cursor}").json()
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(str(p.id) for p in photos)
    assert len(seen) == 7


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("limit=0", "invalid"),
        ("limit=1000", "invalid"),
        ("sort=sideways", "invalid"),
        ("cursor=nonsense", "invalid_cursor"),
        ("generated=maybe", "invalid"),
        ("offset=-1", "invalid"),
    ],
)
def test_bad_list_parameters_are_400(api, query, code):
    response = api.get(f"/api/photos/?{query}")
    assert response.status_code == 400
    assert response.json()["code"] == code


def test_list_query_count_does_not_grow_with_rows(api, django_assert_num_queries):
    make_photos(2)
    with django_assert_num_queries(2):  # count + page
        api.get("/api/photos/")
    make_photos(40)
    with django_assert_num_queries(2):
        assert len(api.get("/api/photos/").json()["items"]) == 42


@pytest.mark.parametrize("path", ["/api/photos/", "/api/photos"])
def test_upload_answers_201_with_and_without_slash(api, path):
    response = api.post(
        path,
        {"file": as_upload("p.png", image_bytes("PNG")), "image_category": "control"},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["image_category"] == "control"
    assert body["duplicate_of"] == []
    assert response.json()["id"] == str(Photo.objects.get().id)


def test_upload_reports_duplicates(api):
    data = image_bytes()
    first = api.post("/api/photos/", {"file": as_upload("a.jpg", data)}, format="multipart").json()
    second = api.post("/api/photos/", {"file": as_upload("b.jpg", data)}, format="multipart").json()
    assert second["duplicate_of"] == [first["id"]]


def test_detail_file_thumbnail_and_display(api, upload):
    data = image_bytes("JPEG", (2000, 1000))
    photo = upload("x.jpg", data)

    for path in (f"/api/photos/{photo.id}/", f"/api/photos/{photo.id}"):
        assert api.get(path).json()["checksum"] == photo.checksum

    original = api.get(f"/api/photos/{photo.id}/file")
    assert original.status_code == 200
    assert original["Content-Type"] == "image/jpeg"
    assert b"".join(original.streaming_content) == data
    assert original["X-Content-Type-Options"] == "nosniff"
    assert "max-age=31536000" in original["Cache-Control"]

    thumb = api.get(f"/api/photos/{photo.id}/thumbnail/")
    assert thumb["Content-Type"] == "image/webp"
    assert thumb["ETag"] and thumb["Last-Modified"]
    display = api.get(f"/api/photos/{photo.id}/display")
    assert display["Content-Type"] == "image/webp"
    assert display["ETag"] != thumb["ETag"]
    for response in (thumb, display):
        consume(response)


def test_conditional_get_answers_304(api, upload):
    photo = upload()
    first = api.get(f"/api/photos/{photo.id}/thumbnail")
    consume(first)
    again = api.get(f"/api/photos/{photo.id}/thumbnail", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    assert again["ETag"] == first["ETag"]
    since = api.get(f"/api/photos/{photo.id}/thumbnail", HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])
    assert since.status_code == 304


def test_missing_file_is_404_not_500(api, upload, _photo_store):
    photo = upload()
    remove(photo.local_thumbnail_path)
    response = api.get(f"/api/photos/{photo.id}/thumbnail")
    assert response.status_code == 404
    assert response.json()["code"] == "file_missing"


def test_pending_generated_photo_has_no_file_yet(api):
    photo = PhotoFactory(is_generated=True, retrieval_status="pending", local_storage_path="", local_thumbnail_path="")
    response = api.get(f"/api/photos/{photo.id}/thumbnail")
    assert response.status_code == 404
    assert response.json()["code"] == "not_retrieved"


def test_delete_and_restore(api, upload):
    photo = upload()
    assert api.delete(f"/api/photos/{photo.id}/").status_code == 204
    assert api.get("/api/photos/").json()["total"] == 0
    assert api.get(f"/api/photos/{photo.id}/").json()["deleted_at"] is not None
    # The owner can still see a trashed photo's thumbnail (the trash page shows it).
    thumbnail = api.get(f"/api/photos/{photo.id}/thumbnail")
    assert thumbnail.status_code == 200
    consume(thumbnail)

    restored = api.post(f"/api/photos/{photo.id}/restore")
    assert restored.status_code == 200
    assert restored.json()["deleted_at"] is None


def test_unknown_photo_is_404_json(api):
    response = api.get("/api/photos/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    assert response.json() == {
        "code": "not_found",
        "message": "This photo does not exist.",
        "details": {"photo_id": "00000000-0000-0000-0000-000000000000"},
    }
    assert api.get("/api/no-such-thing/").json()["code"] == "not_found"


def test_retry_of_an_uploaded_photo_is_409(api, upload):
    response = api.post(f"/api/photos/{upload().id}/retry/")
    assert response.status_code == 409
    assert response.json()["code"] == "nothing_to_retry"


def test_token_auth(anon_api, user):
    response = anon_api.post("/api/auth/token/", {"username": "owner", "password": "correct horse battery"})
    assert response.status_code == 200
    token = response.json()["token"]
    anon_api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert anon_api.get("/api/photos").status_code == 200

    wrong = anon_api.post("/api/auth/token", {"username": "owner", "password": "nope"})
    assert wrong.status_code == 400
    assert wrong.json()["code"] == "invalid"


def test_unauthenticated_api_is_401_with_error_body(anon_api):
    response = anon_api.get("/api/photos/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"


def test_openapi_schema_and_docs(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/photos/{id}/file" in schema.json()["paths"] or any("file" in p for p in schema.json()["paths"])
    docs = api.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()
