"""Accounts and roles as people use them: each account has its own gallery, albums, links and sessions; only
staff run the backend; the admin shows a superuser everyone's rows. (The route-by-route walk is in
test_login_required.py.)"""

from __future__ import annotations

import io

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from backends.services import api_key_set, api_key_state, backend_settings_get
from photos import services as photo_services
from photos.models import Photo
from photos.tests.factories import PhotoFactory
from photos.tests.images import image_bytes
from testing.accounts import other_account

pytestmark = pytest.mark.django_db


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def owner_api(user) -> APIClient:
    return api_as(user)


@pytest.fixture
def guest():
    return other_account()


@pytest.fixture
def guest_api(guest) -> APIClient:
    return api_as(guest)


def upload(client: APIClient, name: str = "mine.jpg") -> str:
    file = SimpleUploadedFile(name, image_bytes(), content_type="image/jpeg")
    response = client.post("/api/photos/", {"file": file}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def test_each_account_has_its_own_gallery_albums_and_links(owner_api, guest_api):
    photo = upload(owner_api, "owner.jpg")
    album = owner_api.post("/api/albums/", {"name": "Family"}, format="json").json()["id"]
    owner_api.post(f"/api/albums/{album}/photos/", {"photo_ids": [photo]}, format="json")
    owner_api.post(f"/api/albums/{album}/shares/", {"expires_in": "7d"}, format="json")

    page = guest_api.get("/api/photos/").json()
    assert page["total"] == 0 and page["items"] == []
    assert guest_api.get(f"/api/photos/{photo}/file").status_code == 404
    assert guest_api.get(f"/api/photos/{photo}/thumbnail").status_code == 404
    assert guest_api.get("/api/albums/").json() == []
    assert guest_api.get("/api/shares/").json() == []
    assert guest_api.post(f"/api/albums/{album}/shares/", {"expires_in": "never"}, format="json").status_code == 404
    assert guest_api.post(f"/api/photos/{photo}/shares/", {}, format="json").status_code == 404
    assert guest_api.delete(f"/api/photos/{photo}/").status_code == 404
    assert Photo.objects.get(pk=photo).deleted_at is None

    # The guest's own gallery works as the owner's does, and the two totals are their own.
    upload(guest_api, "guest.jpg")
    assert guest_api.get("/api/photos/").json()["total"] == 1
    assert owner_api.get("/api/photos/").json()["total"] == 1
    # Album names are per account: the owner's "Family" neither blocks nor shows through.
    assert guest_api.post("/api/albums/", {"name": "Family"}, format="json").status_code == 201


def test_nothing_of_another_account_can_be_referred_to(owner_api, guest_api):
    theirs = upload(owner_api, "owner.jpg")
    mine = upload(guest_api, "guest.jpg")
    album = guest_api.post("/api/albums/", {"name": "Mine"}, format="json").json()["id"]

    added = guest_api.post(f"/api/albums/{album}/photos/", {"photo_ids": [mine, theirs]}, format="json")
    assert added.status_code == 400 and added.json()["details"]["photo_ids"] == [theirs]
    guest_api.post(f"/api/albums/{album}/photos/", {"photo_ids": [mine]}, format="json")
    cover = guest_api.patch(f"/api/albums/{album}/", {"cover_photo_id": theirs}, format="json")
    assert cover.status_code == 400
    session = guest_api.post("/api/generation/sessions/", {"source_image_id": theirs}, format="json")
    assert session.status_code == 404
    moved = guest_api.post(
        "/api/albums/move/", {"photo_ids": [theirs], "from_album_id": "none", "to_album_id": album}, format="json"
    )
    assert moved.status_code == 400
    assert guest_api.get(f"/api/photos/?album_id={album}").json()["total"] == 1


def test_only_staff_touch_the_backend(client, guest, guest_api, user):
    api_key_set(api_key="rp_the-owners-key")
    assert guest_api.post("/api/backend/mode", {"mode": "remote"}, format="json").status_code == 403
    assert guest_api.post("/api/backend/pod/start", {}, format="json").status_code == 403
    assert guest_api.post("/api/backend/pod/stop", {}, format="json").status_code == 403
    assert guest_api.get("/api/backend/pod-sessions/").status_code == 403
    assert guest_api.post("/api/models/refresh/").status_code == 403

    client.force_login(guest)
    assert client.get("/backend/").status_code == 403
    assert client.post("/backend/api-key/", {"remove": "on"}).status_code == 403
    assert client.post("/backend/settings/", {"local_backend_url": "http://127.0.0.1:1"}).status_code == 403
    assert client.post("/backend/pod/start/").status_code == 403
    assert client.post("/backend/mode/", {"mode": "remote"}).status_code == 403
    assert api_key_state().is_set
    assert backend_settings_get().backend_mode == "local" and backend_settings_get().local_backend_url == ""

    # What they may know of the backend: whether generating can work now; not where, or at what cost.
    status = guest_api.get("/api/backend/status").json()
    assert set(status) == {"mode", "connected", "api_version", "last_connected_at", "ready", "pod_state", "worker"}
    page = client.get("/").content.decode()
    assert 'href="/backend/"' not in page and "Backend</a>" not in page

    staff = other_account("operator", staff=True)
    assert "lifetime_cost" in api_as(staff).get("/api/backend/status").json()
    client.force_login(staff)
    assert client.get("/backend/").status_code == 200


def test_the_admin_shows_a_superuser_everyones_rows_and_other_staff_their_own(client, user):
    theirs = PhotoFactory(owner=other_account(), filename="guest-photo.jpg")
    mine = PhotoFactory(owner=user, filename="owner-photo.jpg")
    client.force_login(user)
    changelist = client.get("/admin/photos/photo/").content.decode()
    assert "guest-photo.jpg" in changelist and "owner-photo.jpg" in changelist
    assert "By owner" in changelist  # the filter
    filtered = client.get(f"/admin/photos/photo/?owner__id__exact={theirs.owner_id}").content.decode()
    assert "guest-photo.jpg" in filtered and "owner-photo.jpg" not in filtered
    # Thumbnails in the admin come from the admin, for every account's photos.
    assert client.get(f"/admin/photos/photo/{theirs.pk}/thumbnail/").status_code == 404  # no file: not retrieved
    assert f"/admin/photos/photo/{mine.pk}/thumbnail/" in changelist

    staff = other_account("operator", staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=["view_photo", "change_photo"]))
    PhotoFactory(owner=staff, filename="operator-photo.jpg")
    client.force_login(staff)
    changelist = client.get("/admin/photos/photo/").content.decode()
    assert "operator-photo.jpg" in changelist and "owner-photo.jpg" not in changelist
    assert client.get(f"/admin/photos/photo/{mine.pk}/change/").status_code == 302  # "does not exist"


