"""The main grid: a step's alternatives as the chosen one, or one stack while none is (every one on request, in
the selector, the API and the page); its zoom, justified rows, month headers and the date scrubber's months."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from generation.models import GenerationSession, GenerationStep, StepAlternative
from photos import selectors
from testing.accounts import owner_account

from .factories import PhotoFactory

pytestmark = pytest.mark.django_db
DAY = datetime(2024, 5, 17, 12, tzinfo=UTC)


def step_photos(count: int, *, chosen: int | None = None, taken: datetime = DAY, **fields) -> list:
    """A studio step with `count` alternatives (taken a second apart, the first newest), `chosen` selected."""
    owner = owner_account()
    session = GenerationSession.objects.create(owner=owner)
    step = GenerationStep.objects.create(
        session=session, position=1, prompt="a harbour", model_key="m", model_hash="h", model_name="m", batch_size=count
    )
    photos = []
    for index in range(count):
        photo = PhotoFactory(
            owner=owner, is_generated=True, seed=1000 + index, taken_at=taken - timedelta(seconds=index), **fields
        )
        StepAlternative.objects.create(step=step, photo=photo, item_id=index + 1, index=index, selected=index == chosen)
        photos.append(photo)
    return photos


def ids(page) -> list:
    return [photo.pk for photo in page.items]


def listed(**kwargs) -> list:
    return ids(selectors.photo_list(owner=owner_account(), sort="taken", **kwargs))


def test_a_step_without_a_choice_is_one_stack_with_its_count():
    before = PhotoFactory(taken_at=DAY + timedelta(hours=1))
    stack = step_photos(4)
    after = PhotoFactory(taken_at=DAY - timedelta(hours=1))
    page = selectors.photo_list(owner=owner_account(), sort="taken", alternatives=selectors.STACKED)
    assert ids(page) == [before.pk, stack[0].pk, after.pk]
    assert [photo.stack_size for photo in page.items] == [None, 4, None]
    assert page.items[1].stack_step == stack[0].step_alternative.step_id
    # Every alternative on request, and by default for the selector's other callers (studio pickers, albums).
    assert listed(alternatives=selectors.EVERY_ALTERNATIVE) == [before.pk, *(p.pk for p in stack), after.pk]
    assert listed() == listed(alternatives=selectors.EVERY_ALTERNATIVE)


def test_the_chosen_alternative_stands_alone():
    photos = step_photos(3, chosen=2)
    page = selectors.photo_list(owner=owner_account(), sort="taken", alternatives=selectors.STACKED)
    assert ids(page) == [photos[2].pk]
    assert page.items[0].stack_size is None


def test_a_trashed_cover_or_choice_hands_over_to_the_others():
    photos = step_photos(3, chosen=0)
    photos[0].deleted_at = timezone.now()
    photos[0].save()
    page = selectors.photo_list(owner=owner_account(), sort="taken", alternatives=selectors.STACKED)
    assert ids(page) == [photos[1].pk]
    assert page.items[0].stack_size == 2


def test_a_filter_stacks_the_alternatives_it_keeps():
    photos = step_photos(4, chosen=0)
    photos[2].is_favorite = photos[3].is_favorite = True
    photos[2].save()
    photos[3].save()
    page = selectors.photo_list(owner=owner_account(), sort="taken", favorite=True, alternatives=selectors.STACKED)
    # The chosen one is no favourite: the favourites among the others are a stack of two.
    assert ids(page) == [photos[2].pk]
    assert page.items[0].stack_size == 2
    assert listed(seed=photos[3].seed, alternatives=selectors.STACKED) == [photos[3].pk]


def test_a_search_stacks_the_alternatives_it_finds():
    photos = step_photos(3, generation_prompt="a lighthouse at dusk")
    photos[2].filename = "beacon.png"
    photos[2].save()
    page = selectors.photo_list(owner=owner_account(), q="lighthouse", alternatives=selectors.STACKED)
    assert ids(page) == [photos[0].pk]
    assert page.items[0].stack_size == 3
    page = selectors.photo_list(owner=owner_account(), q="beacon", alternatives=selectors.STACKED)
    assert ids(page) == [photos[2].pk]
    assert page.items[0].stack_size == 1


def test_keyset_pages_and_jumps_stay_right_with_stacks():
    stacks = [step_photos(3, taken=DAY - timedelta(days=day)) for day in range(5)]
    loose = [PhotoFactory(taken_at=DAY - timedelta(days=day, hours=2)) for day in range(5)]
    expected = [pk for day in range(5) for pk in (stacks[day][0].pk, loose[day].pk)]
    seen, cursor = [], None
    while True:
        page = selectors.photo_list(
            owner=owner_account(), sort="taken", limit=3, cursor=cursor, alternatives=selectors.STACKED
        )
        seen += ids(page)
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == expected
    jump = selectors.photo_list(
        owner=owner_account(), sort="taken", from_day=(DAY - timedelta(days=2)).date(), alternatives=selectors.STACKED
    )
    assert ids(jump) == expected[4:]


def test_a_stack_opened_lists_its_alternatives():
    photos = step_photos(3, chosen=1)
    PhotoFactory(taken_at=DAY)
    step = photos[0].step_alternative.step_id
    assert listed(stack=step) == [photo.pk for photo in photos]


def test_the_trash_and_albums_are_not_stacked():
    photos = step_photos(3)
    for photo in photos:
        photo.deleted_at = timezone.now()
        photo.save()
    trash = selectors.photo_list(owner=owner_account(), deleted=True, alternatives=selectors.STACKED)
    assert len(trash.items) == 3


def test_an_unknown_choice_is_refused():
    with pytest.raises(selectors.InvalidInput):
        selectors.photo_list(owner=owner_account(), alternatives="some")


def test_a_stacked_page_costs_the_same_queries_however_many_stacks(django_assert_num_queries):
    owner = owner_account()
    for _ in range(2):
        step_photos(3)
    with django_assert_num_queries(2):  # the tallies for the total, the page
        selectors.photo_list(owner=owner, sort="taken", alternatives=selectors.STACKED)
    for _ in range(20):
        step_photos(4)
    with django_assert_num_queries(2):
        page = selectors.photo_list(owner=owner, sort="taken", alternatives=selectors.STACKED)
    assert len(page.items) == 22


# --- the API ---


def test_the_api_stacks_by_default_and_lists_every_alternative_on_request(api):
    photos = step_photos(3)
    chosen = step_photos(2, chosen=1, taken=DAY - timedelta(days=1))
    body = api.get("/api/photos/?sort=taken").json()
    step = photos[0].step_alternative.step_id
    assert [item["id"] for item in body["items"]] == [str(photos[0].pk), str(chosen[1].pk)]
    assert [item["stack"] for item in body["items"]] == [{"step_id": step, "count": 3}, None]
    every = api.get("/api/photos/?sort=taken&alternatives=all").json()
    assert len(every["items"]) == 5
    assert {item["stack"] for item in every["items"]} == {None}
    opened = api.get(f"/api/photos/?stack={step}").json()
    assert {item["id"] for item in opened["items"]} == {str(photo.pk) for photo in photos}
    assert api.get("/api/photos/?alternatives=some").status_code == 400
    assert api.get("/api/photos/?stack=x").status_code == 400


def test_the_openapi_schema_documents_alternatives_and_stacks(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    parameters = {p["name"]: p for p in schema["paths"]["/api/photos/"]["get"]["parameters"]}
    assert parameters["alternatives"]["schema"]["enum"] == ["stacked", "all"]
    assert "every one" in parameters["alternatives"]["description"]
    assert parameters["stack"]["schema"]["type"] == "integer"
    item = schema["components"]["schemas"]["PhotoListItem"]["properties"]["stack"]
    assert "studio step" in item["description"]


# --- the gallery page ---


def test_the_grid_shows_a_stack_tile_that_opens_into_its_alternatives(owner_client):
    photos = step_photos(3)
    step = photos[0].step_alternative.step_id
    html = owner_client.get("/").content.decode()
    assert html.count('class="tile') == 1
    assert f'data-stack="{step}" data-stack-size="3"' in html
    assert 'class="stack-count"' in html
    opened = owner_client.get(f"/?stack={step}", headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in opened
    assert [pk for pk in (str(p.pk) for p in photos) if pk in opened] == [str(p.pk) for p in photos]
    assert "data-stack=" not in opened
    assert owner_client.get("/?stack=x").status_code == 400


def test_every_alternative_is_remembered_in_a_cookie(owner_client):
    step_photos(3)
    shown = owner_client.get("/?alternatives=stacked&alternatives=all")
    assert shown.content.decode().count('class="tile') == 3
    assert shown.cookies["grid_alternatives"].value == "all"
    # The next visit without the choice in the address keeps it; unticking sends only the hidden "stacked".
    assert owner_client.get("/").content.decode().count('class="tile') == 3
    assert owner_client.get("/?alternatives=stacked").content.decode().count('class="tile') == 1
    assert owner_client.get("/").content.decode().count('class="tile') == 1
    assert owner_client.get("/?alternatives=bogus").status_code == 400


@pytest.mark.parametrize(
    ("path", "stacks_in"),
    [
        ("/api/photos/?sort=taken", lambda response: sum(1 for item in response.json()["items"] if item["stack"])),
        ("/", lambda response: response.content.decode().count('class="stack-count"')),
    ],
    ids=["api", "grid"],
)
def test_a_page_costs_the_same_queries_however_many_stacks(
    path, stacks_in, api, owner_client, django_assert_max_num_queries, django_assert_num_queries
):
    client = api if path.startswith("/api/") else owner_client
    step_photos(3)
    with django_assert_max_num_queries(8) as few:  # the grid: 6, and the worker's heartbeat for its alert
        client.get(path)
    for _ in range(30):
        step_photos(3)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(path)
    assert stacks_in(response) == 31


def test_grid_zoom_and_justified_rows_come_from_cookies(owner_client):
    PhotoFactory(width=400, height=1200)
    html = owner_client.get("/").content.decode()
    assert 'class="grid zoom-m"' in html
    owner_client.cookies["grid_zoom"] = "xs"
    owner_client.cookies["grid_layout"] = "justified"
    html = owner_client.get("/").content.decode()
    assert 'class="grid zoom-xs justified"' in html
    assert " ar5" in html  # 1:3, the aspect class nearest to it (1.05 ** -23)
    owner_client.cookies["grid_zoom"] = "huge"
    assert 'class="grid zoom-m justified"' in owner_client.get("/").content.decode()


def test_a_month_starts_with_a_month_header(owner_client):
    for day in (1, 2, 31):
        PhotoFactory(taken_at=datetime(2024, 3 if day == 31 else 4, day, 12, tzinfo=UTC))
    html = owner_client.get("/").content.decode()
    assert re.findall(r'class="day-header( month-start)?" data-day="([\d-]+)"', html) == [
        (" month-start", "2024-04-02"),
        ("", "2024-04-01"),
        (" month-start", "2024-03-31"),
    ]
    assert "April 2024" in html


def test_the_scrubber_has_every_month_to_scale_and_links_to_its_start(owner_client, django_assert_max_num_queries):
    for when in (datetime(2019, 6, 15, 12, tzinfo=UTC), datetime(2019, 6, 16, 12, tzinfo=UTC)):
        PhotoFactory(taken_at=when)
    PhotoFactory(taken_at=datetime(2023, 1, 2, 12, tzinfo=UTC))
    page = owner_client.get("/").content.decode()
    assert 'class="scrubber"' in page and "view=scrubber" in page
    with django_assert_max_num_queries(4):  # the session, the account, the months (one grouped scan)
        html = owner_client.get("/timeline/months/?kind=all&sort=taken&view=scrubber").content.decode()
    assert re.findall(r'class="scrubber-year" data-count="(\d+)"><span class="scrubber-year-label">(\d+)', html) == [
        ("1", "2023"),
        ("2", "2019"),
    ]
    assert 'from=2019-06-30"\n     data-count="2" data-month="2019-06" data-label="June 2019"' in html
    # No scrubber for a search or by date added (no timeline), nor for an empty gallery.
    assert 'class="scrubber"' not in owner_client.get("/?q=photo").content.decode()
    assert 'class="scrubber"' not in owner_client.get("/?sort=newest").content.decode()
