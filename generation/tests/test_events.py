"""InvokeAI's events on the fake: the websocket stream itself, then their handling (progress, previews, images
stored at once), with the duplicates and drops real servers produce, and hostile payloads."""

from __future__ import annotations

import base64
import contextlib
import io
import threading
import time
from pathlib import PurePosixPath

import pytest
from PIL import Image

from backends.invokeai.events import EventStream
from generation import events, follower, previews, services
from generation.models import GenerationStep, ItemProgress, StepAlternative
from photos import storage
from photos.models import Photo
from testing.media import stored_names

from .conftest import step_request

pytestmark = pytest.mark.django_db

Status = GenerationStep.Status


def wait_until(check, what: str, timeout: float = 10):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"no {what} in {timeout} s"
        time.sleep(0.02)
    return result


@pytest.fixture
def stream(db, invokeai):
    """A real EventStream connected to the fake; what it receives is collected, not handled."""
    received: list[tuple[str, dict]] = []
    lock = threading.Lock()

    def collect(name, payload):
        with lock:
            received.append((name, payload))

    stream = EventStream(invokeai.url, on_event=collect)
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    wait_until(lambda: invokeai.sockets == 1, "subscribed socket")
    stream.received = received
    yield stream
    stream.stop()
    thread.join(timeout=5)


@pytest.fixture
def feed(db, invokeai, django_capture_on_commit_callbacks):
    """Hand the events the fake has sent since the last call to the real handler, as the listener would (files
    are deleted once the handling has committed, as in the listener's autocommit)."""
    seen = 0

    def run(*, clock: float = 0.0) -> list[str]:
        nonlocal seen
        invokeai.clock.advance(clock)
        invokeai.pump()
        batch = invokeai.events_sent[seen:]
        seen = len(invokeai.events_sent)
        with django_capture_on_commit_callbacks(execute=True):
            return [events.event_handle(name=name, payload=payload) for name, payload in batch]

    return run


@pytest.fixture(autouse=True)
def no_preview_throttle(monkeypatch):
    # The fake's clock moves in jumps, the wall clock hardly at all: every preview must be written.
    monkeypatch.setattr(events, "PREVIEW_EVERY", 0)


def test_the_stream_receives_each_item_s_events_over_a_websocket(invokeai, sd1, session, stream, enqueued, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, batch_size=2, steps=3))
    invokeai.clock.advance(2)
    invokeai.pump()
    first, second = step.item_ids
    wanted = [
        ("queue_item_status_changed", first, "in_progress"),
        *[("invocation_progress", first, None)] * 3,
        ("invocation_complete", first, None),
        ("queue_item_status_changed", first, "completed"),
        ("queue_item_status_changed", second, "in_progress"),
        *[("invocation_progress", second, None)] * 3,
        ("invocation_complete", second, None),
        ("queue_item_status_changed", second, "completed"),
    ]
    got = wait_until(lambda: len(stream.received) >= len(wanted) and stream.received, "events")
    assert [(name, payload["item_id"], payload.get("status")) for name, payload in got] == wanted
    progress = [payload for name, payload in got if name == "invocation_progress"][:3]
    assert [payload["percentage"] for payload in progress] == pytest.approx([1 / 3, 2 / 3, 1])
    assert all(payload["batch_id"] == step.batch_id and payload["message"] == "Denoising" for payload in progress)
    assert progress[0]["image"]["dataURL"].startswith("data:image/jpeg;base64,")
    assert (progress[0]["image"]["width"], progress[0]["image"]["height"]) == (64, 64)
    completed = next(payload for name, payload in got if name == "queue_item_status_changed" and payload["status"])
    assert {"batch_status", "queue_status", "status_sequence", "session_id", "timestamp"} <= set(completed)


def test_a_dropped_connection_is_made_again_and_subscribed(invokeai, stream):
    invokeai.disconnect_sockets()
    wait_until(lambda: not stream.connected.is_set(), "drop")
    wait_until(lambda: stream.connected.is_set() and invokeai.sockets == 1, "second connection", timeout=15)


def _probe(invokeai, stream, tag: str) -> None:
    """A plain event after a hostile one still arrives (on the same connection unless said otherwise).

    Sent again each second until it does: after the stream has connected again, the fake may still count the
    closed socket in the queue's room, and an event sent before the new one has subscribed is lost.
    """
    deadline = time.monotonic() + 10
    while True:
        invokeai.emit_event("queue_item_status_changed", {"tag": tag})
        with contextlib.suppress(AssertionError):
            wait_until(lambda: any(payload.get("tag") == tag for _, payload in stream.received), tag, timeout=1)
            return
        assert time.monotonic() < deadline, f"no event after {tag} in 10 s"


