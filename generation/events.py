"""InvokeAI's events turned into the studio's live state: denoising progress, previews, images stored at once.

`manage.py run_events` (started and restarted by the worker's supervisor beside the django-q2 cluster) keeps
one `EventStream` per InvokeAI that has running steps, or is the one in use, and hands each event to
`event_handle`:

* `invocation_progress`: the item's percentage and latest preview (at most every PREVIEW_EVERY seconds per
  item), and the step's `progress`, which counts each running item's denoising, not only finished images;
* `invocation_complete` of the graph's output node: its image (named in the event) is downloaded and stored at
  once, before InvokeAI has even marked the item completed;
* `queue_item_status_changed` to a finished status: the item is collected (its image stored if the event above
  was missed, its outcome recorded), by the follower's own path;
* `queue_items_canceled` (InvokeAI 6.14's one event for a bulk cancel): the same for each item named.

Events come twice (InvokeAI 6.13 in single-user mode), late, or never (a dropped connection): everything here is
idempotent and keyed on ids, and the follower's poll (generation.follower) still finds whatever no event said.
Events for anything but a running step of ours are ignored.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
import time
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from backends import manager
from backends.invokeai import graphs
from backends.invokeai.client import QueueItem
from backends.invokeai.errors import InvokeAIError
from backends.invokeai.events import EventStream
from backends.invokeai.graphs import OUTPUT_NODE
from gallery_project.errors import AppError
from photos.storage import StoreUnavailable

from . import follower, previews, retrieval
from .models import GenerationStep, ItemProgress

logger = logging.getLogger(__name__)

FINISHED = frozenset({"completed", "failed", "canceled"})
# A fast GPU sends a preview 20 times a second; a browser polls a few times a second.
PREVIEW_EVERY = 0.25
# How often the listener looks again at which InvokeAI servers have running steps.
WATCH_EVERY = 2.0

# InvokeAI's batch ids are 22 characters, its item ids a database's integers: past these, not an item of ours.
MAX_BATCH_ID = 100
MAX_ID = (1 << 63) - 1
# Events waiting to be handled, beyond the latest progress of each item: a server flooding them faster than the
# database takes them would otherwise fill the memory. What is dropped, the poll finds.
MAX_WAITING = 10_000

# InvokeAI names images with UUIDs; anything else is not put in a URL to it.
_IMAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")

_last_preview: dict[tuple[int, int], float] = {}


def _item_id(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID else None


def _running_step(payload: dict[str, Any]) -> tuple[GenerationStep, int] | None:
    batch_id, item_id = payload.get("batch_id"), _item_id(payload.get("item_id"))
    if not isinstance(batch_id, str) or len(batch_id) > MAX_BATCH_ID or item_id is None:
        return None
    step = GenerationStep.objects.filter(batch_id=batch_id, status=GenerationStep.Status.RUNNING).first()
    if step is None or item_id not in step.item_ids:
        return None
    return step, item_id


def _percentage(payload: dict[str, Any]) -> int | None:
    value = payload.get("percentage")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        return None
    return round(value * 100)


def _progress(step: GenerationStep, item_id: int, payload: dict[str, Any]) -> str:
    if str(item_id) in step.item_results:
        return "late: the item has finished"
    percent = _percentage(payload)
    message = payload.get("message")
    now = timezone.now()
    fields: dict[str, Any] = {"updated_at": now}
    if isinstance(message, str):
        fields["message"] = message[:100]
    if percent is not None:
        fields["percent"] = Greatest(F("percent"), percent)
    image = payload.get("image")
    data_url = image.get("dataURL") if isinstance(image, dict) else None
    key = (step.pk, item_id)
    if isinstance(data_url, str) and time.monotonic() - _last_preview.get(key, 0.0) >= PREVIEW_EVERY:
        try:
            previews.preview_write(step_id=step.pk, item_id=item_id, jpeg=previews.preview_encode(data_url))
        except previews.BadPreview as exc:
            logger.info("Step %s, item %s: preview refused: %s", step.pk, item_id, exc)
        except StoreUnavailable:
            pass  # logged by the store; the next denoising step brings another preview
        else:
            _last_preview[key] = time.monotonic()
            fields["preview_at"] = now
    ItemProgress.objects.get_or_create(step=step, item_id=item_id)
    ItemProgress.objects.filter(step=step, item_id=item_id).update(**fields)
    _step_progress(step)
    return "progress"


def _step_progress(step: GenerationStep) -> None:
    """The step's percentage: finished items count whole, running ones by their denoising."""
    running = ItemProgress.objects.filter(step=step).exclude(item_id__in=[int(key) for key in step.item_results])
    partial = sum(running.values_list("percent", flat=True)) / 100
    total = max(len(step.item_ids), 1)
    percent = min(99, int(100 * (len(step.item_results) + partial) / total))
    GenerationStep.objects.filter(pk=step.pk, status=GenerationStep.Status.RUNNING).update(
        progress=Greatest(F("progress"), percent)
    )


