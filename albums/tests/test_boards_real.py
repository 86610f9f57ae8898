"""A board round trip on a real InvokeAI: `INVOKEAI_TEST_URL=http://127.0.0.1:9090 pytest -m invokeai albums`.

A board made on InvokeAI (named workflows-..., deleted afterwards with the images put there) is imported as an
album, then the album, with a gallery photo added, is sent back to a new board.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from albums import services
from albums.models import Album
from backends import manager
from photos.models import Photo
from photos.tests.images import image_bytes
from testing.real_invokeai import MODULE_MARKS, REAL_URL

pytestmark = MODULE_MARKS


@pytest.fixture
def peer(settings):
    settings.INVOKEAI_LOCAL_URL = REAL_URL
    settings.INVOKEAI_READ_TIMEOUT = 60
    client = manager.invokeai_client(REAL_URL)
    made: dict[str, list[str]] = {"boards": [], "images": []}
    yield client, made
    for board_id in made["boards"]:
        client.delete_board(board_id)
    names = made["images"] + [name for name in Photo.objects.values_list("invoke_id", flat=True) if name]
    for name in set(names):
        requests.delete(f"{REAL_URL}/api/v1/images/i/{name}", timeout=30, headers={"Accept-Encoding": "identity"})


def test_a_board_round_trip(peer, user, gallery_photo):
    client, made = peer
    name = f"workflows-{uuid.uuid4().hex[:8]}"
    board = client.create_board(name)
    made["boards"].append(board.board_id)
    uploaded = client.upload_image(data=image_bytes("PNG", (64, 64)), filename="a.png", category="user")
    made["images"].append(uploaded.image_name)
    assert client.add_image_to_board(board_id=board.board_id, image_name=uploaded.image_name)

    result = services.boards_import(owner=user, boards=[name])
    again = services.boards_import(owner=user, boards=[board.board_id])

    assert (result.albums, result.added, result.failed) == (1, 1, 0), result.errors
    assert (again.added, again.already_there) == (0, 1)
    album = Album.objects.get(invokeai_board_id=board.board_id)
    photo = Photo.objects.get(invoke_id=uploaded.image_name)
    assert album.name == name and album.entries.filter(photo=photo).exists()
    assert photo.retrieval_status == "completed" and (photo.width, photo.height) == (64, 64)

    mine = gallery_photo(size=(160, 120))
    services.album_add_photos(album_id=album.pk, owner=user, photo_ids=[mine.pk])
    sent = services.board_send(owner=user, album_id=album.pk, board_name=f"{name}-back")
    made["boards"].append(sent.board_id)

    assert (sent.sent, sent.uploaded) == (2, 1)
    on_board = set(client.board_image_names(sent.board_id))
    mine.refresh_from_db()
    assert on_board == {uploaded.image_name, mine.invoke_id}
    assert client.board_image_names(board.board_id) == []


def test_a_heic_reaches_invokeai_as_an_upright_jpeg(peer, user):
    import io

    from PIL import Image

    from photos import services as photo_services
    from photos.tests.images import heic_turned

    client, made = peer
    data = heic_turned((160, 120), orientation=6)
    heic = photo_services.photo_create(owner=user, file=io.BytesIO(data), filename="phone.heic", size=len(data)).photo

    sent = services.board_send(owner=user, photo_ids=[heic.pk], board_name=f"workflows2-heic-{uuid.uuid4().hex[:8]}")
    made["boards"].append(sent.board_id)

    assert (sent.sent, sent.uploaded) == (1, 1)
    heic.refresh_from_db()
    assert client.board_image_names(sent.board_id) == [heic.invoke_id]
    with Image.open(io.BytesIO(client.image(heic.invoke_id))) as received:
        assert received.size == (120, 160)
        red, _, blue = received.convert("RGB").getpixel((110, 5))
        assert blue > 200 and red < 60
