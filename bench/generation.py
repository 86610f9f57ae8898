"""Generation speed: the studio's path beside a minimal direct client, and ingest throughput.

    .venv/bin/python bench/generation.py [--url http://127.0.0.1:9090] [--size 512] [--steps 10] [--rounds 2]
    .venv/bin/python bench/generation.py --skip-real     # only the figures against the fake

1. Against a real InvokeAI (the peer server of ../shared/invokeai-peer/setup.sh, tiny-sd1): one 4-image batch
   sent by a minimal direct client (enqueue, poll the items every 0.25 s, download each image and thumbnail as
   it completes) and the same batch through the project (`step_create`, then the follower task's body in this
   thread, until the 4 photos are stored with their thumbnails). Rounds alternate which goes first, so a busy
   shared server hurts both. Reports each side's time, the ratio (target <= 1.15) and, for the project, the
   delay from each item's completion (InvokeAI's completed_at) to its photo being stored (target p95 <= 1 s).
2. Against the fake InvokeAI in its own process, generating in zero time: a batch of 1024x1024 PNGs is made
   first, then the follower ingests them (download, check, thumbnail, store, row); photos per second
   (target >= 25/s on the 2-core development machine).
3. Eight one-image steps across two fake InvokeAI backends (each in its own process, generating in
   --item-seconds of wall time per image): the local one and an added URL. Routing spreads them by queue length;
   the steps are followed together until every image is stored. Reports the wall time beside the slower
   backend's share (its images x item seconds) and the sum of both (target: the share, not the sum).

Runs on a throwaway SQLite database in a temporary DATA_DIR; the real server's queue is only touched by the
batches this script enqueues.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUEUE = "/api/v1/queue/default"
PROMPT = "a lighthouse at dusk, oil painting"


def configure(url: str) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="generation-bench-"))
    os.environ.update(
        DATA_DIR=str(data_dir),
        SECRET_KEY="bench",  # noqa: S106  (a throwaway database)
        DJANGO_SETTINGS_MODULE="gallery_project.settings",
        DATABASE_URL=f"sqlite:///{data_dir / 'bench.sqlite3'}",
        INVOKEAI_LOCAL_URL=url,
        LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def bench_account():
    """The account the bench's sessions and images belong to."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    return users.filter(username="bench").first() or users.create_superuser(username="bench", password=None)


@contextlib.contextmanager
def store_times() -> Iterator[dict[str, float]]:
    """While the block runs: when each generated photo was stored (time.time()), by its InvokeAI image name."""
    from photos import services as photo_services

    stored_at: dict[str, float] = {}
    store = photo_services.generated_photo_store

    def timed_store(**kwargs):
        photo = store(**kwargs)
        if photo is not None:
            stored_at[photo.invoke_id] = time.time()
        return photo

    photo_services.generated_photo_store = timed_store
    try:
        yield stored_at
    finally:
        photo_services.generated_photo_store = store


def completed_at(value: str) -> float:
    """InvokeAI's item timestamps are UTC, to the millisecond."""
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()


def direct_run(url: str, body: dict) -> float:
    """What a minimal script does: enqueue, poll the items, download each image as soon as it is done."""
    http = requests.Session()
    start = time.monotonic()
    enqueued = http.post(f"{url}{QUEUE}/enqueue_batch", json=body, timeout=60).json()
    item_ids = sorted(enqueued["item_ids"])
    fetched: set[int] = set()
    while len(fetched) < len(item_ids):
        time.sleep(0.25)
        items = http.post(f"{url}{QUEUE}/items_by_ids", json={"item_ids": item_ids}, timeout=60).json()
        for item in items:
            if item["item_id"] in fetched or item["status"] not in ("completed", "failed", "canceled"):
                continue
            fetched.add(item["item_id"])
            for result in item["session"]["results"].values():
                if result.get("type") == "image_output":
                    name = result["image"]["image_name"]
                    http.get(f"{url}/api/v1/images/i/{name}/full", timeout=60).raise_for_status()
                    http.get(f"{url}/api/v1/images/i/{name}/thumbnail", timeout=60).raise_for_status()
    return time.monotonic() - start


