"""Gallery list speed at 100,000 photos: server time of a 50-photo page, first page and deepest page, by date
added and by date taken (the timeline), and a jump to a date.

    .venv/bin/python bench/gallery_list.py --database sqlite
    .venv/bin/python bench/gallery_list.py --database postgres [--url postgresql://postgres@127.0.0.1:5432/gallery_bench]

Fills a throwaway database (a temporary SQLite file, or the named PostgreSQL database, created if missing and
left in place for the next run) with photo rows, then times requests through Django's full stack in-process
(middleware, auth, view, serializer or template). The deepest page is reached the way the gallery reaches
it, with the keyset cursor; the offset form is shown for comparison. The photos were taken over ten years (and
added over three); a jump goes to a random day of those ten years (`from_day`), as the timeline's year/month list
does. A fifth of the photos are generated, each with six words of a 400-word prompt vocabulary; a search is for
one random word of it (each matches about 1.5% of the generated photos), best matches first. Targets: p95 <= 25
ms, deepest page within 1.2x of the first, a jump p95 <= 30 ms, a search p95 <= 50 ms, the same number of SQL
queries on every page.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def configure(args: argparse.Namespace) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="gallery-bench-"))
    os.environ["DATA_DIR"] = str(data_dir)
    os.environ["SECRET_KEY"] = "bench"
    os.environ["DJANGO_SETTINGS_MODULE"] = "gallery_project.settings"
    if args.database == "sqlite":
        os.environ["DATABASE_URL"] = f"sqlite:///{data_dir / 'bench.sqlite3'}"
    else:
        os.environ["DATABASE_URL"] = args.url
        import psycopg

        name = args.url.rsplit("/", 1)[1]
        admin_url = args.url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')

    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS.append("testserver")


# A prompt vocabulary: made-up but word-like, so that no word is the start of another.
VOCABULARY = [
    f"{a}{b}{c}"
    for a in ("lum", "tor", "vex", "qar", "mib")
    for b in ("ava", "eli", "oru", "ine")
    for c in (
        "dusk",
        "stone",
        "river",
        "glass",
        "ember",
        "frost",
        "moss",
        "tide",
        "spire",
        "bloom",
        "ash",
        "haze",
        "crown",
        "veil",
        "forge",
        "lark",
        "thorn",
        "wake",
        "drift",
        "gale",
    )
]


def fill(count: int):
    """The bench account, owning `count` photos (another account owns a tenth as many, so that the lists have
    someone else's rows to pass over)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from photos.models import Photo

    call_command("migrate", verbosity=0)
    call_command("collectstatic", verbosity=0, interactive=False)
    users = get_user_model().objects
    user, _ = users.get_or_create(username="bench", defaults={"is_superuser": True, "is_staff": True})
    other, _ = users.get_or_create(username="bench-other")
    have = Photo.objects.filter(owner=user).count()
    # A database filled before photos had a date taken has them all on the day they were added: fill again.
    dated = Photo.objects.filter(owner=user, taken_at__lt=datetime(2023, 1, 1, tzinfo=UTC))
    if have == count and dated.filter(generation_prompt__contains=VOCABULARY[0][:3]).exists():
        print(f"reusing {count} photos already in the database")
        return user
    Photo.objects.all().delete()
    rng = random.Random(42)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    span = int(timedelta(days=3 * 365).total_seconds())
    taken_start, taken_span = datetime(2016, 1, 1, tzinfo=UTC), int(timedelta(days=10 * 365).total_seconds())
    began = time.perf_counter()
    batch = []
    for index in range(count + count // 10):
        photo_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        created = start + timedelta(seconds=rng.randrange(span))
        generated = rng.random() < 0.2
        batch.append(
            Photo(
                id=photo_id,
                owner=user if index < count else other,
                filename=f"IMG_{index:06d}.jpg",
                width=6000,
                height=4000,
                file_size=8_000_000,
                mime_type="image/jpeg",
                checksum=f"{rng.getrandbits(256):064x}",
                is_generated=generated,
                generation_prompt=" ".join(rng.sample(VOCABULARY, 6)) if generated else "",
                seed=rng.getrandbits(32) if generated else None,
                local_storage_path=f"uploaded/{created.date()}/{photo_id}.jpg",
                local_thumbnail_path=f"thumbnails/uploaded/{created.date()}/{photo_id}.webp",
                taken_at=taken_start + timedelta(seconds=rng.randrange(taken_span)),
                created_at=created,
                deleted_at=created + timedelta(days=1) if rng.random() < 0.01 else None,
            )
        )
        if len(batch) == 5000:
            Photo.objects.bulk_create(batch)
            batch.clear()
    Photo.objects.bulk_create(batch)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    print(f"inserted {count} photos (and {count // 10} of another account) in {time.perf_counter() - began:.1f} s")
    return user


def measure(client, path: str, rounds: int, headers: dict | None = None) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(path, headers=headers or {})
    query_count = len(queries)  # read now: the next request clears Django's query log
    assert response.status_code == 200, (path, response.status_code, response.content[:300])
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        client.get(path, headers=headers or {})
        samples.append((time.perf_counter() - began) * 1000)
    return samples, query_count


def jump_samples(client, rounds: int) -> list[float]:
    """Server time of a jump to a random day of the ten years, half of them in each direction."""
    rng = random.Random(7)
    samples = []
    for index in range(rounds):
        day = datetime(2016, 1, 1) + timedelta(days=rng.randrange(10 * 365))
        sort = "taken" if index % 2 else "taken_oldest"
        path = f"/api/photos/?limit=50&sort={sort}&from_day={day:%Y-%m-%d}"
        began = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200 and response.json()["items"], path
    return samples


def search_samples(client, rounds: int, *, page: bool = False) -> list[float]:
    """Server time of a search for one random word of the vocabulary: the API's first 50, or the gallery page."""
    rng = random.Random(11)
    samples = []
    for _ in range(rounds):
        word = rng.choice(VOCABULARY)
        path = f"/?q={word}" if page else f"/api/photos/?limit=50&q={word}"
        began = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, path
        if not page:
            assert response.json()["items"], path
    return samples


def profile(client, path: str) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(50):
        client.get(path)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/gallery_bench")
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--profile", metavar="PATH", help="profile 50 requests to PATH instead of measuring")
    args = parser.parse_args()
    configure(args)
    user = fill(args.photos)

    from django.db import connection
    from django.test import Client

    from photos import selectors
    from photos.models import Photo

    client = Client()
    client.force_login(user)

    if args.profile:
        profile(client, args.profile)
        return
    live = Photo.objects.filter(owner=user, deleted_at=None).order_by("-created_at", "-id")
    total = live.count()
    before_last_api = selectors.encode_cursor(live[total - 51])
    before_last_page = selectors.encode_cursor(live[total - 61])
    timeline = live.order_by("-taken_at", "-id")
    before_last_taken = selectors.encode_cursor(timeline[total - 51], "taken")
    cases = [
        ("API first page", "/api/photos/?limit=50", None),
        ("API deepest page (cursor)", f"/api/photos/?limit=50&cursor={before_last_api}", None),
        ("API deepest page (offset)", f"/api/photos/?limit=50&offset={total - 50}", None),
        ("API generated only, first", "/api/photos/?limit=50&generated=true", None),
        ("API timeline, first", "/api/photos/?limit=50&sort=taken", None),
        ("API timeline, deepest", f"/api/photos/?limit=50&sort=taken&cursor={before_last_taken}", None),
        ("gallery page, first", "/", None),
        ("timeline jump list (months)", "/timeline/months/?kind=all&sort=taken", None),
        (
            "gallery scroll, deepest",
            f"/?kind=all&sort=newest&cursor={before_last_page}",
            {"HX-Request": "true"},
        ),
    ]
    print(f"\n{connection.vendor}, {total} live photos, {args.rounds} requests each, server time in ms")
    print(f"{'page':<30}{'p50':>8}{'p95':>8}{'queries':>9}")
    results = {}
    for name, path, headers in cases:
        samples, queries = measure(client, path, args.rounds, headers)
        p50, p95 = statistics.median(samples), statistics.quantiles(samples, n=20)[-1]
        results[name] = p50
        print(f"{name:<30}{p50:>8.2f}{p95:>8.2f}{queries:>9}")
    for name, samples in (
        ("API jump to a date (random)", jump_samples(client, args.rounds)),
        ("API search a word (random)", search_samples(client, args.rounds)),
        ("gallery search a word", search_samples(client, args.rounds, page=True)),
    ):
        print(f"{name:<30}{statistics.median(samples):>8.2f}{statistics.quantiles(samples, n=20)[-1]:>8.2f}")
    ratio = results["API deepest page (cursor)"] / results["API first page"]
    page_ratio = results["gallery scroll, deepest"] / results["gallery page, first"]
    print(f"\ndeepest/first (API, cursor): {ratio:.2f}x; (gallery scroll vs first page render): {page_ratio:.2f}x")


if __name__ == "__main__":
    main()