@pytest.mark.parametrize(
    ("send", "logged"),
    [
        (lambda fake: fake.emit_raw("2[not json"), "a malformed message ignored"),
        (lambda fake: fake.emit_raw("2" + "[" * 100_000), "a malformed message ignored (maximum recursion depth"),
        (lambda fake: fake.emit_raw('9"what"'), "a malformed message ignored"),
        (lambda fake: fake.emit_raw(b"\x00\x01binary"), "a binary message ignored"),
        (lambda fake: fake.emit_event("invocation_progress", b"\x89PNG" * 10), "binary attachments ignored"),
        (lambda fake: fake.emit_event("invocation_progress", [1, 2]), "without a payload object"),
        (lambda fake: fake.emit_event("invocation_complete", "x" * 500_000), "without a payload object"),
        (lambda fake: fake.emit_raw('2["queue_items_canceled"]'), "without a payload object"),
        (lambda fake: fake.emit_event("invocation_progress", None), "without a payload object"),
    ],
    ids=[
        "not-json",
        "nested-too-deep",
        "unknown-packet",
        "binary-frame",
        "attachments",
        "list",
        "huge-string",
        "no-payload",
        "null",
    ],
)
def test_a_malformed_message_is_ignored_with_a_log_line_and_the_connection_stays(
    invokeai, stream, caplog, send, logged
):
    caplog.set_level("INFO", logger="backends.invokeai.events")
    send(invokeai)
    _probe(invokeai, stream, "after")
    assert stream.connected.is_set() and invokeai.sockets == 1
    assert logged in caplog.text
    assert [payload for _, payload in stream.received] == [{"tag": "after"}]


def test_a_message_past_the_limit_is_refused_unread_and_the_connection_made_again(invokeai, stream, caplog):
    from backends.invokeai import events as socket_events

    caplog.set_level("INFO", logger="backends.invokeai.events")
    invokeai.emit_event("invocation_progress", {"batch_id": "b", "item_id": 1, "pad": "x" * (2 << 20)})
    wait_until(lambda: "refused (at most 1048576)" in caplog.text, "refusal")
    wait_until(lambda: stream.connected.is_set() and invokeai.sockets == 1, "second connection", timeout=15)
    _probe(invokeai, stream, "after")
    assert all(name != "invocation_progress" for name, _ in stream.received)
    # Just under the limit is an event like any other.
    invokeai.emit_event("queue_item_status_changed", {"pad": "x" * (socket_events.MAX_MESSAGE_BYTES - 100)})
    wait_until(lambda: any("pad" in payload for _, payload in stream.received), "the event under the limit")


def test_a_message_in_fragments_is_held_to_the_limit_as_a_whole():
    from websocket import ABNF

    from backends.invokeai.events import MAX_MESSAGE_BYTES, CappedWebSocket, MessageTooLarge

    socket = CappedWebSocket()
    half = MAX_MESSAGE_BYTES // 2 + 1
    socket.cont_frame.add(ABNF(fin=0, opcode=ABNF.OPCODE_TEXT, data=b"x" * half))
    with pytest.raises(MessageTooLarge):
        socket.cont_frame.add(ABNF(fin=1, opcode=ABNF.OPCODE_CONT, data=b"x" * half))


def test_multiuser_sockets_need_the_login_token(settings):
    from testing.fake_invokeai import FakeInvokeAI

    fake = FakeInvokeAI(multiuser=True).start()
    try:
        fake.add_user("me@example.com", "secret")
        settings.INVOKEAI_EMAIL, settings.INVOKEAI_PASSWORD = "me@example.com", "secret"
        refused = EventStream(fake.url, on_event=lambda *args: None)
        with pytest.raises(Exception, match=r"fail|refused|rejected|onnect"):
            refused._session()
        from backends import manager

        client = manager.invokeai_client(fake.url)
        allowed = EventStream(fake.url, on_event=lambda *args: None, token=client.socket_token)
        thread = threading.Thread(target=allowed.run, daemon=True)
        thread.start()
        wait_until(lambda: fake.sockets == 1, "authenticated socket")
        allowed.stop()
        thread.join(timeout=5)
    finally:
        fake.stop()


