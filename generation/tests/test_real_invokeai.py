"""The studio's end-to-end flow against a real InvokeAI: `INVOKEAI_TEST_URL=http://127.0.0.1:9090 make test`.

The same path as the fake's tests (step_create, the follower task's body, selection, img2img from the choice,
cancel), on the peer server's tiny random-weight models; images are noise, everything else is real. The
server is shared: only our own batches are cancelled, and whatever is still ours is cancelled at the end.
"""

from __future__ import annotations

import io
import json
import threading
import time
from dataclasses import replace

import pytest
from PIL import Image

from backends import manager
from backends.invokeai.client import InvokeAIClient
from backends.invokeai.events import EventStream
from backends.invokeai.graphs import seeds_from
from generation import events, follower, services
from generation.models import CachedModel, GenerationStep, ItemProgress
from photos import storage
from testing.real_invokeai import MODULE_MARKS, REAL_URL

from .conftest import step_request
from .test_cancel_race import Api, Concurrent

pytestmark = MODULE_MARKS


def follow_to_end(step_id: int, *, timeout: float = 300) -> GenerationStep:
    outcome = follower.step_follow(step_id=step_id, budget=timeout)
    assert outcome == "finished", "the step did not finish in time (is the shared InvokeAI busy?)"
    return GenerationStep.objects.get(pk=step_id)


def test_four_images_then_img2img_from_the_chosen_one(real, user):
    sd1 = CachedModel.objects.get(name="tiny-sd1")
    session = services.session_create(owner=user)
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, seed=4242))
    step = follow_to_end(step.pk)

    assert (step.status, step.images_retrieved, step.images_failed, step.progress) == ("completed", 4, 0, 100)
    alternatives = list(step.alternatives.select_related("photo").order_by("index"))
    assert [alternative.photo.seed for alternative in alternatives] == seeds_from(4242, 4)
    for alternative in alternatives:
        photo = alternative.photo
        assert photo.local_storage_path == f"generated/sessions/{session.pk}/{step.pk}/variants/{photo.pk}.png"
        with Image.open(storage.absolute(photo.local_storage_path)) as png:
            assert png.format == "PNG" and png.size == (64, 64)
            # InvokeAI wrote the seed it used into the image's own metadata.
            assert json.loads(png.info["invokeai_metadata"])["seed"] == photo.seed
        assert storage.absolute(photo.local_thumbnail_path).exists()

    chosen = alternatives[2]
    services.alternative_select(owner=user, step_id=step.pk, photo_id=chosen.photo_id)
    request = services.step_request_from(step=step, variation="continue", strength=0.5)
    second = services.step_create(owner=user, session_id=session.pk, request=replace(request, batch_size=2))
    second = follow_to_end(second.pk)
    assert (second.status, second.images_retrieved, second.parent_id) == ("completed", 2, step.pk)
    assert second.parameters["init_photo_id"] == str(chosen.photo_id)
    for alternative in second.alternatives.select_related("photo"):
        assert alternative.photo.source_image_id == chosen.photo_id
        assert alternative.photo.generation_params["mode"] == "img2img"


def test_cancel_mid_batch_keeps_what_finished(real, user):
    sd1 = CachedModel.objects.get(name="tiny-sd1")
    session = services.session_create(owner=user)
    step = services.step_create(
        owner=user, session_id=session.pk, request=step_request(sd1, width=128, height=128, steps=8)
    )
    deadline = time.monotonic() + 300
    while not GenerationStep.objects.get(pk=step.pk).images_retrieved:
        assert time.monotonic() < deadline, "no image finished in time"
        follower.step_poll(step_id=step.pk)
        time.sleep(0.1)

    cancelled = services.step_cancel(owner=user, step_id=step.pk)
    if cancelled.status == "running":
        cancelled = follow_to_end(step.pk)
    assert cancelled.status == "cancelled"
    assert 1 <= cancelled.images_retrieved < 4
    assert cancelled.images_failed == 0
    kept = cancelled.alternatives.select_related("photo")
    assert all(alternative.photo.is_available for alternative in kept)
    statuses = [cancelled.item_results[str(item_id)]["status"] for item_id in cancelled.item_ids]
    assert statuses.count("completed") == cancelled.images_retrieved
    assert set(statuses) == {"completed", "canceled"}


