"""Following a running step to its end: progress, each image stored as soon as its item completes.

`step_follow` is the django-q2 task's body. It holds a lease on the step (so a second follower, from a sweep or
a redelivered task, steps aside), calls `step_poll` every POLL_INTERVAL seconds, and after FOLLOW_BUDGET
seconds (a few) renews the lease and enqueues itself again with the lease's token, to carry on behind whatever
else is queued. So a step never holds a worker for long: with Q_WORKERS=2 and eight steps running, the
followers take turns on the two workers and a minute schedule waits behind at most one burst of each. The next
burst keeps the lease (no sweep mistakes a step waiting its turn for an orphan); a worker restart loses the
chain, and the lease expires. `steps_resume` (every minute) enqueues a follower for running steps whose lease
has expired, and fails steps left PENDING by a crash during enqueueing.

`step_poll` is one look at the batch, safe to run from anywhere at any time (the cancel request runs one):
batch counts first, which are cheap; the items themselves only when the counts say something finished or
disappeared. Every finished item is recorded in `item_results` as completed, failed, canceled or lost, and
when all are, the step ends:

* CANCELLED if the person cancelled it (the images that had finished are kept);
* COMPLETED if at least one image was made, with `images_failed` counting the others and `error_message`
  saying why they failed;
* FAILED if none was.

An item InvokeAI cancelled by itself (it cancels what was running when it restarts) or no longer has (its queue
was cleared) counts as failed with that reason, never as done.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_q.tasks import async_task

from backends import manager
from backends.invokeai.client import BatchStatus, QueueItem
from backends.invokeai.errors import InvokeAIError
from backends.invokeai.graphs import OUTPUT_NODE, SEED_NODE

from . import lifecycle, previews, retrieval
from .models import GenerationStep

logger = logging.getLogger(__name__)

StepStatus = GenerationStep.Status

# A batch-status GET four times a second costs InvokeAI nothing and keeps an image's wait for us short; a busy
# InvokeAI can take a few hundred milliseconds to answer it.
POLL_INTERVAL = 0.25
# Short, because a follower holds a worker for all of it: a task queued behind N followers on W workers waits
# about N/W bursts, and a minute schedule (the idle stop, the worker's heartbeat) must not wait long.
FOLLOW_BUDGET = 3.0
# Covers a burst and the wait for the next one: with FOLLOW_BUDGET 3 s and two workers, about 20 steps at once.
# Past that a lease can expire in the queue; the sweep then starts another follower and the older chain, finding
# the lease no longer its own, ends (never two at once).
LEASE = timedelta(seconds=30)
# A step whose InvokeAI has not answered for this long fails; its images cannot be fetched from nowhere.
UNREACHABLE_LIMIT = timedelta(minutes=15)
# A step still PENDING after this long was interrupted between being recorded and being enqueued.
PENDING_LIMIT = timedelta(minutes=5)

COMPLETED, FAILED, CANCELED = "completed", "failed", "canceled"
# Looked up at call time, so tests can let a fake InvokeAI's clock run instead of waiting.
_sleep = time.sleep
# While InvokeAI is silent, a running step's error_message says so; the next answer clears it.
_UNREACHABLE_PREFIX = "Waiting for InvokeAI: "


@dataclass(frozen=True)
class Poll:
    finished: bool
    # InvokeAI answered this time.
    reached: bool


def step_follow_enqueue(*, step_id: int, token: str = "") -> None:
    """Queue a follower; with `token`, the next burst of the follower holding the step's lease under it."""
    async_task(
        "generation.tasks.step_follow",
        step_id,
        token,
        group="generation.step_follow",
        # Well inside the cluster's timeout, which is what actually stops a task.
        timeout=int(FOLLOW_BUDGET) + 60,
    )


# --- the lease ---


def _lease_take(step_id: int, token: str) -> bool:
    now = timezone.now()
    free = GenerationStep.objects.filter(pk=step_id, status=StepStatus.RUNNING).filter(
        _lease_free(now) | _lease_mine(token)
    )
    return bool(free.update(follower_token=token, follower_lease_until=now + LEASE))


def _lease_free(now: datetime) -> Q:
    return Q(follower_lease_until__isnull=True) | Q(follower_lease_until__lt=now)


def _lease_mine(token: str) -> Q:
    return Q(follower_token=token)


def _lease_renew(step_id: int, token: str, *, reached: bool) -> bool:
    now = timezone.now()
    fields: dict[str, Any] = {"follower_lease_until": now + LEASE}
    if reached:
        fields["last_contact_at"] = now
    return bool(
        GenerationStep.objects.filter(pk=step_id, status=StepStatus.RUNNING, follower_token=token).update(**fields)
    )


def _lease_release(step_id: int, token: str) -> None:
    GenerationStep.objects.filter(pk=step_id, follower_token=token).update(follower_token="", follower_lease_until=None)