def _previews_of(step) -> list[str]:
    return [name for name in stored_names() if name.startswith(f"{storage.PREVIEWS}/{step.pk}/")]


def _has_preview(step, item_id) -> bool:
    return storage.exists(storage.preview_path(step.pk, item_id))


def test_progress_moves_with_each_denoising_step_and_previews_replace_themselves(
    invokeai, sd1, session, feed, enqueued, user, client
):
    invokeai.seconds_per_item = 10
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, batch_size=2, steps=4))
    first = step.item_ids[0]
    client.force_login(user)
    seen_progress, seen_items, seen_previews = [], [], []
    for _ in range(4):
        assert "progress" in feed(clock=2)
        progress = client.get(f"/api/generation/steps/{step.pk}/status").json()["progress"]
        seen_progress.append(progress["percent"])
        [live] = progress["items"]
        seen_items.append(live["percent"])
        assert (progress["images_finished"], progress["images_total"]) == (0, 2)
        assert (live["item_id"], live["index"], live["message"]) == (first, 0, "Denoising")
        preview = client.get(live["preview_url"])
        assert preview.status_code == 200 and preview["Content-Type"] == "image/jpeg"
        seen_previews.append(Image.open(io.BytesIO(b"".join(preview.streaming_content))).getpixel((0, 0)))
    # Two images: each of the first one's four denoising steps is an eighth of the step.
    assert seen_progress == [12, 25, 37, 50]
    assert seen_items == [25, 50, 75, 100]
    assert len(set(seen_previews)) == 4
    assert _has_preview(step, first)

    outcomes = feed(clock=2)
    assert "collected" in outcomes
    step.refresh_from_db()
    assert (step.status, step.images_retrieved, step.progress) == (Status.RUNNING, 1, 50)
    # The real image replaced the preview.
    assert not _has_preview(step, first)
    assert not ItemProgress.objects.filter(step=step, item_id=first).exists()
    assert client.get(f"/api/generation/steps/{step.pk}/").json()["progress"]["items"] == []

    assert feed(clock=10)[-1] == "step ended"
    step.refresh_from_db()
    assert (step.status, step.images_retrieved, step.progress) == (Status.COMPLETED, 2, 100)
    assert not ItemProgress.objects.exists()
    assert not _previews_of(step)
    assert client.get(f"/api/generation/steps/{step.pk}/previews/{first}").status_code == 404


def test_events_twice_store_each_image_once(invokeai, sd1, session, feed, enqueued, user):
    invokeai.duplicate_events()
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    feed(clock=10)
    # Then every event once more, late, as a redelivery would.
    for name, payload in list(invokeai.events_sent):
        events.event_handle(name=name, payload=payload)
    step.refresh_from_db()
    assert (step.status, step.images_retrieved, step.images_failed) == (Status.COMPLETED, 4, 0)
    assert Photo.objects.count() == StepAlternative.objects.count() == 4
    variants = str(PurePosixPath(storage.generated_variant_path(session.pk, step.pk, "x")).parent)
    assert len([name for name in stored_names() if name.startswith(variants) and name.endswith(".png")]) == 4
    assert not ItemProgress.objects.exists()


