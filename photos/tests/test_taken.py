"""The date taken: read from the file (EXIF with and without offsets, PNG's Creation Time and tIME), with the
fallbacks; the timeline's order, cursor and jump to a day; the migration and the backfill of older photos."""

from __future__ import annotations

import io
import os
import re
import struct
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import F
from django.utils import timezone
from PIL import Image

from photos import embedded, selectors, services
from photos.models import Photo, PhotoTally
from testing.accounts import owner_account

from .factories import PhotoFactory
from .images import image_bytes, png_chunk, png_text, png_with_chunks

pytestmark = pytest.mark.django_db

PARIS = "Europe/Paris"


def exif_with_date(original: str | None, offset: str | None = None, subseconds: str | None = None) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    sub = exif.get_ifd(0x8769)
    if original is not None:
        sub[0x9003] = original
    if offset is not None:
        sub[0x9011] = offset
    if subseconds is not None:
        sub[0x9291] = subseconds
    return exif.tobytes()


def png_time(moment: datetime) -> bytes:
    return png_chunk(
        b"tIME",
        struct.pack(">HBBBBB", moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second),
    )


@pytest.mark.parametrize(
    ("value", "offset", "expected"),
    [
        ("2021:07:14 18:30:05", "+02:00", datetime(2021, 7, 14, 16, 30, 5, tzinfo=UTC)),
        ("2021:07:14 18:30:05", "-05:30", datetime(2021, 7, 15, 0, 0, 5, tzinfo=UTC)),
        ("2021-07-14 18:30:05", "+00:00", datetime(2021, 7, 14, 18, 30, 5, tzinfo=UTC)),
        # No offset: the camera's wall clock, in TIME_ZONE (Paris is at +02:00 in July).
        ("2021:07:14 18:30:05", None, datetime(2021, 7, 14, 16, 30, 5, tzinfo=UTC)),
        # An offset that is no offset is ignored rather than guessed.
        ("2021:07:14 18:30:05", "   :  ", datetime(2021, 7, 14, 16, 30, 5, tzinfo=UTC)),
        ("2021:07:14 18:30:05", "+25:00", datetime(2021, 7, 14, 16, 30, 5, tzinfo=UTC)),
        ("0000:00:00 00:00:00", None, None),
        ("    :  :     :  :  ", None, None),
        ("yesterday", None, None),
        (b"2021:07:14 18:30:05\x00", b"+02:00\x00", datetime(2021, 7, 14, 16, 30, 5, tzinfo=UTC)),
    ],
)
def test_exif_dates_with_and_without_offsets(settings, value, offset, expected):
    settings.TIME_ZONE = PARIS
    assert embedded.parse_exif_datetime(value, offset=offset) == expected


def test_exif_subseconds():
    moment = embedded.parse_exif_datetime("2021:07:14 18:30:05", offset="+00:00", subseconds="042")
    assert moment == datetime(2021, 7, 14, 18, 30, 5, 42000, tzinfo=UTC)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "HEIF", "PNG"])
def test_date_taken_from_exif_in_every_format(tmp_path, fmt):
    path = tmp_path / "photo"
    path.write_bytes(image_bytes(fmt, exif=exif_with_date("2019:12:31 23:59:00", "+09:00")))
    assert embedded.taken_at(path) == datetime(2019, 12, 31, 14, 59, tzinfo=UTC)


