from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from photos import storage
from photos.models import Photo

from .factories import PhotoFactory

pytestmark = pytest.mark.django_db


def changelist_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/admin/photos/photo/")
    assert response.status_code == 200
    return len(queries)


def test_changelist_queries_do_not_grow_with_rows(owner_client):
    source = PhotoFactory()
    PhotoFactory.create_batch(2, source_image=source)
    few = changelist_queries(owner_client)
    PhotoFactory.create_batch(40, source_image=source, is_generated=True)
    assert changelist_queries(owner_client) == few


def test_changelist_search_and_filters(owner_client):
    PhotoFactory(filename="beach.jpg")
    PhotoFactory(is_generated=True, generation_prompt="a fox in snow")
    assert "beach.jpg" in owner_client.get("/admin/photos/photo/?q=beach").content.decode()
    html = owner_client.get("/admin/photos/photo/?is_generated__exact=1").content.decode()
    assert "1 photo" in html or "a fox" in html


def test_admin_actions_go_through_the_trash(owner_client):
    photo = PhotoFactory()
    owner_client.post("/admin/photos/photo/", {"action": "move_to_trash", "_selected_action": [photo.pk]})
    assert Photo.objects.get().deleted_at is not None
    owner_client.post("/admin/photos/photo/", {"action": "restore_from_trash", "_selected_action": [photo.pk]})
    assert Photo.objects.get().deleted_at is None


def test_admin_delete_removes_the_files_too(owner_client, upload, django_capture_on_commit_callbacks):
    photo = upload()
    original = photo.local_storage_path
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            "/admin/photos/photo/", {"action": "delete_selected", "_selected_action": [photo.pk], "post": "yes"}
        )
    assert response.status_code == 302
    assert not Photo.objects.exists()
    assert not storage.exists(original)


def test_a_photo_is_titled_by_what_a_person_recognises(owner_client):
    generated = PhotoFactory(filename="", is_generated=True, generation_prompt="a lighthouse at dusk, oil painting")
    page = owner_client.get(f"/admin/photos/photo/{generated.pk}/change/").content.decode()
    title = page.split("<title>")[1].split("</title>")[0]
    assert "a lighthouse at dusk" in title and str(generated.pk) not in title
    unnamed = PhotoFactory(filename="")
    assert str(unnamed) == f"Photo of {timezone.localtime(unnamed.created_at):%Y-%m-%d %H:%M}"
    assert str(PhotoFactory(filename="beach.jpg")) == "beach.jpg"


def test_thumbnails_are_sized_by_the_stylesheet_not_style_attributes(owner_client):
    photo = PhotoFactory()
    for url in ("/admin/photos/photo/", f"/admin/photos/photo/{photo.pk}/change/"):
        page = owner_client.get(url).content.decode()
        assert 'class="admin-thumbnail"' in page or 'class="admin-preview"' in page
        assert "style=" not in page and "/static/css/admin.css" in page
