"""Search: prompt, negative prompt, file name and model name, ranked, with filters; on SQLite (FTS5) and
PostgreSQL (GIN-indexed tsvector) alike (`make test-postgres` runs this file there)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection

from photos import search
from photos.models import Photo
from testing.accounts import other_account

from .factories import PhotoFactory

pytestmark = pytest.mark.django_db


def found(api, query: str) -> list[str]:
    response = api.get(f"/api/photos/?{query}")
    assert response.status_code == 200, response.content
    return [item["filename"] for item in response.json()["items"]]


@pytest.fixture
def photos():
    def make(filename, prompt="", **fields):
        return PhotoFactory(filename=filename, generation_prompt=prompt, is_generated=bool(prompt), **fields)

    return {
        "lighthouse": make(
            "a.png",
            "a lighthouse at dusk, oil painting",
            model_name="dreamshaper_8",
            seed=42,
            generation_params={"source": "ComfyUI"},
            taken_at=datetime(2020, 5, 1, tzinfo=UTC),
        ),
        "lighthouses": make(
            "b.png",
            "lighthouse, lighthouse, storm over a lighthouse",
            generation_negative_prompt="blurry",
            model_name="sd_xl_base",
            generation_params={"source": "AUTOMATIC1111"},
            taken_at=datetime(2021, 5, 1, tzinfo=UTC),
        ),
        "harbour": make("Harbour_Evening.JPG", taken_at=datetime(2022, 5, 1, tzinfo=UTC)),
        "cat": make("c.png", "a cat on a sofa", generation_negative_prompt="lighthouse"),
    }


def test_words_are_found_in_every_field_by_their_start(api, photos):
    assert set(found(api, "q=lighthouse")) == {"a.png", "b.png", "c.png"}  # c: in its negative prompt
    assert set(found(api, "q=LIGHTHO")) == {"a.png", "b.png", "c.png"}
    assert found(api, "q=harbour") == ["Harbour_Evening.JPG"]
    assert found(api, "q=evening") == ["Harbour_Evening.JPG"]
    assert found(api, "q=dreamshaper") == ["a.png"]
    assert found(api, "q=blurry") == ["b.png"]
    assert found(api, "q=lighthouse+oil") == ["a.png"]  # every word
    assert found(api, "q=submarine") == []


def test_best_matches_first_and_other_orders_on_request(api, photos):
    assert found(api, "q=lighthouse")[0] == "b.png"  # the word three times, in the prompt
    oldest = found(api, "q=lighthouse&sort=taken_oldest")
    assert oldest.index("a.png") < oldest.index("b.png")
    assert api.get("/api/photos/?sort=relevance").status_code == 400


def test_the_index_follows_edits_and_deletes(api, photos):
    Photo.objects.filter(pk=photos["cat"].pk).update(generation_prompt="a submarine", generation_negative_prompt="")
    assert found(api, "q=submarine") == ["c.png"]
    assert "c.png" not in found(api, "q=lighthouse")
    photos["harbour"].delete()
    assert found(api, "q=harbour") == []


def test_another_accounts_photos_and_the_trash_are_not_searched(api, photos):
    PhotoFactory(owner=other_account(), filename="theirs.png", generation_prompt="lighthouse")
    PhotoFactory(filename="trashed.png", generation_prompt="lighthouse", deleted_at=datetime(2024, 1, 1, tzinfo=UTC))
    assert "theirs.png" not in found(api, "q=lighthouse")
    assert "trashed.png" not in found(api, "q=lighthouse")


def test_filters(api, photos):
    assert found(api, "q=lighthouse&tool=ComfyUI") == ["a.png"]
    assert found(api, "tool=AUTOMATIC1111") == ["b.png"]
    assert found(api, "model=sd_xl_base") == ["b.png"]
    assert found(api, "seed=42") == ["a.png"]
    assert set(found(api, "taken_after=2021-01-01&taken_before=2022-05-01")) == {"b.png", "Harbour_Evening.JPG"}
    assert found(api, "q=lighthouse&generated=false") == []
    assert api.get("/api/photos/?seed=-1").status_code == 400


def test_search_pages_cost_the_same_and_walk_every_match_once(api, django_assert_num_queries):
    for index in range(7):
        PhotoFactory(filename=f"p{index}.png", generation_prompt="lighthouse " * (index + 1))
    seen, cursor = [], ""
    while True:
        # The count of matches and the page.
        with django_assert_num_queries(2):
            body = api.get(f"/api/photos/?q=lighthouse&limit=3&cursor={cursor}").json()
        seen += [item["filename"] for item in body["items"]]
        assert body["total"] == 7
        if not (cursor := body["next_cursor"]):
            break
    assert seen == [f"p{index}.png" for index in reversed(range(7))]
    assert api.get("/api/photos/?q=lighthouse&cursor=garbage").status_code == 400


@pytest.mark.parametrize(
    "query",
    ['"', "*", "NEAR(a b)", "a OR b", "'; DROP TABLE photos_photo; --", "lighthouse\x00", "ä" * 300, "%", "&|!"],
)
def test_anything_typed_is_words_not_query_syntax(api, photos, query):
    response = api.get("/api/photos/", {"q": query})
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert response.json()["code"] in ("invalid_query", "invalid", "invalid_character", "max_length")
    assert Photo.objects.count() == 4


def test_terms():
    assert search.terms("Light-House, at_dusk!") == ["light", "house", "at", "dusk"]
    assert search.terms("a b c d e f g h i j") == list("abcdefgh")


def test_the_search_uses_its_index(photos):
    queryset = search.matching(Photo.objects.all(), ["lighthouse"])
    plan = queryset.explain()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET enable_seqscan = off")  # a few rows: only a forced plan shows the index is usable
        plan = queryset.explain()
        assert "photo_search" in plan, plan
    else:
        assert "VIRTUAL TABLE INDEX" in plan and search.FTS_TABLE in plan, plan


def test_gallery_page_search_highlights_and_lists_albums(owner_client, photos, user):
    from albums import services as album_services

    album = album_services.album_create(owner=user, name="Lighthouses of Brittany")
    album_services.album_add_photos(album_id=album.pk, owner=user, photo_ids=[photos["harbour"].pk])
    html = owner_client.get("/?q=lighthouse").content.decode()
    assert "<mark>lighthouse</mark>" in html
    assert "Lighthouses of Brittany" in html
    assert 'value="lighthouse"' in html
    assert "Harbour_Evening.JPG" not in html
    assert owner_client.get("/?q=%21%21").status_code == 400