def test_exif_falls_back_to_digitized_then_ifd0(tmp_path):
    exif = Image.Exif()
    exif[0x0132] = "2018:01:02 03:04:05"  # IFD0 DateTime
    exif.get_ifd(0x8769)[0x9010] = "+01:00"  # its OffsetTime
    path = tmp_path / "photo.jpg"
    path.write_bytes(image_bytes("JPEG", exif=exif.tobytes()))
    assert embedded.taken_at(path) == datetime(2018, 1, 2, 2, 4, 5, tzinfo=UTC)
    exif.get_ifd(0x8769)[0x9004] = "2017:01:02 03:04:05"  # DateTimeDigitized wins over it
    exif.get_ifd(0x8769)[0x9012] = "+00:00"
    path.write_bytes(image_bytes("JPEG", exif=exif.tobytes()))
    assert embedded.taken_at(path) == datetime(2017, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([png_time(datetime(2020, 5, 6, 7, 8, 9))], datetime(2020, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ([png_text("Creation Time", "Wed, 06 May 2020 09:08:09 +0200")], datetime(2020, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ([png_text("Creation Time", "2020-05-06T07:08:09Z", kind=b"iTXt")], datetime(2020, 5, 6, 7, 8, 9, tzinfo=UTC)),
        ([png_text("Creation Time", "2020:05:06 07:08:09", kind=b"zTXt")], datetime(2020, 5, 6, 7, 8, 9, tzinfo=UTC)),
        # Creation Time is when it was made; tIME only its last change.
        (
            [png_time(datetime(2024, 1, 1)), png_text("Creation Time", "2020-05-06 07:08:09+00:00")],
            datetime(2020, 5, 6, 7, 8, 9, tzinfo=UTC),
        ),
        ([png_text("Creation Time", "not a date"), png_time(datetime(2020, 1, 1))], datetime(2020, 1, 1, tzinfo=UTC)),
        ([png_chunk(b"tIME", struct.pack(">HBBBBB", 2020, 13, 40, 0, 0, 0))], None),  # no such day
        ([png_text("Comment", "2020-05-06")], None),
    ],
)
def test_date_taken_from_png_chunks(tmp_path, chunks, expected):
    path = tmp_path / "image.png"
    path.write_bytes(png_with_chunks(*chunks))
    assert embedded.taken_at(path) == expected


def test_png_time_after_the_image_data_is_found(tmp_path):
    data = image_bytes("PNG")
    path = tmp_path / "image.png"
    path.write_bytes(data[:-12] + png_time(datetime(2020, 2, 3)) + data[-12:])  # just before IEND
    assert embedded.taken_at(path) == datetime(2020, 2, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    "data",
    [
        image_bytes("JPEG", exif=exif_with_date("2999:01:01 00:00:00", "+00:00")),  # in the future
        image_bytes("JPEG", exif=exif_with_date("1800:01:01 00:00:00", "+00:00")),  # before photography
        image_bytes("JPEG", exif=b"Exif\x00\x00MM\x00*garbage"),
        png_with_chunks(png_chunk(b"tIME", b"\x07")),
        png_with_chunks(png_text("Creation Time", "x", kind=b"zTXt")[:-8] + b"\xff\xff\xff\xff"),
    ],
)
def test_implausible_or_garbled_dates_are_no_dates(tmp_path, data):
    path = tmp_path / "photo"
    path.write_bytes(data)
    assert embedded.taken_at(path) is None


def test_upload_reads_the_date_and_falls_back_to_the_upload_time(upload):
    dated = upload("dated.jpg", image_bytes("JPEG", exif=exif_with_date("2015:08:01 12:00:00", "+02:00")))
    assert dated.taken_at == datetime(2015, 8, 1, 10, 0, tzinfo=UTC)
    undated = upload("undated.jpg", image_bytes("JPEG"))
    assert undated.taken_at == undated.created_at
    garbled = upload("garbled.jpg", image_bytes("JPEG", exif=exif_with_date("2015:13:45 99:00:00")))
    assert garbled.taken_at == garbled.created_at


def test_import_falls_back_to_the_file_modification_time(tmp_path):
    owner_account()
    (tmp_path / "undated.jpg").write_bytes(image_bytes("JPEG"))
    (tmp_path / "dated.jpg").write_bytes(image_bytes("JPEG", exif=exif_with_date("2012:03:04 05:06:07", "+00:00")))
    modified = datetime(2013, 6, 7, 8, 9, 10, tzinfo=UTC).timestamp()
    for name in ("undated.jpg", "dated.jpg"):
        os.utime(tmp_path / name, (modified, modified))
    call_command("import_photos", str(tmp_path), verbosity=0, stdout=io.StringIO())
    taken = dict(Photo.objects.values_list("filename", "taken_at"))
    assert taken == {
        "undated.jpg": datetime(2013, 6, 7, 8, 9, 10, tzinfo=UTC),
        "dated.jpg": datetime(2012, 3, 4, 5, 6, 7, tzinfo=UTC),
    }


def test_generated_images_are_dated_when_made():
    before = timezone.now()
    photo, _ = services.generated_photo_register(
        owner_id=owner_account().pk,
        invoke_id="gallery-made.png",
        prompt="a fox",
        negative_prompt="",
        params={},
        seed=1,
        model_key="",
        model_hash="",
        model_name="",
    )
    assert before <= photo.taken_at == photo.created_at <= timezone.now()


# --- the timeline's order, cursor and jump ---


def photos_taken(days: list[int], start=datetime(2020, 1, 1, 12, tzinfo=UTC)) -> list[Photo]:
    """A photo taken on each of these days after `start`, each added a second before the one before it."""
    now = timezone.now()
    return [
        PhotoFactory(taken_at=start + timedelta(days=day), created_at=now - timedelta(seconds=index))
        for index, day in enumerate(days)
    ]


def ids(items) -> list[str]:
    return [item["id"] if isinstance(item, dict) else str(item.pk) for item in items]


def test_sort_by_date_taken_or_added(api):
    photos = photos_taken([0, 10, 5])
    by = {sort: ids(api.get(f"/api/photos/?sort={sort}").json()["items"]) for sort in selectors.SORTS}
    assert by["taken"] == ids([photos[1], photos[2], photos[0]])
    assert by["taken_oldest"] == ids([photos[0], photos[2], photos[1]])
    assert by["newest"] == ids(photos)
    assert by["oldest"] == ids(reversed(photos))
    assert api.get("/api/photos/").json()["items"][0]["taken_at"] == "2020-01-01T12:00:00Z"


@pytest.mark.parametrize("sort", ["taken", "taken_oldest"])
def test_cursor_walks_the_timeline_once(api, sort, django_assert_num_queries):
    photos = photos_taken([3, 1, 4, 1, 5, 9, 2, 6])  # two taken at the same moment
    expected = ids(api.get(f"/api/photos/?sort={sort}&limit=50").json()["items"])
    seen, cursor = [], ""
    while True:
        # The owner's tallies for the total, and the page: the same on every page, however deep.
        with django_assert_num_queries(2):
            body = api.get(f"/api/photos/?limit=3&sort={sort}&cursor={cursor}").json()
        seen += ids(body["items"])
        if not (cursor := body["next_cursor"]):
            break
    assert seen == expected and len(set(seen)) == len(photos)


def test_cursor_of_one_order_is_refused_by_the_other(api):
    photos_taken([1, 2, 3])
    taken = api.get("/api/photos/?sort=taken&limit=1").json()["next_cursor"]
    added = api.get("/api/photos/?sort=newest&limit=1").json()["next_cursor"]
    for sort, cursor in (("newest", taken), ("taken", added), ("taken_oldest", "garbage")):
        response = api.get(f"/api/photos/?sort={sort}&cursor={cursor}")
        assert response.status_code == 400, (sort, response.content)
        assert response.json()["code"] == "invalid_cursor"


def test_jump_to_a_day_in_either_direction(api, settings):
    settings.TIME_ZONE = PARIS
    photos = photos_taken([0, 1, 2, 3])  # noon UTC on 1 to 4 January 2020
    newest = api.get("/api/photos/?sort=taken&from_day=2020-01-02").json()
    assert ids(newest["items"]) == ids([photos[1], photos[0]])
    assert newest["total"] == 4  # the whole timeline, as the scrubber needs
    oldest = api.get("/api/photos/?sort=taken_oldest&from_day=2020-01-03").json()
    assert ids(oldest["items"]) == ids([photos[2], photos[3]])
    assert api.get("/api/photos/?sort=taken&from_day=2020-13-01").status_code == 400
    # A day starts at midnight in TIME_ZONE: 23:30 UTC on 2 January is already the 3rd in Paris.
    late = PhotoFactory(taken_at=datetime(2020, 1, 2, 23, 30, tzinfo=UTC))
    assert ids(api.get("/api/photos/?sort=taken&from_day=2020-01-02").json()["items"])[0] == str(photos[1].pk)
    assert ids(api.get("/api/photos/?sort=taken_oldest&from_day=2020-01-03").json()["items"])[0] == str(late.pk)


def test_jump_then_scroll_on(api):
    photos = photos_taken(list(range(10)))
    first = api.get("/api/photos/?sort=taken&from_day=2020-01-06&limit=2").json()
    rest = api.get(f"/api/photos/?sort=taken&from_day=2020-01-06&limit=50&cursor={first['next_cursor']}").json()
    assert ids(first["items"] + rest["items"]) == ids(reversed(photos[:6]))


def test_gallery_page_is_a_timeline_by_default(owner_client):
    photos = photos_taken([0, 2, 1])
    page = owner_client.get("/").content.decode()
    positions = [page.index(str(photo.pk)) for photo in (photos[1], photos[2], photos[0])]
    assert positions == sorted(positions)
    assert '<option value="taken" selected>' in page
    assert owner_client.get("/?sort=taken_oldest").status_code == 200
    assert owner_client.get("/?sort=sideways").status_code == 400


# --- older photos ---


def test_backfill_reads_the_dates_of_photos_stored_before(upload):
    dated = upload("dated.jpg", image_bytes("JPEG", exif=exif_with_date("2011:11:11 11:11:11", "+00:00")))
    undated = upload("undated.jpg", image_bytes("JPEG"))
    PhotoFactory(invoke_id="made.png", is_generated=True)
    Photo.objects.update(taken_at=F("created_at"))  # as migration 0004 leaves them
    out = io.StringIO()
    call_command("backfill_taken", verbosity=0, stdout=out)
    assert "Read 2 photos' files; 1 had a date taken of their own." in out.getvalue()
    dated.refresh_from_db()
    undated.refresh_from_db()
    assert dated.taken_at == datetime(2011, 11, 11, 11, 11, 11, tzinfo=UTC)
    assert undated.taken_at == undated.created_at  # unchanged: the file has no date
    call_command("backfill_taken", verbosity=0, stdout=out)  # a second run changes nothing
    dated.refresh_from_db()
    assert dated.taken_at == datetime(2011, 11, 11, 11, 11, 11, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_migration_dates_photos_by_when_they_were_added_and_keeps_the_tallies():
    executor = MigrationExecutor(connection)
    executor.migrate([("photos", "0003_photo_owner")])
    old = executor.loader.project_state([("photos", "0003_photo_owner")]).apps
    owner = old.get_model("auth", "User").objects.create(username="gallery-old")
    added = datetime(2022, 2, 2, tzinfo=UTC)
    old.get_model("photos", "Photo").objects.create(id=uuid.uuid4(), owner_id=owner.pk, created_at=added)
    try:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
        assert list(Photo.objects.values_list("taken_at", flat=True)) == [added]
        # The triggers still count (SQLite rebuilt the table to make the column NOT NULL).
        PhotoFactory(owner_id=owner.pk)
        assert PhotoTally.objects.get(owner_id=owner.pk, name=PhotoTally.LIVE).count == 2
    finally:
        Photo.objects.all().delete()


# --- the timeline page: day headers, the jump list ---


def test_day_headers_once_per_day_and_across_pages(owner_client, settings):
    settings.TIME_ZONE = PARIS
    base = datetime(2021, 3, 10, 12, tzinfo=UTC)
    for index in range(70):  # 70 photos over three days: the second page starts inside a day
        PhotoFactory(taken_at=base - timedelta(hours=index))
    first = owner_client.get("/").content.decode()
    days = re.findall(r'class="day-header[^"]*" data-day="([\d-]+)"', first)
    assert days == ["2021-03-10", "2021-03-09", "2021-03-08"]
    assert "Wednesday, March 10, 2021" in first
    cursor = first.split("cursor=")[1].split('"')[0]
    rest = owner_client.get(f"/?sort=taken&cursor={cursor}", headers={"HX-Request": "true"}).content.decode()
    assert rest.count('class="tile') == 10
    # The second page goes on with the day the first ended on: no header again for it.
    last_day_of_first = days[-1]
    later = re.findall(r'class="day-header[^"]*" data-day="([\d-]+)"', rest)
    assert last_day_of_first not in later
    assert 'data-action="select-day"' in first
    # By date added there are no day headers.
    assert "day-header" not in owner_client.get("/?sort=newest").content.decode()


def test_jump_list_and_jumping_to_a_month(owner_client, django_assert_max_num_queries):
    june = PhotoFactory(taken_at=datetime(2019, 6, 15, 12, tzinfo=UTC), filename="june.jpg")
    PhotoFactory(taken_at=datetime(2019, 6, 16, 12, tzinfo=UTC))
    PhotoFactory(taken_at=datetime(2023, 1, 2, 12, tzinfo=UTC), filename="new.jpg")
    page = owner_client.get("/").content.decode()
    assert "Jump to…" in page and "/timeline/months/?kind=all&amp;sort=taken" in page
    with django_assert_max_num_queries(4):  # the session, the account, the months (one grouped scan)
        months = owner_client.get("/timeline/months/?kind=all&sort=taken").content.decode()
    assert ">2023</a>" in months and ">2019</a>" in months
    june_link = 'href="/?kind=all&amp;sort=taken&amp;alternatives=stacked&from=2019-06-30" title="2 photos">Jun</a>'
    assert june_link in months
    assert months.index(">2023<") < months.index(">2019<")
    oldest = owner_client.get("/timeline/months/?kind=all&sort=taken_oldest").content.decode()
    assert "from=2019-06-01" in oldest and oldest.index(">2019<") < oldest.index(">2023<")
    jumped = owner_client.get("/?kind=all&sort=taken&from=2019-06-30").content.decode()
    assert str(june.pk) in jumped and "new.jpg" not in jumped
    assert owner_client.get("/?from=June").status_code == 400