def step_follow(*, step_id: int, token: str = "", budget: float = FOLLOW_BUDGET) -> str:
    """Follow the step until it ends or `budget` seconds pass (then hand over to a new task, lease and all)."""
    token = token or uuid.uuid4().hex
    if not _lease_take(step_id, token):
        return "not followed: finished, or another follower holds it"
    deadline = time.monotonic() + budget
    # A write every few seconds, not every poll: enough for a lease of LEASE and for the silence limit.
    renew_every = LEASE.total_seconds() / 3
    renewed = time.monotonic()
    handed_over = False
    try:
        while True:
            poll = step_poll(step_id=step_id)
            if poll.finished:
                return "finished"
            if time.monotonic() >= deadline:
                # Renewed for the wait in the queue; if the enqueue fails, the lease is released below.
                if not _lease_renew(step_id, token, reached=poll.reached):
                    return "lease lost"
                step_follow_enqueue(step_id=step_id, token=token)
                handed_over = True
                return "handed over to a new follower"
            if time.monotonic() - renewed >= renew_every:
                if not _lease_renew(step_id, token, reached=poll.reached):
                    return "lease lost"
                renewed = time.monotonic()
            _sleep(POLL_INTERVAL)
    finally:
        if not handed_over:
            _lease_release(step_id, token)


# --- one look at the batch ---


def _outcome(item: QueueItem, step: GenerationStep) -> dict[str, Any]:
    result: dict[str, Any] = {"status": item.status, "seed": item.seed}
    if item.status == COMPLETED and item.image_name:
        result["image_name"] = item.image_name
    elif item.status == COMPLETED:
        result.update(status=FAILED, error="InvokeAI finished this image without saving it.")
    elif item.status == FAILED:
        result["error"] = item.failure_reason or "InvokeAI reported a failure without a reason."
        if item.traceback:
            # The page shows the one-line reason; the whole traceback stays with the item for whoever digs.
            result["traceback"] = item.traceback
            logger.warning("Step %s: InvokeAI failed item %s:\n%s", step.pk, item.item_id, item.traceback)
    elif item.status == CANCELED and step.cancel_requested_at:
        result["cancelled_by_request"] = True
    elif item.status == CANCELED:
        result["error"] = "InvokeAI cancelled this image (it cancels what was running when it restarts)."
    else:
        result["error"] = "InvokeAI no longer has this image's queue item (its queue was cleared or pruned)."
    return result


def _failed(result: dict[str, Any]) -> bool:
    """An item that should have made an image and did not (cancelling on request is not a failure)."""
    return result["status"] != COMPLETED and not result.get("cancelled_by_request")


def _summary(results: dict[str, dict[str, Any]], total: int) -> str:
    failures = [result for result in results.values() if _failed(result)]
    if not failures:
        return ""
    reasons = Counter(result.get("error", "") for result in failures)
    listed = "; ".join(f"{reason} (x{count})" if count > 1 else reason for reason, count in reasons.items())
    return f"{len(failures)} of {total} images failed: {listed}"


def _needs_items(step: GenerationStep, counts: BatchStatus) -> bool:
    finished = counts.completed + counts.failed + counts.canceled
    return finished > len(step.item_results) or counts.total < len(step.item_ids)


