"""The live studio's figures: an image's wait from InvokeAI to the gallery, events against polling, and how late
the minute schedules run while eight steps are followed on two workers.

    .venv/bin/python bench/live.py --url http://127.0.0.1:9090 [--images 6] [--rounds 2]   # 1., 2. and 3.
    .venv/bin/python bench/live.py --skip-real                                  # only 2. and 3. on the fake

1. Against a real InvokeAI (tiny-sd1, 64 px, 2 denoising steps): batches made alternately with InvokeAI's
   events handled (generation.events.event_handle, in its own thread as the listener runs it; no poll) and with
   the follower's poll alone (follower.step_follow, every POLL_INTERVAL). In both, one EventStream notes when
   InvokeAI emits each item's `completed`, and the photo's storing (with its thumbnail) is timed: completed ->
   stored per image, median, p95 and max for each way. Target: events p95 <= 300 ms.
2. The whole app as `make run` starts it (honcho, gunicorn, the supervised cluster with Q_WORKERS=2 and the
   events listener; worker.tests.stack), the fake InvokeAI generating in real time: eight steps at once, 3 images
   each. How late each minute schedule's task ran (from the minute it was due to its end: the scheduler's pass,
   every 30 s, plus the wait in the queue), and the wait in the queue of a heartbeat probe queued every 2 s.
   Target: every minute schedule within 70 s of its time.
3. The same app, a Chromium page on the studio clicking Generate (3 images, 256 px, 8 denoising steps), the fake
   in real time and, unless --skip-real, the real InvokeAI: from an EventStream's receipt of each image's first
   `invocation_progress` with a preview (on loopback, its emission) to that preview loaded and laid out in the
   page; split into the listener's writing it and the page's poll. Target: <= 1 s.

Runs on throwaway databases in temporary directories; the real server's queue is only touched by the batches
this script enqueues.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_spec = importlib.util.spec_from_file_location("generation_bench", Path(__file__).with_name("generation.py"))
assert _spec is not None and _spec.loader is not None
generation_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generation_bench)


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return (
        f"median {statistics.median(ordered) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
    )


class Events:
    """An EventStream on the real server: notes each item's `completed`, and hands events to the listener's own
    queue (generation.events.EventQueue) while `handling`."""

    def __init__(self, url: str) -> None:
        from backends.invokeai.events import EventStream
        from generation.events import EventQueue

        self.completed_at: dict[int, float] = {}
        self.output_at: dict[int, float] = {}
        self.handling = False
        self.queue = EventQueue(url)
        self.stream = EventStream(url, on_event=self._received)
        self.queue.start()
        threading.Thread(target=self.stream.run, daemon=True).start()
        assert self.stream.connected.wait(20), "no Socket.IO connection"
        time.sleep(0.5)

    def _received(self, name: str, payload: dict) -> None:
        if name == "queue_item_status_changed" and payload.get("status") == "completed":
            self.completed_at.setdefault(payload["item_id"], time.time())
        if name == "invocation_complete" and payload.get("invocation_source_id") == "output":
            self.output_at.setdefault(payload["item_id"], time.time())
        if self.handling:
            self.queue.put(name, payload)


def real_benchmark(args: argparse.Namespace) -> None:
    from backends.invokeai import graphs
    from generation import follower, models_cache, services
    from generation.models import CachedModel, GenerationStep, StepAlternative

    models_cache.models_refresh()
    model = CachedModel.objects.get(name="tiny-sd1")
    listener = Events(args.url)
    delays: dict[str, list[float]] = {"events": [], "polling": []}
    # From the output node's invocation_complete (the image exists) to InvokeAI's `completed`, and to stored.
    gaps: list[float] = []
    from_output: list[float] = []
    print(f"1. InvokeAI at {args.url}: {args.images} x tiny-sd1, 64x64, 2 steps, {args.rounds} rounds of each")
    order = ["events", "polling"]
    with generation_bench.store_times() as stored_at:
        try:
            for round_number in range(args.rounds):
                for way in order if round_number % 2 == 0 else reversed(order):
                    session = services.session_create(owner=generation_bench.bench_account())
                    request = services.StepRequest(
                        prompt=generation_bench.PROMPT,
                        model_key=model.key,
                        width=64,
                        height=64,
                        steps=2,
                        seed=graphs.SEED_MAX // 2 + round_number * 100 + len(way),
                        batch_size=args.images,
                    )
                    listener.handling = way == "events"
                    step = services.step_create(session_id=session.pk, owner=session.owner, request=request)
                    if way == "polling":
                        assert follower.step_follow(step_id=step.pk, budget=3600) == "finished"
                    deadline = time.monotonic() + 600
                    while GenerationStep.objects.get(pk=step.pk).status == "running":
                        assert time.monotonic() < deadline, "the step did not finish"
                        time.sleep(0.05)
                    listener.handling = False
                    step.refresh_from_db()
                    assert step.images_retrieved == args.images, (step.status, step.error_message)
                    for item_id, name in StepAlternative.objects.filter(step=step).values_list(
                        "item_id", "photo__invoke_id"
                    ):
                        delays[way].append(stored_at[name] - listener.completed_at[item_id])
                        gaps.append(listener.completed_at[item_id] - listener.output_at[item_id])
                        if way == "events":
                            from_output.append(stored_at[name] - listener.output_at[item_id])
                    print(f"   round {round_number + 1} {way:<8} {percentiles(delays[way][-args.images :])}")
        finally:
            listener.stream.stop()
    for way, values in delays.items():
        print(f"   {way:<8} completed -> stored, {len(values)} images: {percentiles(values)}")
    print(f"   the output node's invocation_complete -> InvokeAI's completed: {percentiles(gaps)}")
    print(f"   events: invocation_complete -> stored (download of image and thumbnail): {percentiles(from_output)}")
    print("   (target: events p95 <= 300 ms)")


def schedule_benchmark(args: argparse.Namespace) -> None:
    from datetime import timedelta

    from testing.fake_invokeai import FakeInvokeAI
    from worker.tests.stack import RealTimeClock, Stack, database_url, wait_for

    steps_at_once, images, seconds_per_image = 8, 3, 8
    fake = FakeInvokeAI(seconds_per_item=seconds_per_image)
    fake.clock = RealTimeClock()
    fake.start()
    tmp = Path(tempfile.mkdtemp(prefix="live-bench-"))
    print(
        f"2. The app as `make run` starts it, Q_WORKERS=2: {steps_at_once} steps x {images} images at once, "
        f"{seconds_per_image} s each on the fake InvokeAI"
    )
    with database_url(tmp) as database:
        env = {"INVOKEAI_LOCAL_URL": fake.url, "WORKER_SUPERVISOR_INTERVAL": "2", "LOG_LEVEL": "WARNING"}
        stack = Stack(tmp, database, workers=2, env=env).start(probe_every=2)
        try:
            wait_for(lambda: stack.worker()["state"] == "ok", "a first heartbeat", timeout=120)
            stack.post("/api/models/refresh/", {})
            model = next(model for model in stack.get("/api/models/", type="main") if model["name"] == "tiny-sd1")
            body = {"prompt": "a lighthouse", "model_key": model["key"], "width": 64, "height": 64, "steps": 2}
            started = time.time()
            ids = []
            for number in range(steps_at_once):
                session = stack.post("/api/generation/sessions/", {"title": f"Bench {number}"}, expect=201)["id"]
                step = stack.post(
                    f"/api/generation/sessions/{session}/steps/", {**body, "batch_size": images}, expect=202
                )
                ids.append(step["id"])

            def ended() -> bool:
                return all(stack.get(f"/api/generation/steps/{pk}/")["status"] != "running" for pk in ids)

            wait_for(ended, "the steps' end", timeout=steps_at_once * images * seconds_per_image + 300, every=2)
            finished = time.time()
            waits = stack.queue_waits(since=started)
            script = (
                "from django_q.models import Schedule, Task\n"
                "for s in Schedule.objects.filter(minutes=1):\n"
                "    for t in Task.objects.filter(group=s.name):\n"
                "        print(s.name, s.next_run.timestamp(), t.started.timestamp(), t.stopped.timestamp())"
            )
            rows = [line.split() for line in stack.manage("shell", "-v0", "-c", script, check=True).stdout.splitlines()]
        finally:
            stack.stop()
            fake.stop()
    minute = timedelta(minutes=1).total_seconds()
    late: dict[str, list[tuple[float, float]]] = {}
    for name, next_run, queued, stopped in rows:
        next_run, queued, stopped = float(next_run), float(queued), float(stopped)
        if not started <= queued <= finished:
            continue
        # The schedule's times are next_run minus whole minutes; this task was due at the last one before it.
        due = next_run - minute * (int((next_run - queued) // minute) + 1)
        late.setdefault(name, []).append((stopped - due, stopped - queued))
    print(f"   {finished - started:.0f} s of eight steps running")
    for name, values in sorted(late.items()):
        worst = max(values)
        print(
            f"   {name:<28} {len(values)} runs, latest {worst[0]:.1f} s after its minute "
            f"({worst[1]:.1f} s of it in the queue)"
        )
    print(f"   heartbeat probes every 2 s ({len(waits)}): wait in the queue {percentiles(waits)}")
    print("   (target: every minute schedule within 70 s of its time)")


# Installed before any page script: when each denoising preview (img.preview, named by its item) first loads with
# a size on the page, in the epoch milliseconds of the machine's clock (the one the bench's own times use), and
# when the listener wrote it (its URL's version).
_PREVIEW_WATCH = """
window.__previews = {};
document.addEventListener("load", (event) => {
  const image = event.target;
  if (!(image instanceof HTMLImageElement) || !image.classList.contains("preview")) return;
  const item = (image.src.match(/previews\\/(\\d+)/) || [])[1];
  if (item && !(item in window.__previews) && image.getBoundingClientRect().width > 0) {
    window.__previews[item] = [Date.now(), Number(new URL(image.src).searchParams.get("v"))];
  }
}, true);
"""


# The page's requests since the last look: the live partial's and the previews'.
_REQUEST_TIMES = """() => {
  const entries = performance.getEntriesByType("resource")
    .filter((entry) => entry.name.includes("/live/") || entry.name.includes("/previews/"))
    .map((entry) => ({name: entry.name, duration: entry.duration}));
  performance.clearResourceTimings();
  return entries;
}"""


class FirstPreviews:
    """An EventStream noting when InvokeAI's first denoising preview of each item arrives (time.time()): on
    loopback, within a millisecond of its emission."""

    def __init__(self, url: str) -> None:
        from backends.invokeai.events import EventStream

        self.at: dict[int, float] = {}
        self.stream = EventStream(url, on_event=self._received)
        threading.Thread(target=self.stream.run, daemon=True).start()
        assert self.stream.connected.wait(20), "no Socket.IO connection"

    def _received(self, name: str, payload: dict) -> None:
        image = payload.get("image")
        if name == "invocation_progress" and isinstance(image, dict) and image.get("dataURL"):
            self.at.setdefault(payload["item_id"], time.time())


def preview_benchmark(args: argparse.Namespace, *, real: bool) -> None:
    from playwright.sync_api import sync_playwright

    from testing.fake_invokeai import FakeInvokeAI
    from worker.tests.stack import RealTimeClock, Stack, database_url

    fake = None
    url = args.url
    size, steps, images = 256, 8, 3
    if not real:
        # 8 denoising steps over 80 % of 6 s: a preview every 0.6 s, as a slow GPU would send them.
        fake = FakeInvokeAI(seconds_per_item=6)
        fake.clock = RealTimeClock()
        fake.start()
        url = fake.url
    tmp = Path(tempfile.mkdtemp(prefix="live-bench-previews-"))
    where = f"the real InvokeAI at {url}" if real else "the fake InvokeAI"
    print(
        f"3. First denoising preview, InvokeAI's event -> visible in the studio page (Chromium, 1440x900), on "
        f"{where}: {args.preview_runs} steps of {images} images, {size}x{size}, {steps} denoising steps; the app as "
        "`make run` starts it (gunicorn, the events listener)"
    )
    latencies: list[float] = []
    # The two halves: the event -> the listener has written the preview; written -> visible (the page's poll).
    handled: list[float] = []
    polled: list[float] = []
    # How long the page's requests took: the live partial's polls (False) and the previews' images (True).
    requests_ms: dict[bool, list[float]] = {False: [], True: []}
    skipped = 0
    with database_url(tmp) as database:
        # The test settings serve static files from the app's folders: collectstatic takes minutes.
        env = {"DJANGO_SETTINGS_MODULE": "gallery_project.settings_test", "LOG_LEVEL": "WARNING"}
        stack = Stack(tmp, database, workers=2, env=env).start(probe_every=60)
        previews = FirstPreviews(url)
        try:
            script = f"from backends import services; services.backend_settings_update(local_backend_url={url!r})"
            stack.manage("shell", "-v0", "-c", script, check=True)
            stack.post("/api/models/refresh/", {})
            cookie = stack.session_cookie()
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium",
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
                )
                context = browser.new_context(viewport={"width": 1440, "height": 900})
                context.add_cookies([{"name": "sessionid", "value": cookie, "url": stack.url}])
                context.add_init_script(_PREVIEW_WATCH)
                page = context.new_page()
                for run in range(args.preview_runs):
                    page.goto(f"{stack.url}/studio/")
                    page.select_option("select[name=model_key]", label="tiny-sd1 · SD 1.x")
                    page.fill("textarea[name=prompt]", f"{generation_bench.PROMPT}, {run}")
                    for name, value in (("batch_size", images), ("width", size), ("height", size), ("steps", steps)):
                        page.fill(f"input[name={name}]", str(value))
                    page.get_by_role("button", name="Generate").click()
                    page.wait_for_url(f"{stack.url}/studio/*/")
                    page.locator("#step-live").wait_for(state="attached", timeout=60_000)
                    page_ready = time.time()
                    page.locator("#step-panel .step-status", has_text="Completed").wait_for(timeout=600_000)
                    shown = page.evaluate("window.__previews")
                    for entry in page.evaluate(_REQUEST_TIMES):
                        requests_ms["/previews/" in entry["name"]].append(entry["duration"] / 1000)
                    session = page.url.rstrip("/").rsplit("/", 1)[-1]
                    [step] = stack.get(f"/api/generation/sessions/{session}/")["steps"]
                    this_run = []
                    for item_id in step["item_ids"]:
                        emitted = previews.at.get(item_id)
                        if emitted is None or emitted < page_ready:
                            skipped += 1  # emitted while the page was still loading: not the page's doing
                            continue
                        assert str(item_id) in shown, f"item {item_id}'s preview was never seen on the page"
                        visible, written = (value / 1000 for value in shown[str(item_id)])
                        this_run.append(visible - emitted)
                        handled.append(written - emitted)
                        polled.append(visible - written)
                    latencies += this_run
                    print(f"   step {run + 1}: {[round(value * 1000) for value in this_run]} ms")
                browser.close()
        finally:
            previews.stream.stop()
            stack.stop()
            if fake is not None:
                fake.stop()
    if latencies:
        print(f"   first preview, event -> visible, {len(latencies)} images: {percentiles(latencies)}")
        print(f"     event -> written by the listener: {percentiles(handled)}")
        print(f"     written -> visible in the page: {percentiles(polled)}")
        print(
            f"       the page's polls of the live partial, {len(requests_ms[False])}: {percentiles(requests_ms[False])}"
        )
        print(f"       the previews' images, {len(requests_ms[True])}: {percentiles(requests_ms[True])}")
    print(f"   ({skipped} first previews sent before the page had loaded left out; target <= 1000 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:9090")
    parser.add_argument("--images", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-real", action="store_true")
    parser.add_argument("--skip-schedules", action="store_true")
    parser.add_argument("--skip-previews", action="store_true")
    parser.add_argument("--preview-runs", type=int, default=5)
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    generation_bench.configure(args.url)
    if not args.skip_real:
        real_benchmark(args)
    if not args.skip_schedules:
        schedule_benchmark(args)
    if not args.skip_previews:
        preview_benchmark(args, real=False)
        if not args.skip_real:
            preview_benchmark(args, real=True)


if __name__ == "__main__":
    main()