def _collect(step: GenerationStep, item_ids: list[int]) -> str:
    try:
        ended = follower.step_items_collect(step_id=step.pk, item_ids=item_ids)
    except InvokeAIError as exc:
        # The poll tries again; an event is only a hint to look now.
        logger.info("Step %s: could not collect items %s now: %s", step.pk, item_ids, exc.message)
        return "left to the poll"
    for item_id in item_ids:
        _last_preview.pop((step.pk, item_id), None)
    return "step ended" if ended else "collected"


def _image_made(step: GenerationStep, item_id: int, payload: dict[str, Any]) -> str:
    if "workflow_id" in step.parameters:
        # Its seed and batch values are in the finished item only, which the item's completion brings.
        return "ignored: a workflow's image is stored with its finished item"
    if payload.get("invocation_source_id") != OUTPUT_NODE:
        return "ignored: not the output node"
    result = payload.get("result")
    image = result.get("image") if isinstance(result, dict) else None
    name = image.get("image_name") if isinstance(image, dict) else None
    if not isinstance(name, str) or not _IMAGE_NAME.fullmatch(name):
        return "ignored: no image name"
    if str(item_id) in step.item_results:
        return "late: the item has finished"
    index = step.item_ids.index(item_id)
    seed = graphs.seeds_from(step.seed or 0, len(step.item_ids))[index]
    item = QueueItem(item_id=item_id, status="completed", batch_id=step.batch_id, seed=seed, image_name=name)
    retrieval.items_store(step=step, items=[item])
    previews.previews_clear(step_id=step.pk, item_ids=[item_id])
    _last_preview.pop((step.pk, item_id), None)
    return "stored"


def event_handle(*, name: str, payload: dict[str, Any]) -> str:
    """Apply one InvokeAI event; returns what it did (for the logs and tests)."""
    if name == "queue_items_canceled":
        return _canceled(payload)
    found = _running_step(payload)
    if found is None:
        return "ignored: not an item of a running step"
    step, item_id = found
    if name == "invocation_progress":
        return _progress(step, item_id, payload)
    if name == "invocation_complete":
        return _image_made(step, item_id, payload)
    status = payload.get("status")
    if name == "queue_item_status_changed" and isinstance(status, str) and status in FINISHED:
        return _collect(step, [item_id])
    return "ignored"


def _canceled(payload: dict[str, Any]) -> str:
    ids = payload.get("canceled_item_ids")
    if not isinstance(ids, list):
        return "ignored: no item ids"
    canceled = {item_id for value in ids if (item_id := _item_id(value)) is not None}
    outcome = "ignored: none of ours"
    for step in GenerationStep.objects.filter(status=GenerationStep.Status.RUNNING):
        mine = [item_id for item_id in step.item_ids if item_id in canceled]
        if mine:
            outcome = _collect(step, mine)
    return outcome


# --- the listener process ---


def _wanted_urls() -> set[str]:
    """The InvokeAI servers worth listening to: those with running steps, and the one in use."""
    urls = set(
        GenerationStep.objects.filter(status__in=(GenerationStep.Status.PENDING, GenerationStep.Status.RUNNING))
        .exclude(backend_url="")
        .values_list("backend_url", flat=True)
    )
    # Remote mode with no pod ready has no InvokeAI in use: nothing more to listen to.
    with contextlib.suppress(AppError):
        urls.add(manager.current_backend_url())
    return urls


def _token(url: str) -> str:
    close_old_connections()
    return manager.invokeai_client(url).socket_token()