def test_what_the_events_miss_the_poll_finds(invokeai, sd1, session, feed, follow, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    invokeai.drop_events("queue_item_status_changed", times=100)
    invokeai.drop_events("invocation_complete", times=2)
    feed(clock=10)
    step.refresh_from_db()
    # Two images came with their invocation_complete; nothing said the items finished.
    assert (step.status, step.images_retrieved, step.item_results) == (Status.RUNNING, 2, {})
    assert follow(step.pk) == "finished"
    step.refresh_from_db()
    assert (step.status, step.images_retrieved) == (Status.COMPLETED, 4)
    assert not ItemProgress.objects.exists()


def test_the_poll_and_the_events_together_store_each_image_once(invokeai, sd1, session, feed, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    invokeai.clock.advance(2.5)
    follower.step_poll(step_id=step.pk)
    feed()
    follower.step_poll(step_id=step.pk)
    feed(clock=10)
    follower.step_poll(step_id=step.pk)
    step.refresh_from_db()
    assert (step.status, step.images_retrieved) == (Status.COMPLETED, 4)
    assert Photo.objects.count() == 4


def test_a_bulk_cancel_ends_the_step_through_its_one_event(invokeai, sd1, session, feed, enqueued, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    feed(clock=1.5)
    GenerationStep.objects.filter(pk=step.pk).update(cancel_requested_at=step.created_at)
    from backends import manager

    manager.invokeai_client(step.backend_url).cancel_batches([step.batch_id])
    outcomes = feed()
    names = [name for name, _ in invokeai.events_sent]
    assert "queue_items_canceled" in names
    assert "step ended" in outcomes
    step.refresh_from_db()
    assert (step.status, step.images_retrieved) == (Status.CANCELLED, 1)
    assert not _previews_of(step)


def _data_url(fmt: str, size: tuple[int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buffer, fmt)
    mime = {"JPEG": "jpeg", "PNG": "png", "GIF": "gif"}[fmt]
    return f"data:image/{mime};base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"batch_id": 5, "item_id": "1"},
        {"batch_id": "not ours", "item_id": 1, "percentage": 0.5},
        {"item_id": True, "percentage": 0.5},
        {"percentage": "half", "image": "data:image/jpeg;base64,AAAA"},
        {"percentage": 7, "image": {"dataURL": 12}},
        {"percentage": 0.5, "image": {"dataURL": "data:image/jpeg;base64,!!!not base64!!!"}},
        {"percentage": 0.5, "image": {"dataURL": "data:image/jpeg;base64," + "A" * (2 << 20)}},
        {"percentage": 0.5, "image": {"dataURL": "data:text/html;base64,PGgxPmhpPC9oMT4="}},
        {"percentage": 0.5, "image": {"dataURL": _data_url("GIF", (8, 8)).replace("gif", "jpeg", 1)}},
        {"percentage": 0.5, "image": {"dataURL": _data_url("PNG", (2000, 8))}},
        {
            "percentage": 0.5,
            "image": {"dataURL": "data:image/jpeg;base64," + base64.b64encode(b"\xff\xd8junk").decode()},
        },
    ],
)
def test_hostile_progress_events_change_nothing_but_what_is_valid(invokeai, sd1, session, enqueued, user, payload):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    full = {"batch_id": step.batch_id, "item_id": step.item_ids[0], **payload}
    events.event_handle(name="invocation_progress", payload=full)
    events.event_handle(name="queue_item_status_changed", payload={**full, "status": ["completed"]})
    assert not _has_preview(step, step.item_ids[0])
    row = ItemProgress.objects.filter(step=step).first()
    assert row is None or (row.preview_at is None and row.percent <= 100)
    step.refresh_from_db()
    assert step.progress <= 100 and step.item_results == {}


def _png_declaring(width: int, height: int) -> str:
    """A PNG of a few bytes whose header says width x height: decoding it would take width * height * 3 bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(png).decode()


@pytest.mark.parametrize(
    ("data_url", "reason"),
    [
        (_data_url("PNG", (8, 8)).replace("image/png", "image/jpeg", 1), "cannot identify"),
        (_data_url("JPEG", (8, 8)).replace("image/jpeg", "image/png", 1), "cannot identify"),
        (_data_url("JPEG", (8, 8)).replace("image/jpeg", "image/webp", 1), "cannot identify"),
        (_png_declaring(60_000, 60_000), "decompression bomb"),
        (_png_declaring(9_000, 9_000), "9000x9000"),
        (_png_declaring(513, 8), "513x8"),
        ("data:image/jpeg;base64," + "A" * (previews.MAX_DATA_URL + 1), "characters"),
        ("data:image/svg+xml;base64,PHN2Zy8+", "not an image data URL"),
    ],
    ids=["png-as-jpeg", "jpeg-as-png", "jpeg-as-webp", "bomb", "large", "too-wide", "too-long", "svg"],
)
def test_a_preview_that_is_not_the_small_image_it_says_is_refused_before_decoding(data_url, reason):
    with pytest.raises(previews.BadPreview, match=reason):
        previews.preview_encode(data_url)


def test_a_preview_at_the_limits_is_taken():
    jpeg = previews.preview_encode(_data_url("JPEG", (previews.MAX_SIDE, 16)))
    with Image.open(io.BytesIO(jpeg)) as image:
        assert image.size == (previews.MAX_SIDE, 16)


def test_hostile_events_over_the_socket_leave_the_step_to_finish_as_it_would(
    invokeai, sd1, session, stream, enqueued, user, caplog, django_capture_on_commit_callbacks, monkeypatch
):
    """Wrong types, huge strings and ids, booleans for ids, unhashable ids: handled as the listener does (its
    queue, then event_handle), they change nothing; the step's own events then end it."""
    caplog.set_level("INFO")
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, batch_size=2))
    first = step.item_ids[0]
    ours = {"batch_id": step.batch_id, "item_id": first}
    hostile = [
        ("invocation_progress", {**ours, "percentage": "x" * 100_000, "message": "y" * 100_000}),
        ("invocation_progress", {**ours, "percentage": 50, "image": ["data:image/jpeg;base64,"]}),
        ("invocation_progress", {"batch_id": ["a"], "item_id": {"b": 1}, "percentage": 0.5}),
        ("invocation_progress", {"batch_id": step.batch_id * 10_000, "item_id": first, "percentage": 0.5}),
        ("invocation_progress", {**ours, "item_id": 10**40, "percentage": 0.5}),
        ("invocation_complete", {**ours, "invocation_source_id": ["output"], "result": {"image": {}}}),
        ("invocation_complete", {**ours, "invocation_source_id": "output", "result": {"image": {"image_name": [1]}}}),
        ("queue_item_status_changed", {**ours, "status": {"completed": True}}),
        ("queue_item_status_changed", {**ours, "item_id": True, "status": "completed"}),
        ("queue_items_canceled", {"canceled_item_ids": [True, "1", None, 10**40, -first]}),
        ("queue_items_canceled", {"canceled_item_ids": "everything"}),
    ]

    # Handled in the test's thread: closing "old" connections there would end the test's transaction.
    monkeypatch.setattr(events, "close_old_connections", lambda: None)

    def handle_as_the_listener(received):
        queue = events.EventQueue(invokeai.url)
        for name, payload in received:
            queue.put(name, payload)
        queue.stop()
        with django_capture_on_commit_callbacks(execute=True):
            queue.run()
            queue.run(progress=True)

    for name, payload in hostile:
        invokeai.emit_event(name, payload)
    _probe(invokeai, stream, "after")
    handle_as_the_listener(stream.received)
    step.refresh_from_db()
    assert (step.status, step.progress, step.item_results, step.images_retrieved) == (Status.RUNNING, 0, {}, 0)
    assert not ItemProgress.objects.filter(step=step).exclude(percent=0).exists()
    assert "Traceback" not in caplog.text

    # The real events, through the same connection and queue, still make the step.
    invokeai.clock.advance(10)
    invokeai.pump()
    wait_until(lambda: all(sent in stream.received for sent in invokeai.events_sent), "the real events")
    handle_as_the_listener(stream.received)
    step.refresh_from_db()
    assert (step.status, step.images_retrieved) == (Status.COMPLETED, 2)