def _record(step_id: int, finished: list[QueueItem]) -> bool:
    """Merge newly finished items into the step; end it when every item has finished. True if it ended."""
    with transaction.atomic():
        step = GenerationStep.objects.select_for_update().get(pk=step_id)
        if step.status != StepStatus.RUNNING:
            return True
        results = dict(step.item_results)
        for item in finished:
            results.setdefault(str(item.item_id), _outcome(item, step))
        total = len(step.item_ids)
        fields: dict[str, Any] = {
            "item_results": results,
            "images_failed": sum(1 for result in results.values() if _failed(result)),
            # Never back: the events' denoising progress may already be ahead of the finished items.
            "progress": max(step.progress, min(100, 100 * len(results) // max(total, 1))),
        }
        previews.previews_clear(step_id=step_id, item_ids=[item.item_id for item in finished])
        if len(results) < total:
            if step.error_message.startswith(_UNREACHABLE_PREFIX):
                fields["error_message"] = ""
            GenerationStep.objects.filter(pk=step_id).update(**fields)
            return False
        made = sum(1 for result in results.values() if result["status"] == COMPLETED)
        to = StepStatus.COMPLETED if made else StepStatus.FAILED
        message = _summary(results, total)
        if step.cancel_requested_at:
            to = StepStatus.CANCELLED
            message = f"Cancelled after {made} of {total} images. {message}".strip()
        fields["error_message"] = message
        lifecycle.step_move(step_id=step_id, to=to, **fields)
        previews.previews_clear(step_id=step_id)
        return True


def _unreachable(step: GenerationStep, exc: InvokeAIError) -> bool:
    """Note that InvokeAI did not answer; fail the step once it has been silent too long. True if it failed."""
    silent_since = step.last_contact_at or step.started_at or step.created_at
    if timezone.now() - silent_since > UNREACHABLE_LIMIT:
        minutes = int(UNREACHABLE_LIMIT.total_seconds() // 60)
        failed = lifecycle.step_move(
            step_id=step.pk,
            to=StepStatus.FAILED,
            error_message=f"The InvokeAI at {step.backend_url} stopped answering for more than {minutes} minutes: "
            f"{exc.message}",
        )
        previews.previews_clear(step_id=step.pk)
        return failed
    GenerationStep.objects.filter(pk=step.pk, status=StepStatus.RUNNING).update(
        error_message=f"{_UNREACHABLE_PREFIX}{exc.message}"
    )
    return False


def _item_nodes(step: GenerationStep) -> dict[str, str]:
    """The nodes an item's image and seed are read from: a workflow's step names its own; the studio's graphs
    use fixed ones."""
    return {
        "output_node": step.parameters.get("output_node", OUTPUT_NODE),
        "seed_node": step.parameters.get("seed_node", SEED_NODE),
    }


def step_poll(*, step_id: int) -> Poll:
    """Look at the step's batch once: store what completed, record what finished, end the step if all did."""
    step = GenerationStep.objects.get(pk=step_id)
    if step.status != StepStatus.RUNNING:
        return Poll(finished=True, reached=False)
    client = manager.invokeai_client(step.backend_url)
    try:
        if step.cancel_requested_at:
            # Repeated until the step ends: harmless once done, and it reaches InvokeAI once it answers again.
            client.cancel_batches([step.batch_id])
        counts = client.batch_status(step.batch_id)
        items: list[QueueItem] = []
        if _needs_items(step, counts):
            open_ids = [item_id for item_id in step.item_ids if str(item_id) not in step.item_results]
            queued = client.queue_items(open_ids, **_item_nodes(step))
            items = [item for item in queued if item.finished]
    except InvokeAIError as exc:
        logger.info("Step %s: InvokeAI did not answer: %s", step_id, exc.message)
        return Poll(finished=_unreachable(step, exc), reached=False)
    if not items and not step.error_message.startswith(_UNREACHABLE_PREFIX):
        return Poll(finished=False, reached=True)
    return Poll(finished=_collect(step, items), reached=True)


def _collect(step: GenerationStep, finished: list[QueueItem]) -> bool:
    """Store the images of the finished items that completed, record them all; True if the step ended."""
    completed = [item for item in finished if item.status == COMPLETED and item.image_name]
    if completed:
        retrieval.items_store(step=step, items=completed)
    return _record(step.pk, finished)


def step_items_collect(*, step_id: int, item_ids: list[int]) -> bool:
    """Collect these items of a running step now (an event said they finished), without waiting for the poll.

    The same path as the poll's, so an item met by both (or an event delivered twice) is stored once. Items
    not yet finished on InvokeAI, or not the step's, are left to the poll. True if the step ended.
    """
    step = GenerationStep.objects.get(pk=step_id)
    if step.status != StepStatus.RUNNING:
        return True
    open_ids = [item_id for item_id in item_ids if item_id in step.item_ids and str(item_id) not in step.item_results]
    if not open_ids:
        return False
    client = manager.invokeai_client(step.backend_url)
    finished = [item for item in client.queue_items(open_ids, **_item_nodes(step)) if item.finished]
    return _collect(step, finished) if finished else False


# --- recovery ---


def steps_resume(*, now: datetime | None = None) -> int:
    """Give running steps without a live follower a new one; fail steps a crash left PENDING. Return the count."""
    now = now or timezone.now()
    orphaned = GenerationStep.objects.filter(status=StepStatus.RUNNING).filter(_lease_free(now))
    resumed = 0
    for step_id in orphaned.values_list("pk", flat=True):
        step_follow_enqueue(step_id=step_id)
        resumed += 1
    interrupted = GenerationStep.objects.filter(status=StepStatus.PENDING, created_at__lt=now - PENDING_LIMIT)
    for step in interrupted:
        _pending_abandon(step)
        resumed += 1
    previews.previews_sweep()
    return resumed


def _pending_abandon(step: GenerationStep) -> None:
    if step.backend_url and step.batch_id:
        try:
            # The batch may have been enqueued just before the crash: nobody would collect its images.
            manager.invokeai_client(step.backend_url).cancel_batches([step.batch_id])
        except InvokeAIError as exc:
            logger.info("Could not cancel batch %s of interrupted step %s: %s", step.batch_id, step.pk, exc.message)
    lifecycle.step_end_unsent(
        step_id=step.pk, error_message="The app stopped while this step was being sent to InvokeAI; generate it again."
    )
