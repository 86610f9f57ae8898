"""Favourites, bulk actions on a selection, and the streamed ZIP of originals."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from photos import archive
from photos.models import Photo, PhotoTally
from testing.accounts import other_account
from testing.media import remove, stored_bytes

from .factories import PhotoFactory
from .images import image_bytes

pytestmark = pytest.mark.django_db


def tally(photo, name=PhotoTally.LIVE) -> int:
    row = PhotoTally.objects.filter(owner=photo.owner, name=name).first()
    return row.count if row else 0


def test_favourite_one_photo_and_filter_by_favourites(api, django_assert_num_queries):
    photos = PhotoFactory.create_batch(4)
    response = api.patch(f"/api/photos/{photos[1].pk}/", {"is_favorite": True}, format="json")
    assert response.status_code == 200 and response.json()["is_favorite"] is True
    api.patch(f"/api/photos/{photos[3].pk}/", {"is_favorite": True}, format="json")
    # The favourites' page and their count: the same queries however many photos there are.
    with django_assert_num_queries(2):
        body = api.get("/api/photos/?favorite=true&sort=taken").json()
    assert {item["id"] for item in body["items"]} == {str(photos[1].pk), str(photos[3].pk)}
    assert body["total"] == 2
    assert api.get("/api/photos/?favorite=false").json()["total"] == 2
    api.patch(f"/api/photos/{photos[1].pk}/", {"is_favorite": False}, format="json")
    assert api.get("/api/photos/?favorite=true").json()["total"] == 1
    assert api.patch(f"/api/photos/{photos[1].pk}/", {"is_favorite": "maybe"}, format="json").status_code == 400
    assert api.patch(f"/api/photos/{photos[1].pk}/", {"filename": "x"}, format="json").status_code == 400


def test_bulk_trash_restore_and_favourite(api):
    photos = PhotoFactory.create_batch(5)
    ids = [str(photo.pk) for photo in photos[:3]]

    def bulk(action, photo_ids=ids):
        return api.post("/api/photos/bulk/", {"action": action, "photo_ids": photo_ids}, format="json").json()

    assert bulk("trash") == {"changed": 3}
    assert tally(photos[0]) == 2 and tally(photos[0], PhotoTally.TRASH) == 3
    # Trashing again changes nothing; restoring brings them back.
    assert api.post("/api/photos/bulk/", {"action": "trash", "photo_ids": ids}, format="json").json() == {"changed": 0}
    assert api.post("/api/photos/bulk/", {"action": "restore", "photo_ids": ids}, format="json").json() == {
        "changed": 3
    }
    assert tally(photos[0]) == 5
    assert bulk("favorite", ids + ids) == {"changed": 3}
    assert set(Photo.objects.filter(is_favorite=True).values_list("pk", flat=True)) == {p.pk for p in photos[:3]}
    bulk("unfavorite", ids[:1])
    assert Photo.objects.filter(is_favorite=True).count() == 2


def test_bulk_with_an_unknown_or_foreign_photo_changes_nothing(api):
    mine = PhotoFactory()
    theirs = PhotoFactory(owner=other_account())
    for photo_ids in ([str(mine.pk), str(theirs.pk)], [str(mine.pk), "00000000-0000-4000-8000-000000000000"]):
        response = api.post("/api/photos/bulk/", {"action": "trash", "photo_ids": photo_ids}, format="json")
        assert response.status_code == 400
        assert response.json()["code"] == "unknown_photos"
        assert response.json()["details"]["photo_ids"] == photo_ids[1:]
    assert not Photo.objects.filter(deleted_at__isnull=False).exists()
    for body in (
        {"action": "burn", "photo_ids": [str(mine.pk)]},
        {"action": "trash", "photo_ids": []},
        {"action": "trash"},
    ):
        assert api.post("/api/photos/bulk/", body, format="json").status_code == 400


def original(photo) -> bytes:
    return stored_bytes(photo.local_storage_path)


def zip_of(response) -> zipfile.ZipFile:
    assert response.status_code == 200, response.content if not response.streaming else ""
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith('attachment; filename="photos-')
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_download_streams_a_zip_of_the_originals(api, upload):
    first = upload("../../etc/beach.jpg", image_bytes("JPEG", color=(10, 20, 30)))
    second = upload("beach.jpg", image_bytes("JPEG", color=(30, 20, 10)))
    third = upload("C:\\Users\\me\\forest.png", image_bytes("PNG"))
    Photo.objects.filter(pk=first.pk).update(taken_at=datetime(2019, 5, 6, 7, 8, 10, tzinfo=UTC))
    ids = [str(third.pk), str(first.pk), str(second.pk)]
    response = api.post("/api/photos/download/", {"photo_ids": ids}, format="json")
    assert response.streaming
    with zip_of(response) as archive_file:
        assert archive_file.testzip() is None
        names = archive_file.namelist()
        # By date taken; no folder part survives, and two files of one name both arrive.
        assert names == ["beach.jpg", "beach (2).jpg", "forest.png"]
        assert archive_file.read("beach.jpg") == original(first)
        assert archive_file.getinfo("beach.jpg").date_time == (2019, 5, 6, 7, 8, 10)
        assert archive_file.getinfo("forest.png").compress_type == zipfile.ZIP_STORED


def test_download_by_form_post_as_the_gallery_sends_it(owner_client, upload):
    photo = upload("cat.jpg")
    response = owner_client.post("/api/photos/download/", {"photo_ids": [str(photo.pk)]})
    with zip_of(response) as archive_file:
        assert archive_file.namelist() == ["cat.jpg"]


def test_download_is_refused_whole_before_anything_is_sent(api, upload):
    photo = upload("cat.jpg")
    theirs = PhotoFactory(owner=other_account())
    pending = PhotoFactory(retrieval_status=Photo.RetrievalStatus.PENDING, is_generated=True)
    for ids, code in (([photo.pk, theirs.pk], "unknown_photos"), ([photo.pk, pending.pk], "not_retrieved")):
        response = api.post("/api/photos/download/", {"photo_ids": [str(pk) for pk in ids]}, format="json")
        assert not response.streaming and response.status_code == 400
        assert response.json()["code"] == code
    assert api.post("/api/photos/download/", {"photo_ids": ["nope"]}, format="json").status_code == 400


def test_a_file_gone_mid_download_is_listed_not_fatal(api, upload):
    kept, gone = upload("kept.jpg"), upload("gone.jpg")
    response = api.post("/api/photos/download/", {"photo_ids": [str(kept.pk), str(gone.pk)]}, format="json")
    remove(gone.local_storage_path)
    with zip_of(response) as archive_file:
        assert archive_file.namelist() == ["kept.jpg", archive.MISSING_LIST]
        assert str(gone.pk) in archive_file.read(archive.MISSING_LIST).decode()


def test_the_zip_is_made_a_chunk_at_a_time(upload, settings):
    """No chunk holds more than one read of a file (plus headers): the archive is never whole in memory."""
    settings.MAX_UPLOAD_SIZE = 50 * 1024 * 1024
    noise = image_bytes("PNG", (1800, 1800))  # about 3 MB of stripes
    photos = [upload(f"big{i}.png", noise) for i in range(3)]
    chunks = list(archive.zip_stream(Photo.objects.filter(pk__in=[p.pk for p in photos]).order_by("taken_at")))
    assert max(len(chunk) for chunk in chunks) <= 1024 * 1024 + 1024
    assert len(chunks) >= 3
    with zipfile.ZipFile(io.BytesIO(b"".join(chunks))) as archive_file:
        assert [info.file_size for info in archive_file.infolist()] == [len(noise)] * 3


def test_gallery_favourites_filter_and_bulk_buttons(owner_client):
    starred, plain = PhotoFactory(is_favorite=True), PhotoFactory(created_at=timezone.now())
    html = owner_client.get("/?favorites=1").content.decode()
    assert str(starred.pk) in html and str(plain.pk) not in html
    assert 'name="favorites" value="1" checked' in html
    page = owner_client.get("/").content.decode()
    assert f'data-action="favorite" data-photo-id="{starred.pk}" aria-pressed="true"' in page
    assert f'data-action="favorite" data-photo-id="{plain.pk}" aria-pressed="false"' in page
    for action in ("bulk-favorite", "bulk-download", "bulk-trash", "add-to-album"):
        assert f'data-action="{action}"' in page
    assert owner_client.get("/?favorites=yes").status_code == 400
    trash = owner_client.get("/trash/").content.decode()
    assert 'data-action="bulk-restore"' in trash