def test_a_flood_of_events_is_capped_in_memory_with_one_log_line(monkeypatch, caplog):
    monkeypatch.setattr(events, "MAX_WAITING", 5)
    queue = events.EventQueue("http://invokeai")
    for n in range(20):
        queue.put("queue_item_status_changed", {"n": n})
        queue.put("invocation_progress", {"batch_id": "b", "item_id": n})
    assert len(queue._urgent) == len(queue._progress) == 5
    assert caplog.text.count("events waiting; dropping more") == 1


def test_a_preview_is_encoded_again_as_a_small_jpeg():
    jpeg = previews.preview_encode(_data_url("PNG", (32, 16)))
    with Image.open(io.BytesIO(jpeg)) as image:
        assert (image.format, image.size) == ("JPEG", (32, 16))


def test_previews_of_steps_no_longer_running_are_swept(invokeai, sd1, session, feed, enqueued, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    feed(clock=0.5)
    assert _has_preview(step, step.item_ids[0])
    # As if the app had died with the step's end recorded but not the previews' removal.
    GenerationStep.objects.filter(pk=step.pk).update(status=Status.FAILED)
    assert previews.previews_sweep() == 1
    assert not _previews_of(step) and not ItemProgress.objects.exists()


def test_another_account_cannot_see_a_preview(invokeai, sd1, session, feed, enqueued, user, client):
    from testing.accounts import other_account

    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    feed(clock=0.5)
    client.force_login(other_account())
    assert client.get(f"/api/generation/steps/{step.pk}/previews/{step.item_ids[0]}").status_code == 404


@pytest.mark.parametrize(
    "result",
    [
        None,
        "image.png",
        {"image": "x.png"},
        {"image": {"image_name": "../../api/v1/queue/default/clear"}},
        {"image": {"image_name": "a" * 500}},
        {"image": {"image_name": 42}},
    ],
)
def test_an_output_event_without_a_plain_image_name_downloads_nothing(invokeai, sd1, session, enqueued, user, result):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    before = len(invokeai.requests)
    payload = {"batch_id": step.batch_id, "item_id": step.item_ids[0], "invocation_source_id": "output"}
    assert events.event_handle(name="invocation_complete", payload={**payload, "result": result}).startswith("ignored")
    assert len(invokeai.requests) == before and not Photo.objects.exists()


def test_the_output_event_stores_the_image_before_the_item_is_marked_completed(
    invokeai, sd1, session, enqueued, user, feed
):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, seed=77))
    invokeai.drop_events("queue_item_status_changed", times=100)
    assert "stored" in feed(clock=1)
    [alternative] = StepAlternative.objects.filter(step=step).select_related("photo")
    assert (alternative.item_id, alternative.photo.seed, alternative.photo.is_available) == (step.item_ids[0], 77, True)