def test_an_admin_thumbnail_of_another_accounts_photo(client, user, guest):
    data = image_bytes()
    photo = photo_services.photo_create(owner=guest, file=io.BytesIO(data), filename="g.jpg", size=len(data)).photo
    client.force_login(user)
    response = client.get(f"/admin/photos/photo/{photo.pk}/thumbnail/")
    assert response.status_code == 200 and response["Content-Type"] == "image/webp"
    assert b"".join(response.streaming_content)[:4] == b"RIFF"
    assert client.get(f"/api/photos/{photo.pk}/thumbnail").status_code == 404, "the API is for one's own photos"


def test_import_photos_for_an_account(tmp_path, user, guest):
    camera = tmp_path / "camera"
    camera.mkdir()
    (camera / "a.jpg").write_bytes(image_bytes())
    call_command("import_photos", str(camera), "--owner", guest.username, stdout=io.StringIO(), verbosity=0)
    assert Photo.objects.get().owner == guest
    call_command("import_photos", str(camera), stdout=io.StringIO(), verbosity=0)
    assert Photo.objects.filter(owner=user).count() == 1, "by default, the first superuser's"
    with pytest.raises(CommandError, match="no account named 'nobody'"):
        call_command("import_photos", str(camera), "--owner", "nobody", verbosity=0)


def test_every_admin_list_opens_for_a_superuser_with_an_owner_column_where_rows_have_owners(client, user):
    from django.contrib import admin

    from albums import services as album_services
    from generation import services as generation_services
    from generation.models import GenerationStep, ModelInstall, Preset
    from workflows.models import Workflow

    guest = other_account()
    photo = PhotoFactory(owner=guest)
    album = album_services.album_create(owner=guest, name="Theirs")
    album_services.share_link_create(owner=guest, album_id=album.pk)
    session = generation_services.session_create(owner=guest, source_photo_id=photo.pk)
    GenerationStep.objects.create(
        session=session, position=1, prompt="p", model_key="k", model_hash="h", model_name="m", batch_size=1
    )
    Workflow.objects.create(owner=guest, name="w", schema_version="4.0.0", source="paste", document="{}")
    ModelInstall.objects.create(owner=guest, source="/models/x.safetensors", backend_url="http://127.0.0.1:9090")
    Preset.objects.create(owner=guest, name="Theirs", model_key="k")
    client.force_login(user)
    for model, model_admin in admin.site._registry.items():
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        response = client.get(url)
        assert response.status_code == 200, url
        if hasattr(model_admin, "owner_field"):
            assert f"column-{model_admin.owner_field}" in response.content.decode(), url