def test_an_uploaded_init_photo_is_sized_for_the_graph(real, gallery_photo, user):
    sd1 = CachedModel.objects.get(name="tiny-sd1")
    photo = gallery_photo(size=(2400, 1600), fmt="JPEG")
    session = services.session_create(owner=user, source_photo_id=photo.pk)
    request = step_request(sd1, mode="img2img", init_photo_id=photo.pk, width=96, height=64, batch_size=1)
    step = follow_to_end(services.step_create(owner=user, session_id=session.pk, request=request).pk)
    assert step.status == "completed"
    [alternative] = step.alternatives.select_related("photo")
    with Image.open(io.BytesIO(storage.absolute(alternative.photo.local_storage_path).read_bytes())) as png:
        assert png.size == (96, 64)


@pytest.fixture
def held_enqueue(monkeypatch):
    """Hold the client's enqueue call, before it is sent or after InvokeAI answered, until `go` is set."""
    reached, go = threading.Event(), threading.Event()
    real_enqueue = InvokeAIClient.enqueue

    def hold(after: bool):
        def enqueue(client, body):
            if not after:
                reached.set()
                go.wait(timeout=60)
            batch = real_enqueue(client, body)
            if after:
                reached.set()
                go.wait(timeout=60)
            return batch

        monkeypatch.setattr(InvokeAIClient, "enqueue", enqueue)
        return reached, go

    return hold


def finished(step_id: int) -> GenerationStep:
    """The step once it has ended: a cancelled one may still wait for InvokeAI to confirm."""
    step = GenerationStep.objects.get(pk=step_id)
    return follow_to_end(step_id) if step.status == GenerationStep.Status.RUNNING else step


def nothing_left_of(step: GenerationStep) -> None:
    counts = manager.invokeai_client(REAL_URL).batch_status(step.batch_id)
    assert (counts.pending, counts.in_progress) == (0, 0)
    assert counts.total == len(step.item_ids) == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("after", [False, True], ids=["before-invokeai-takes-it", "before-its-answer-arrives"])
def test_a_cancel_racing_the_enqueue_leaves_nothing_of_the_batch_on_invokeai(real, held_enqueue, after, user):
    reached, go = held_enqueue(after)
    sd1 = CachedModel.objects.get(name="tiny-sd1")
    session = services.session_create(owner=user)
    request = step_request(sd1, width=128, height=128, steps=8, batch_size=3)
    creating = Concurrent(lambda: services.step_create(owner=user, session_id=session.pk, request=request))
    creating.start()
    assert reached.wait(timeout=60)
    pending = GenerationStep.objects.get()
    assert services.step_cancel(owner=user, step_id=pending.pk).cancel_requested_at is not None
    go.set()

    step = finished(creating.outcome().pk)
    assert step.status == GenerationStep.Status.CANCELLED
    nothing_left_of(step)


@pytest.mark.django_db(transaction=True)
def test_a_cancel_racing_the_step_request_over_http(real, held_enqueue, live_server, user):
    reached, go = held_enqueue(after=False)
    sd1 = CachedModel.objects.get(name="tiny-sd1")
    session = services.session_create(owner=user)
    api = Api(live_server.url)
    body = {"prompt": "a lighthouse", "model_key": sd1.key, "width": 128, "height": 128, "steps": 8, "batch_size": 3}
    try:
        creating = Concurrent(lambda: api.post(f"/api/generation/sessions/{session.pk}/steps/", body))
        creating.start()
        assert reached.wait(timeout=60)
        [job] = api.in_flight()
        cancel = api.post(f"/api/generation/steps/{job['job_id']}/cancel")
        assert (cancel.status_code, cancel.json()["cancel_requested"]) == (200, True)
        go.set()
        created = creating.outcome()
    finally:
        api.http.close()
    assert created.status_code == 202, created.text
    assert created.json()["status"] in ("cancelled", "running")
    step = finished(created.json()["id"])
    assert step.status == GenerationStep.Status.CANCELLED
    nothing_left_of(step)


class Collected:
    """A real EventStream on the shared InvokeAI; its events are handled in the test's thread (the database's)."""

    def __init__(self, url: str) -> None:
        self.events: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        self.stream = EventStream(url, on_event=self._add)
        self._thread = threading.Thread(target=self.stream.run, daemon=True)

    def _add(self, name: str, payload: dict) -> None:
        with self._lock:
            self.events.append((name, payload))

    def __enter__(self) -> Collected:
        self._thread.start()
        assert self.stream.connected.wait(20), "no Socket.IO connection to the real InvokeAI"
        # The subscription is an emit after the connection; give the server a moment to act on it.
        time.sleep(0.5)
        return self

    def __exit__(self, *exc_info) -> None:
        self.stream.stop()
        self._thread.join(timeout=10)

    def take(self) -> list[tuple[str, dict]]:
        with self._lock:
            taken, self.events = self.events, []
        return taken