def test_the_queue_hands_on_events_in_order_and_only_the_latest_progress_of_an_item_in_its_own_lane(monkeypatch):
    handled = []
    monkeypatch.setattr(events, "event_handle", lambda *, name, payload: handled.append((name, payload["n"])))
    queue = events.EventQueue("http://invokeai")
    for n in range(3):
        queue.put("invocation_progress", {"batch_id": "b", "item_id": 1, "n": n})
    queue.put("invocation_progress", {"batch_id": "b", "item_id": 2, "n": 9})
    queue.put("queue_item_status_changed", {"batch_id": "b", "item_id": 1, "n": 5})
    queue.put("invocation_complete", {"batch_id": "b", "item_id": 1, "n": 6})
    queue.stop()
    queue.run()
    assert handled == [("queue_item_status_changed", 5), ("invocation_complete", 6)]
    handled.clear()
    queue.run(progress=True)
    assert handled == [("invocation_progress", 2), ("invocation_progress", 9)]


def test_a_preview_does_not_wait_behind_an_image_being_stored(monkeypatch):
    """InvokeAI sends the next image's first preview as it saves the one before: storing that one (a download)
    must not hold the preview back."""
    storing, handled = threading.Event(), []

    def handle(*, name, payload):
        if name == "invocation_complete":
            storing.wait(10)
        handled.append(name)

    monkeypatch.setattr(events, "event_handle", handle)
    queue = events.EventQueue("http://invokeai")
    queue.start()
    queue.put("invocation_complete", {"batch_id": "b", "item_id": 1})
    queue.put("invocation_progress", {"batch_id": "b", "item_id": 2})
    wait_until(lambda: handled == ["invocation_progress"], "the preview handled while the image is stored")
    storing.set()
    wait_until(lambda: handled == ["invocation_progress", "invocation_complete"], "the image stored")
    queue.stop()


def test_a_failing_event_does_not_stop_the_others(monkeypatch):
    handled = []

    def handle(*, name, payload):
        if payload["n"] == 0:
            raise RuntimeError("boom")
        handled.append(payload["n"])

    monkeypatch.setattr(events, "event_handle", handle)
    queue = events.EventQueue("http://invokeai")
    queue.put("queue_item_status_changed", {"n": 0})
    queue.put("queue_item_status_changed", {"n": 1})
    queue.stop()
    queue.run()
    assert handled == [1]


def test_the_listener_follows_the_servers_with_running_steps(
    invokeai, sd1, session, enqueued, user, settings, monkeypatch
):
    # The test's one connection holds its transaction: each look of the listener would close it once it is
    # older than CONN_MAX_AGE (PostgreSQL, late in a long run) and end the test's transaction with it.
    monkeypatch.setattr(events, "close_old_connections", lambda: None)
    listener = events.Listener()
    try:
        listener.watch()
        # The InvokeAI in use, before any step.
        assert set(listener.streams) == {invokeai.url}
        wait_until(lambda: invokeai.sockets == 1, "subscribed socket")
        step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
        settings.INVOKEAI_LOCAL_URL = "http://127.0.0.1:9"
        from backends.models import BackendSettings

        BackendSettings.objects.update(local_backend_url="")
        listener.watch()
        # The step's server stays while it runs, beside the new one in use.
        assert set(listener.streams) == {invokeai.url, "http://127.0.0.1:9"}
        GenerationStep.objects.filter(pk=step.pk).update(status=Status.FAILED)
        listener.watch()
        assert set(listener.streams) == {"http://127.0.0.1:9"}
        wait_until(lambda: invokeai.sockets == 0, "closed socket")
    finally:
        listener.stop()
        for stream, queue in listener.streams.values():
            stream.stop()
            queue.stop()