def project_run(model_key: str, size: int, steps: int, seed: int) -> tuple[float, list[float]]:
    """The studio's path: create the step, follow it as the worker would, until every photo is stored."""
    from backends import manager
    from generation import follower, services

    with store_times() as stored_at:
        start = time.monotonic()
        session = services.session_create(owner=bench_account())
        request = services.StepRequest(
            prompt=PROMPT, model_key=model_key, width=size, height=size, steps=steps, seed=seed, batch_size=4
        )
        step = services.step_create(session_id=session.pk, owner=session.owner, request=request)
        assert follower.step_follow(step_id=step.pk, budget=3600) == "finished"
        elapsed = time.monotonic() - start
    step.refresh_from_db()
    assert step.status == "completed" and step.images_retrieved == 4, (step.status, step.error_message)
    client = manager.invokeai_client(step.backend_url)
    raw = client._json("POST", f"{QUEUE}/items_by_ids", json={"item_ids": step.item_ids})
    images = {item.item_id: item.image_name for item in client.queue_items(step.item_ids, output_node="output")}
    delays = [stored_at[images[item["item_id"]]] - completed_at(item["completed_at"]) for item in raw]
    return elapsed, delays


def real_benchmark(args: argparse.Namespace) -> None:
    from backends.invokeai import graphs
    from generation import models_cache
    from generation.models import CachedModel

    models_cache.models_refresh()
    model = CachedModel.objects.get(name="tiny-sd1")
    print(f"1. InvokeAI at {args.url}: 4 x tiny-sd1, {args.size}x{args.size}, {args.steps} steps, {args.rounds} rounds")
    direct_times, project_times, delays = [], [], []
    # Fresh seeds for every batch: InvokeAI caches node outputs, so a batch it has seen comes back at once.
    base = secrets.randbelow(graphs.SEED_MAX - 1000)
    for round_number in range(args.rounds):
        seed = base + round_number * 10
        params = graphs.GenerationParameters(
            model=model.identifier,
            prompt=PROMPT,
            width=args.size,
            height=args.size,
            steps=args.steps,
            seed=seed,
            batch_size=4,
            scheduler="dpmpp_2m_k",
        )
        runs = [
            ("direct", lambda p=params: direct_times.append(direct_run(args.url, graphs.build_batch(p)))),
            (
                "project",
                lambda s=seed + 5: record(project_times, delays, project_run(model.key, args.size, args.steps, s)),
            ),
        ]
        for name, run in runs if round_number % 2 == 0 else reversed(runs):
            run()
            latest = (direct_times if name == "direct" else project_times)[-1]
            print(f"   round {round_number + 1} {name:<8} {latest:7.2f} s")
    direct, project = statistics.median(direct_times), statistics.median(project_times)
    delays.sort()
    p95 = delays[max(0, round(0.95 * len(delays)) - 1)]
    print(f"   median: direct {direct:.2f} s, project {project:.2f} s, ratio {project / direct:.3f} (target <= 1.15)")
    print(
        f"   completion -> stored, {len(delays)} images: median {statistics.median(delays) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms (target p95 <= 1000 ms)"
    )


def record(times: list[float], delays: list[float], result: tuple[float, list[float]]) -> None:
    times.append(result[0])
    delays.extend(result[1])


FAKE_SERVER = (
    "import sys, time; from testing.fake_invokeai import FakeInvokeAI; "
    "seconds = float(sys.argv[1]); server = FakeInvokeAI(seconds_per_item=seconds, wall_clock=seconds > 0).start(); "
    "print(server.url, flush=True); time.sleep(3600)"
)


