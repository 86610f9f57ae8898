"""InvokeAI boards as albums, against the fake InvokeAI: import (once, again, as a sync), "none" as
Uncategorized, sending an album or a selection to a board, the command and the API."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from albums import services
from albums.models import Album
from backends import manager
from photos import storage
from photos.models import Photo
from testing import fake_invokeai

pytestmark = pytest.mark.django_db

METADATA = {
    "positive_prompt": "a lighthouse at dusk",
    "negative_prompt": "blurry",
    "seed": 1234,
    "steps": 8,
    "cfg_scale": 7.5,
    "scheduler": "euler",
    "width": 64,
    "height": 64,
    "model": {"key": "k-1", "hash": "h-1", "name": "tiny-sd1", "base": "sd-1", "type": "main"},
}


@pytest.fixture
def invokeai(use_fake_invokeai):
    return use_fake_invokeai


def put_image(fake, board_id: str | None, seed: int = 1, metadata: dict | None = METADATA) -> str:
    png = fake_invokeai._noise_png(64, 64, seed, metadata, {"nodes": {}, "edges": []})
    image = fake._store_image(
        png,
        category="general",
        is_intermediate=False,
        origin="internal",
        metadata=metadata,
        board_id=board_id,
        at=fake.clock.now,
    )
    return image.name


def board(fake, name: str) -> str:
    board_id = f"board-{len(fake.boards) + 1}"
    fake.boards[board_id] = name
    return board_id


def test_boards_become_albums_and_none_is_uncategorized(invokeai, user):
    tigers = board(invokeai, "Tigers")
    first, second = put_image(invokeai, tigers, 1), put_image(invokeai, tigers, 2)
    loose = put_image(invokeai, None, 3, metadata=None)

    result = services.boards_import(owner=user)

    assert (result.albums, result.added, result.failed) == (1, 3, 0)
    album = Album.objects.get(invokeai_board_id=tigers)
    assert album.name == "Tigers" and album.owner == user
    assert set(album.entries.values_list("photo__invoke_id", flat=True)) == {first, second}
    photo = Photo.objects.get(invoke_id=first)
    assert photo.retrieval_status == "completed" and photo.is_generated and photo.width == 64
    assert (photo.generation_prompt, photo.generation_negative_prompt) == ("a lighthouse at dusk", "blurry")
    assert photo.seed == 1234
    assert photo.model_name == "tiny-sd1" and photo.generation_params["steps"] == 8
    assert photo.generation_params["invokeai_board"] == "Tigers"
    uncategorized = Photo.objects.get(invoke_id=loose)
    assert not uncategorized.album_entries.exists() and uncategorized.generation_prompt == ""

    again = services.boards_import(owner=user)

    assert (again.added, again.already_there) == (0, 3)
    assert Photo.objects.count() == 3 and Album.objects.count() == 1 and album.entries.count() == 2


def test_a_sync_picks_up_new_images(invokeai, user):
    tigers = board(invokeai, "Tigers")
    put_image(invokeai, tigers, 1)
    services.boards_import(owner=user, boards=["Tigers"], sync=True)
    album = Album.objects.get()
    assert album.invokeai_sync
    new = put_image(invokeai, tigers, 2)

    assert services.boards_sync() == 1
    assert album.entries.filter(photo__invoke_id=new).exists()
    assert services.boards_sync() == 0


def test_a_board_name_taken_by_an_album_gets_another(invokeai, user):
    services.album_create(owner=user, name="Tigers")
    board(invokeai, "Tigers")

    services.boards_import(owner=user)

    assert sorted(Album.objects.values_list("name", flat=True)) == ["Tigers", "Tigers (InvokeAI)"]


def test_the_command_imports_one_board_with_a_progress_bar(invokeai, user):
    put_image(invokeai, board(invokeai, "Tigers"), 1)
    put_image(invokeai, board(invokeai, "Cats"), 2)
    out, err = io.StringIO(), io.StringIO()

    call_command("import_boards", "--board", "Cats", stdout=out, stderr=err)

    assert list(Album.objects.values_list("name", flat=True)) == ["Cats"]
    assert "1 album(s): 1 image(s) imported" in out.getvalue()
    with pytest.raises(CommandError, match="has no board Dogs"):
        call_command("import_boards", "--board", "Dogs", stdout=out, stderr=err)


def test_the_api_queues_the_import(api, invokeai, user, monkeypatch):
    queued = []
    monkeypatch.setattr("albums.api.async_task", lambda *args: queued.append(args) or "task-1")

    answer = api.post("/api/albums/import-boards/", {"board_ids": ["board-1"], "sync": True}, format="json")

    assert answer.status_code == 202 and answer.json() == {"task_id": "task-1"}
    assert queued == [("albums.tasks.boards_import", user.pk, ["board-1"], True)]
    assert api.post("/api/albums/import-boards/", {}, format="json").status_code == 202
    assert queued[1][2] is None


def test_an_album_is_sent_to_its_own_board_and_nothing_is_uploaded_twice(api, invokeai, user, gallery_photo):
    album = services.album_create(owner=user, name="Holiday")
    mine = [gallery_photo(size=(200, 150)), gallery_photo(size=(150, 200), color=(200, 10, 10))]
    imported_name = put_image(invokeai, None, 9)
    services.boards_import(owner=user, boards=["none"])
    imported = Photo.objects.get(invoke_id=imported_name)
    services.album_add_photos(album_id=album.pk, owner=user, photo_ids=[*(photo.pk for photo in mine), imported.pk])
    uploads_before = invokeai.requests.count(("POST", "/api/v1/images/upload"))

    answer = api.post(f"/api/albums/{album.pk}/send-to-board/", {}, format="json")

    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["board_name"], body["sent"], body["uploaded"]) == ("Holiday", 3, 2)
    album.refresh_from_db()
    assert album.invokeai_board_id == body["board_id"] and invokeai.boards[body["board_id"]] == "Holiday"
    on_board = {name for name, image in invokeai.images.items() if image.board_id == body["board_id"]}
    assert imported_name in on_board and len(on_board) == 3
    assert invokeai.requests.count(("POST", "/api/v1/images/upload")) == uploads_before + 2

    again = api.post(f"/api/albums/{album.pk}/send-to-board/", {}, format="json").json()

    assert (again["board_id"], again["uploaded"]) == (body["board_id"], 0)
    assert len(invokeai.boards) == 1


def test_a_selection_goes_to_a_named_new_board_or_an_existing_one(api, invokeai, user, gallery_photo):
    photo = gallery_photo()
    existing = board(invokeai, "Canvas")

    named = api.post("/api/albums/send-to-board/", {"photo_ids": [str(photo.pk)], "board_name": "New"}, format="json")
    to_existing = api.post(
        "/api/albums/send-to-board/", {"photo_ids": [str(photo.pk)], "board_id": existing}, format="json"
    )
    missing = api.post("/api/albums/send-to-board/", {"photo_ids": [str(photo.pk)], "board_id": "nope"}, format="json")

    assert named.status_code == 200 and named.json()["board_name"] == "New" and named.json()["uploaded"] == 1
    assert to_existing.status_code == 200 and to_existing.json()["uploaded"] == 0
    assert missing.status_code == 404
    photo.refresh_from_db()
    assert invokeai.images[photo.invoke_id].board_id == existing


def test_an_image_that_will_not_download_is_counted_and_the_rest_imported(invokeai, user):
    tigers = board(invokeai, "Tigers")
    good = put_image(invokeai, tigers, 1)
    bad = put_image(invokeai, tigers, 2)
    invokeai.images[bad].png = b"not a png"

    result = services.boards_import(owner=user)

    assert (result.added, result.failed) == (1, 1) and bad in result.errors[0]
    assert list(Photo.objects.values_list("invoke_id", flat=True)) == [good]


def _upload(user, data: bytes, name: str) -> Photo:
    from photos import services as photo_services

    return photo_services.photo_create(owner=user, file=io.BytesIO(data), filename=name, size=len(data)).photo


def test_a_heic_goes_to_invokeai_as_a_jpeg_turned_as_the_gallery_shows_it(api, invokeai, user, monkeypatch):
    from PIL import Image

    from backends.invokeai.client import InvokeAIClient
    from photos.tests.images import heic_turned, image_bytes

    heic = _upload(user, heic_turned((160, 120), orientation=6), "phone.heic")
    webp = _upload(user, image_bytes("WEBP", (120, 100)), "a.webp")
    assert (heic.width, heic.height) == (120, 160)
    sent: dict[str, bytes] = {}
    upload = InvokeAIClient.upload_image

    def spy(self, *, data, filename, **kwargs):
        sent[filename] = data
        return upload(self, data=data, filename=filename, **kwargs)

    monkeypatch.setattr(InvokeAIClient, "upload_image", spy)

    answer = api.post(
        "/api/albums/send-to-board/", {"photo_ids": [str(heic.pk), str(webp.pk)], "board_name": "Canvas"}, format="json"
    )

    assert answer.status_code == 200, answer.content
    assert (answer.json()["sent"], answer.json()["uploaded"]) == (2, 2)
    assert set(sent) == {f"{heic.pk}.jpg", f"{webp.pk}.webp"}
    # A format InvokeAI reads goes as it is.
    assert sent[f"{webp.pk}.webp"] == storage.read_bytes(webp.local_storage_path)
    heic.refresh_from_db()
    with Image.open(io.BytesIO(invokeai.images[heic.invoke_id].png)) as received:
        assert received.size == (120, 160)
        # The stored top-left corner is the upright picture's top-right after a quarter turn clockwise.
        red, _, blue = received.convert("RGB").getpixel((110, 5))
        assert blue > 200 and red < 60
        assert received.convert("RGB").getpixel((5, 5))[0] > 150


def test_the_fake_refuses_a_heic_as_invokeai_does(invokeai):
    from backends.invokeai.errors import InvokeAIError
    from photos.tests.images import heic_turned

    client = manager.invokeai_client()
    with pytest.raises(InvokeAIError) as error:
        client.upload_image(data=heic_turned(), filename="a.heic", category="user")
    assert "Failed to read image" in error.value.message
