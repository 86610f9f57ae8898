"""The duplicates page: photos with the same bytes side by side; keeping one trashes the others."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from photos.models import Photo
from testing.accounts import other_account

from .factories import PhotoFactory
from .images import image_bytes

pytestmark = pytest.mark.django_db


def test_groups_of_the_same_bytes_and_nothing_else(owner_client, django_assert_max_num_queries):
    twins = [PhotoFactory(checksum="a" * 64) for _ in range(2)]
    triplets = [PhotoFactory(checksum="b" * 64) for _ in range(3)]
    PhotoFactory(checksum="c" * 64)  # alone
    PhotoFactory(checksum="a" * 64, deleted_at=twins[0].created_at)  # in the trash: not a duplicate any more
    PhotoFactory(checksum="b" * 64, owner=other_account())  # someone else's copy is theirs
    # The session, the account, the groups, their photos, and the layout's own (the worker alert, the backend).
    with django_assert_max_num_queries(7):
        html = owner_client.get("/duplicates/").content.decode()
    assert html.count("data-duplicate-group") == 2
    assert html.count('data-action="keep-duplicate"') == 5
    for photo in twins + triplets:
        assert str(photo.pk) in html


def test_no_duplicates(owner_client):
    PhotoFactory()
    assert "No photo is stored twice" in owner_client.get("/duplicates/").content.decode()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_keep_one_trashes_the_others(logged_in_page, live_server, upload):
    data = image_bytes("JPEG")
    copies = [upload(f"copy{i}.jpg", data) for i in range(3)]
    page = logged_in_page
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Duplicates").click()
    group = page.locator("[data-duplicate-group]")
    expect(group).to_have_count(1)
    page.screenshot(path="/tmp/gallery-duplicates-1280.png")
    group.locator(f"[data-photo-id='{copies[1].pk}'] [data-action=keep-duplicate]").click()
    expect(group).to_have_count(0)
    expect(page.locator(".toast")).to_contain_text("moved 2 copies to the trash")
    assert set(Photo.objects.filter(deleted_at=None).values_list("pk", flat=True)) == {copies[1].pk}