def test_events_move_progress_through_every_denoising_step_and_bring_previews(
    real, user, client, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(events, "PREVIEW_EVERY", 0)
    client.force_login(user)
    sd1 = CachedModel.objects.get(name="tiny-sd1")
    session = services.session_create(owner=user)
    steps = 6
    with Collected(REAL_URL) as collected:
        step = services.step_create(
            owner=user,
            session_id=session.pk,
            request=step_request(sd1, width=128, height=128, steps=steps, batch_size=2),
        )
        percents: dict[int, set[int]] = {item_id: set() for item_id in step.item_ids}
        step_progress: list[int] = []
        previews_seen: set[tuple[int, int]] = set()
        served_previews: set[str] = set()
        outcomes: list[str] = []
        deadline = time.monotonic() + 300
        while GenerationStep.objects.get(pk=step.pk).status == "running":
            assert time.monotonic() < deadline, "the step did not finish in time (is the shared InvokeAI busy?)"
            for name, payload in collected.take():
                with django_capture_on_commit_callbacks(execute=True):
                    outcomes.append(events.event_handle(name=name, payload=payload))
                for row in ItemProgress.objects.filter(step=step):
                    percents[row.item_id].add(row.percent)
                    if row.preview_at and storage.absolute(storage.preview_path(step.pk, row.item_id)).exists():
                        previews_seen.add((row.item_id, int(row.preview_at.timestamp() * 1000)))
                # What an API client sees: the status's progress object, each running item's preview URL.
                progress = client.get(f"/api/generation/steps/{step.pk}/status").json()["progress"]
                step_progress.append(progress["percent"])
                for item in progress["items"]:
                    percents[item["item_id"]].add(item["percent"])
                    served = client.get(item["preview_url"]) if item["preview_url"] else None
                    # Read to the end, which closes the file; a 404 is an item that finished meanwhile.
                    if served is not None and served.status_code == 200 and b"".join(served.streaming_content):
                        served_previews.add(item["preview_url"])
            time.sleep(0.05)
    step = GenerationStep.objects.get(pk=step.pk)
    assert (step.status, step.images_retrieved, step.progress) == ("completed", 2, 100), step.error_message
    # The events stored both images (no poll ran here), each once.
    assert outcomes.count("collected") + outcomes.count("step ended") >= 2
    for item_id, seen in percents.items():
        assert seen >= {round(100 * k / steps) for k in range(1, steps)}, (item_id, sorted(seen))
    # The step's progress moved with the denoising, never back.
    assert step_progress == sorted(step_progress) and len(set(step_progress)) > steps
    assert len({item_id for item_id, _ in previews_seen}) == 2 and len(previews_seen) >= steps
    assert len(served_previews) >= steps, served_previews
    assert not ItemProgress.objects.filter(step=step).exists()
    assert not storage.absolute(f"previews/{step.pk}").exists()


def test_a_socket_lost_mid_step_still_completes_through_the_poll(real, user, django_capture_on_commit_callbacks):
    sd1 = CachedModel.objects.get(name="tiny-sd1")
    session = services.session_create(owner=user)
    with Collected(REAL_URL) as collected:
        step = services.step_create(
            owner=user, session_id=session.pk, request=step_request(sd1, width=128, height=128, steps=8, batch_size=2)
        )
        deadline = time.monotonic() + 300
        # The first progress events say "Loading model" (no percentage); wait for denoising.
        while not any(
            name == "invocation_progress" and payload.get("percentage") for name, payload in collected.events
        ):
            assert time.monotonic() < deadline, "no progress event in time"
            time.sleep(0.05)
        for name, payload in collected.take():
            with django_capture_on_commit_callbacks(execute=True):
                events.event_handle(name=name, payload=payload)
    # The socket is gone for good, mid-step: only the follower's poll is left.
    assert GenerationStep.objects.get(pk=step.pk).progress > 0
    with django_capture_on_commit_callbacks(execute=True):
        step = follow_to_end(step.pk)
    assert (step.status, step.images_retrieved, step.images_failed) == ("completed", 2, 0)
    assert not ItemProgress.objects.filter(step=step).exists()