class EventQueue:
    """Events waiting for `event_handle`, in two lanes each handled by a thread of its own (`start`), so the
    socket keeps reading and neither kind waits behind the other.

    Progress events only matter as the latest of each item: one still waiting is replaced by a newer one. The
    others (an image made, an item finished) are handled in the order they came. So a burst of progress (a fast
    GPU, a slow database) never delays storing an image, and storing an image (its download takes a few hundred
    milliseconds) never delays the first preview of the next one, which InvokeAI sends at about the same time.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._urgent: list[tuple[str, dict[str, Any]]] = []
        self._progress: dict[tuple[Any, Any], dict[str, Any]] = {}
        self._ready = threading.Condition()
        self._stopped = False
        self._flooded = False

    def put(self, name: str, payload: dict[str, Any]) -> None:
        with self._ready:
            if name == "invocation_progress":
                key = (payload.get("batch_id"), payload.get("item_id"))
                if not all(isinstance(part, str | int) for part in key) or len(self._progress) >= MAX_WAITING:
                    return  # not an item of anyone's (event_handle would ignore it), or a flood
                self._progress[key] = payload
            elif len(self._urgent) < MAX_WAITING:
                self._urgent.append((name, payload))
                # Said once per flood, not once per event dropped.
                self._flooded = self._flooded and len(self._urgent) > MAX_WAITING // 2
            else:
                if not self._flooded:
                    logger.warning("InvokeAI events at %s: %s events waiting; dropping more.", self.url, MAX_WAITING)
                self._flooded = True
                return
            self._ready.notify_all()

    def stop(self) -> None:
        """Let both lanes end once they have handled what is waiting."""
        with self._ready:
            self._stopped = True
            self._ready.notify_all()

    def start(self) -> None:
        for progress in (False, True):
            lane = "progress" if progress else "events"
            threading.Thread(
                target=self.run, kwargs={"progress": progress}, name=f"{lane} of {self.url}", daemon=True
            ).start()

    def _take(self, progress: bool) -> tuple[str, dict[str, Any]] | None:
        with self._ready:
            while not ((self._progress if progress else self._urgent) or self._stopped):
                self._ready.wait()
            if progress and self._progress:
                key = next(iter(self._progress))
                return "invocation_progress", self._progress.pop(key)
            if not progress and self._urgent:
                return self._urgent.pop(0)
            return None

    def run(self, *, progress: bool = False) -> None:
        """Handle one lane's events until `stop()`: the progress events, or the others."""
        while (taken := self._take(progress)) is not None:
            name, payload = taken
            try:
                close_old_connections()
                outcome = event_handle(name=name, payload=payload)
            except Exception:
                # One event must not stop the others; the poll finds whatever this one was about.
                logger.exception("InvokeAI events at %s: handling %s failed.", self.url, name)
                continue
            logger.debug("InvokeAI events at %s: %s: %s", self.url, name, outcome)


class Listener:
    """One EventStream thread per wanted InvokeAI, started and stopped as the wanted set changes."""

    def __init__(self) -> None:
        self.streams: dict[str, tuple[EventStream, EventQueue]] = {}
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        try:
            while not self._stop.is_set():
                self.watch()
                self._stop.wait(WATCH_EVERY)
        finally:
            for stream, events in self.streams.values():
                stream.stop()
                events.stop()

    def watch(self) -> None:
        close_old_connections()
        try:
            wanted = _wanted_urls()
        except Exception:  # a database that does not answer now may answer at the next look
            logger.warning("Could not read which InvokeAI servers to listen to.", exc_info=True)
            return
        for url in set(self.streams) - wanted:
            stream, events = self.streams.pop(url)
            stream.stop()
            events.stop()
        for url in wanted - set(self.streams):
            events = EventQueue(url)
            stream = EventStream(
                url,
                on_event=events.put,
                token=functools.partial(_token, url),
                allow_link_local=settings.INVOKEAI_ALLOW_LINK_LOCAL,
                connect_timeout=settings.INVOKEAI_CONNECTION_TIMEOUT,
            )
            events.start()
            threading.Thread(target=stream.run, name=f"events {url}", daemon=True).start()
            self.streams[url] = (stream, events)