def fake_process(*, item_seconds: float) -> tuple[subprocess.Popen, str]:
    """A fake InvokeAI in a process of its own, taking `item_seconds` of wall time per image; (process, url)."""
    process = subprocess.Popen(  # noqa: S603 - this interpreter, running this module's own script
        [sys.executable, "-c", FAKE_SERVER, str(item_seconds)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def ingest_benchmark(args: argparse.Namespace) -> None:
    from django.conf import settings

    from generation import follower, models_cache, services
    from generation.models import CachedModel

    # The fake in its own process, as InvokeAI would be, so serving images does not compete for this one's GIL.
    fake, url = fake_process(item_seconds=0)
    try:
        settings.INVOKEAI_LOCAL_URL = url
        settings.MAX_BATCH_SIZE = args.ingest
        models_cache.models_refresh()
        model = CachedModel.objects.get(name="tiny-sd1", available=True)
        session = services.session_create(owner=bench_account())
        made = time.monotonic()
        request = services.StepRequest(
            prompt=PROMPT, model_key=model.key, width=1024, height=1024, steps=1, batch_size=args.ingest
        )
        # With zero generation time the fake makes every image while answering the enqueue.
        step = services.step_create(session_id=session.pk, owner=session.owner, request=request)
        made = time.monotonic() - made
        start = time.monotonic()
        assert follower.step_follow(step_id=step.pk, budget=3600) == "finished"
        elapsed = time.monotonic() - start
        step.refresh_from_db()
        assert step.images_retrieved == args.ingest, step.error_message
        print(f"2. Fake InvokeAI, zero generation time: {args.ingest} x 1024x1024 PNG (made in {made:.1f} s)")
        print(
            f"   ingested in {elapsed:.2f} s: {args.ingest / elapsed:.1f} photos/s, "
            f"{elapsed / args.ingest * 1000:.0f} ms each (target >= 25/s)"
        )
    finally:
        fake.terminate()
        fake.wait()


def backends_benchmark(args: argparse.Namespace) -> None:
    from collections import Counter

    from django.conf import settings

    from backends import services as backend_services
    from generation import follower, models_cache, services
    from generation.models import CachedModel, GenerationStep

    fakes = [fake_process(item_seconds=args.item_seconds) for _ in range(2)]
    try:
        (_, local), (_, remote) = fakes
        settings.INVOKEAI_LOCAL_URL = local
        backend = backend_services.backend_add(name="second", url=remote)
        backend_services.backend_check(backend_id=backend.pk)
        models_cache.models_refresh()
        model = CachedModel.objects.get(name="tiny-sd1", available=True)
        session = services.session_create(owner=bench_account())
        request = services.StepRequest(prompt=PROMPT, model_key=model.key, width=64, height=64, steps=1, batch_size=1)
        start = time.monotonic()
        steps = [services.step_create(session_id=session.pk, owner=session.owner, request=request) for _ in range(8)]
        # The workers' followers, taking turns: one look at each running step, then the poll interval.
        running = [step.pk for step in steps]
        while running:
            running = [pk for pk in running if not follower.step_poll(step_id=pk).finished]
            time.sleep(follower.POLL_INTERVAL)
        elapsed = time.monotonic() - start
        done = GenerationStep.objects.filter(pk__in=[step.pk for step in steps], status="completed")
        assert done.count() == 8, [step.error_message for step in GenerationStep.objects.exclude(status="completed")]
        split = Counter(step.backend_url for step in steps)
        share = max(split.values()) * args.item_seconds
        total = 8 * args.item_seconds
        print(
            f"3. Two fake backends, {args.item_seconds:g} s per image: 8 steps split "
            f"{split[local]} local / {split[remote]} added URL"
        )
        print(
            f"   wall {elapsed:.2f} s; slower backend's share {share:.2f} s (wall/share {elapsed / share:.2f}); "
            f"sum {total:.2f} s (wall/sum {elapsed / total:.2f}); target: the share, not the sum"
        )
    finally:
        for process, _ in fakes:
            process.terminate()
            process.wait()


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # progress shows when the output goes to a file
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:9090", help="a real InvokeAI with tiny-sd1 installed")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ingest", type=int, default=60, help="images in the ingest batch")
    parser.add_argument("--skip-real", action="store_true", help="only the figures against the fake")
    parser.add_argument("--item-seconds", type=float, default=1.0, help="the fake backends' time per image")
    args = parser.parse_args()
    configure(args.url)
    print(f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    if not args.skip_real:
        real_benchmark(args)
    ingest_benchmark(args)
    backends_benchmark(args)


if __name__ == "__main__":
    main()
