"""The main grid's stacks at 100,000 photos: server time of the timeline's first page, deepest page and a jump to
a date, with a studio step's alternatives folded (the default) and with every alternative, and the plans.

    .venv/bin/python -u bench/stacks.py --database sqlite
    .venv/bin/python -u bench/stacks.py --database postgres [--url postgresql://postgres@127.0.0.1:5432/gallery_stacks_bench]

The photos are bench/gallery_list.py's (same filler); the generated fifth of them is then made the alternatives
of studio steps of four, taken a second apart, half of the steps with one chosen. So the folded timeline passes
over about 15,000 hidden rows, and a page of 50 tiles reads about 60 rows. The two ways are measured in turns,
request by request, so that a machine busy with other work slows both alike. Targets: the folded pages within
1.5x of every alternative's, the same number of SQL queries, and plans that walk the (owner, taken_at, id) index
and look alternatives up by their indexes, never a scan of them.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gallery_list import configure, fill, measure

STEP_SIZE = 4


def make_steps(user) -> None:
    """Studio steps of STEP_SIZE alternatives from the user's generated photos (kept if already made)."""
    from generation.models import GenerationSession, GenerationStep, StepAlternative
    from photos.models import Photo

    generated = Photo.objects.filter(owner=user, is_generated=True).order_by("taken_at", "id")
    if StepAlternative.objects.filter(photo__owner=user).count() >= generated.count() - STEP_SIZE:
        print("reusing the steps already in the database")
        return
    began = time.perf_counter()
    GenerationSession.objects.filter(owner=user).delete()
    session = GenerationSession.objects.create(owner=user, title="bench")
    rng = random.Random(5)
    photos = list(generated.only("id", "taken_at"))
    groups = [photos[start : start + STEP_SIZE] for start in range(0, len(photos) - STEP_SIZE + 1, STEP_SIZE)]
    steps = GenerationStep.objects.bulk_create(
        GenerationStep(
            session=session,
            position=position,
            prompt="bench",
            model_key="m",
            model_hash="h",
            model_name="m",
            batch_size=STEP_SIZE,
            status=GenerationStep.Status.COMPLETED,
        )
        for position in range(len(groups))
    )
    alternatives, moved = [], []
    for step, group in zip(steps, groups, strict=True):
        chosen = rng.randrange(STEP_SIZE) if rng.random() < 0.5 else None
        for index, photo in enumerate(group):
            photo.taken_at = group[0].taken_at + timedelta(seconds=index)
            moved.append(photo)
            alternatives.append(
                StepAlternative(step=step, photo=photo, item_id=index + 1, index=index, selected=index == chosen)
            )
    Photo.objects.bulk_update(moved, ["taken_at"], batch_size=2000)
    StepAlternative.objects.bulk_create(alternatives, batch_size=5000)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    print(f"made {len(steps)} steps of {STEP_SIZE} alternatives in {time.perf_counter() - began:.1f} s")


def jump_paths(rounds: int) -> list[str]:
    """Jumps to random days of the ten years, half of them in each direction."""
    rng = random.Random(7)
    paths = []
    for index in range(rounds):
        day = datetime(2016, 1, 1) + timedelta(days=rng.randrange(10 * 365))
        sort = "taken" if index % 2 else "taken_oldest"
        paths.append(f"/api/photos/?limit=50&sort={sort}&from_day={day:%Y-%m-%d}")
    return paths


def paired(client, paths: list[str], headers: dict | None = None) -> dict[str, list[float]]:
    """Server times of each path folded and with every alternative, one after the other, so that a machine
    busy with other work slows both alike."""
    samples: dict[str, list[float]] = {"stacked": [], "all": []}
    for path in paths:
        for alternatives, times in samples.items():
            joiner = "&" if "?" in path else "?"
            began = time.perf_counter()
            response = client.get(f"{path}{joiner}alternatives={alternatives}", headers=headers or {})
            times.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, path
    return samples


def plan(user, cursor: str | None) -> str:
    from django.db import connection

    from photos import selectors

    # The page's own query, as photo_list builds it (its rows, not the tallies' total).
    captured = []

    def keep(execute, sql, params, many, context):
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        selectors.photo_list(owner=user, sort="taken", limit=50, cursor=cursor, alternatives=selectors.STACKED)
    sql, params = next((sql, params) for sql, params in captured if "LIMIT" in sql)
    explain = "EXPLAIN (ANALYZE, COSTS OFF)" if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN"
    with connection.cursor() as db:
        db.execute(f"{explain} {sql}", params)
        return "\n".join(" ".join(str(part) for part in row) for row in db.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    # Not gallery_list.py's database: the steps made here move the taken_at of its generated photos.
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/gallery_stacks_bench")
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    configure(args)
    user = fill(args.photos)
    make_steps(user)

    from django.db import connection
    from django.test import Client

    from photos import selectors
    from photos.models import Photo

    client = Client()
    client.force_login(user)
    timeline = Photo.objects.filter(owner=user, deleted_at=None).order_by("-taken_at", "-id")
    total = timeline.count()
    deep = selectors.encode_cursor(timeline[total - 51], "taken")
    print(f"\n{connection.vendor}, {total} live photos, {args.rounds} requests each, server time in ms")
    print(f"{'page':<40}{'p50':>8}{'p95':>8}{'queries':>9}")
    cases = [
        ("API timeline, first", ["/api/photos/?limit=50&sort=taken"] * args.rounds),
        ("API timeline, deepest", [f"/api/photos/?limit=50&sort=taken&cursor={deep}"] * args.rounds),
        ("API jump to a date (random)", jump_paths(args.rounds)),
        ("gallery page, first", ["/"] * args.rounds),
    ]
    for name, paths in cases:
        for alternatives, samples in paired(client, paths).items():
            _, queries = measure(client, f"{paths[0]}{'&' if '?' in paths[0] else '?'}alternatives={alternatives}", 0)
            label = f"{name} ({alternatives})"
            p50, p95 = statistics.median(samples), statistics.quantiles(samples, n=20)[-1]
            print(f"{label:<40}{p50:>8.2f}{p95:>8.2f}{queries:>9}")
    print("\nplan of the stacked timeline's first page:\n" + plan(user, None))
    print("\nplan of its deepest page:\n" + plan(user, deep))


if __name__ == "__main__":
    main()
