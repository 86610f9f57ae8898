"""Reads for the studio and its API: sessions with their steps and images, a step's status, what is in flight.

Sessions and steps are read for their owner (gallery_project.permissions): another account's are not found.
What is in flight is read for everyone, by the background work that keeps the backend busy or idle.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Prefetch, Q, QuerySet

from gallery_project.errors import NotFound
from gallery_project.permissions import Owner, owned_by
from photos.models import Photo

from .lifecycle import STEP_IN_FLIGHT
from .models import GenerationSession, GenerationStep, ItemProgress, StepAlternative, StudioPreference

MAX_SESSIONS = 200


@dataclass(frozen=True)
class RetrievalStats:
    pending: int
    completed: int
    failed: int


def _alternatives() -> Prefetch[str, QuerySet[StepAlternative], str]:
    return Prefetch("alternatives", queryset=StepAlternative.objects.select_related("photo").order_by("index"))


def session_list(
    *, owner: Owner, limit: int = 50, offset: int = 0, status: str | None = None
) -> QuerySet[GenerationSession]:
    """The owner's sessions, most recently active first, each with its step count."""
    sessions = owned_by(GenerationSession.objects.all(), owner).annotate(step_count=Count("steps"))
    if status:
        sessions = sessions.filter(status=status)
    return sessions.order_by("-updated_at", "-id")[offset : offset + min(limit, MAX_SESSIONS)]


def session_get(*, session_id: int | str, owner: Owner) -> GenerationSession:
    try:
        return owned_by(GenerationSession.objects.all(), owner).get(pk=int(session_id))
    except (GenerationSession.DoesNotExist, ValueError):
        raise NotFound("This studio session does not exist.", details={"session_id": str(session_id)}) from None


def session_steps(*, session: GenerationSession) -> list[GenerationStep]:
    """The session's steps in order, each with its alternatives, their photos and its live items (four queries)."""
    return list(
        session.steps.order_by("position").select_related("parent").prefetch_related(_alternatives(), "live_items")
    )


def _steps(owner: Owner) -> QuerySet[GenerationStep]:
    return owned_by(GenerationStep.objects.select_related("session"), owner, via="session__owner")


def step_get(*, step_id: int | str, owner: Owner) -> GenerationStep:
    try:
        return _steps(owner).get(pk=int(step_id))
    except (GenerationStep.DoesNotExist, ValueError):
        raise NotFound("This generation step does not exist.", details={"step_id": str(step_id)}) from None


def step_with_alternatives(*, step_id: int | str, owner: Owner) -> GenerationStep:
    step = step_get(step_id=step_id, owner=owner)
    return _steps(owner).prefetch_related(_alternatives(), "live_items").get(pk=step.pk)


@dataclass(frozen=True)
class LiveItem:
    """A running item of a running step: its denoising (from InvokeAI's events) and latest preview."""

    item_id: int
    index: int
    percent: int
    message: str
    preview_url: str | None


def step_live_items(*, step: GenerationStep) -> list[LiveItem]:
    """The step's items that have started and not finished, in batch order (uses prefetched `live_items`)."""
    if step.status != GenerationStep.Status.RUNNING:
        return []
    rows: dict[int, ItemProgress] = {row.item_id: row for row in step.live_items.all()}
    live = []
    for index, item_id in enumerate(step.item_ids):
        row = rows.get(item_id)
        if row is None or str(item_id) in step.item_results:
            continue
        # The version in the URL changes with each preview, so a browser never shows a cached older one.
        url = (
            f"/api/generation/steps/{step.pk}/previews/{item_id}?v={int(row.preview_at.timestamp() * 1000)}"
            if row.preview_at
            else None
        )
        live.append(LiveItem(item_id=item_id, index=index, percent=row.percent, message=row.message, preview_url=url))
    return live


@dataclass(frozen=True)
class StepProgress:
    """How far a step is: `percent` moves with each denoising step of its running items (InvokeAI's events), not
    only per finished image; `items` are the running ones, each with its latest preview."""

    percent: int
    images_finished: int
    images_total: int
    items: list[LiveItem]


def step_progress(*, step: GenerationStep) -> StepProgress:
    """The step's progress (uses prefetched `live_items`)."""
    return StepProgress(
        # A completed step made all it could: its failed images are finished too.
        percent=100 if step.status == GenerationStep.Status.COMPLETED else step.progress,
        images_finished=len(step.item_results),
        images_total=len(step.item_ids) or step.batch_size,
        items=step_live_items(step=step),
    )


def retrieval_stats(*, step: GenerationStep) -> RetrievalStats:
    """How the step's images stand with their download from InvokeAI (uses prefetched alternatives)."""
    statuses = [alternative.photo.retrieval_status for alternative in step.alternatives.all()]
    return RetrievalStats(
        pending=statuses.count(Photo.RetrievalStatus.PENDING),
        completed=statuses.count(Photo.RetrievalStatus.COMPLETED),
        failed=statuses.count(Photo.RetrievalStatus.FAILED),
    )


def steps_in_flight() -> QuerySet[GenerationStep]:
    return GenerationStep.objects.filter(status__in=STEP_IN_FLIGHT).select_related("session").order_by("created_at")


@dataclass(frozen=True)
class QueuedStep:
    step: GenerationStep
    # 1 for the step InvokeAI works on first: in-flight steps of every account count, in the order they were sent.
    position: int


def queue_steps(*, owner: Owner) -> list[QueuedStep]:
    """The owner's pending and running steps with their place among everyone's (two queries)."""
    order = list(steps_in_flight().values_list("pk", flat=True))
    positions = {pk: index + 1 for index, pk in enumerate(order)}
    mine = owned_by(steps_in_flight(), owner, via="session__owner").prefetch_related("live_items")
    return [QueuedStep(step=step, position=positions.get(step.pk, len(order))) for step in mine]


def queue_count(*, owner: Owner) -> int:
    """How many of the owner's steps are pending or running (the top bar's indicator)."""
    return owned_by(steps_in_flight(), owner, via="session__owner").count()


def retrievals_unfinished() -> QuerySet[StepAlternative]:
    """Images still to download: pending, or failed with attempts left (the retry task will try them)."""
    return StepAlternative.objects.filter(
        Q(photo__retrieval_status=Photo.RetrievalStatus.PENDING)
        | Q(
            photo__retrieval_status=Photo.RetrievalStatus.FAILED,
            photo__retrieval_attempts__lt=settings.RETRIEVAL_MAX_ATTEMPTS,
        )
    )


def generation_in_flight(*, backend_url: str = "") -> bool:
    """Whether work of ours still needs an InvokeAI (the one at `backend_url`, or any): a step generating, or
    images to download."""
    steps, retrievals = steps_in_flight(), retrievals_unfinished()
    if backend_url:
        steps, retrievals = steps.filter(backend_url=backend_url), retrievals.filter(step__backend_url=backend_url)
    return steps.exists() or retrievals.exists()


def preference_get(*, user: AbstractBaseUser | AnonymousUser) -> StudioPreference | None:
    if isinstance(user, AnonymousUser):
        return None
    return StudioPreference.objects.filter(user_id=user.pk).first()


# --- what CyberImage's clients read: counts of an account's steps, where a step waits, how long steps take ---

# Recent completed steps an estimate of the time per image is taken from.
_TIMING_SAMPLE = 20


def step_status_counts(*, owner: Owner, since: datetime | None = None) -> dict[str, int]:
    """How many of the owner's steps are in each status (every status present, 0 if none), made since `since`."""
    steps = _steps(owner)
    if since is not None:
        steps = steps.filter(created_at__gte=since)
    counts = dict.fromkeys(GenerationStep.Status.values, 0)
    counts.update(steps.order_by().values_list("status").annotate(count=Count("id")))
    return counts


def step_status_counts_by_model(*, owner: Owner, since: datetime) -> dict[str, dict[str, int]]:
    """`step_status_counts` per model name, for the models the owner used since `since`."""
    rows = (
        _steps(owner)
        .filter(created_at__gte=since)
        .order_by()
        .values_list("model_name", "status")
        .annotate(count=Count("id"))
    )
    counts: dict[str, dict[str, int]] = {}
    for model_name, step_status, count in rows:
        counts.setdefault(model_name, dict.fromkeys(GenerationStep.Status.values, 0))[step_status] = count
    return counts


def step_queue_position(*, step: GenerationStep) -> int | None:
    """The step's place among everyone's unfinished steps, oldest first (1: next or being made); None once done.

    Positions count other accounts' steps too (InvokeAI works through them all), but say nothing else of them."""
    if step.is_finished:
        return None
    earlier = Q(created_at__lt=step.created_at) | Q(created_at=step.created_at, pk__lt=step.pk)
    return steps_in_flight().filter(earlier).count() + 1


@dataclass(frozen=True)
class StepTimings:
    seconds_per_step: float | None
    seconds_per_image: float | None


def step_timings(
    *, owner: Owner, model_key: str | None = None, since: datetime | None = None, sample: int = _TIMING_SAMPLE
) -> StepTimings:
    """How long the owner's latest `sample` completed steps (of one model, since a time, if given) took from
    the start of their batch to its last image, on average: per step and per image."""
    steps = _steps(owner).filter(status=GenerationStep.Status.COMPLETED, started_at__isnull=False)
    steps = steps.exclude(completed_at=None)
    if model_key is not None:
        steps = steps.filter(model_key=model_key)
    if since is not None:
        steps = steps.filter(created_at__gte=since)
    rows = steps.order_by("-completed_at").values_list("started_at", "completed_at", "batch_size")[:sample]
    # The filters above leave no None; the database's types do not say so.
    seconds = [((done - started).total_seconds(), size) for started, done, size in rows if started and done]
    if not seconds:
        return StepTimings(seconds_per_step=None, seconds_per_image=None)
    return StepTimings(
        seconds_per_step=sum(took for took, _ in seconds) / len(seconds),
        seconds_per_image=sum(took / size for took, size in seconds) / len(seconds),
    )


def alternatives_of_photos(*, photo_ids: list[uuid.UUID]) -> dict[uuid.UUID, StepAlternative]:
    """The step alternative (with its step) each of these generated photos is, in one query."""
    alternatives = StepAlternative.objects.filter(photo_id__in=photo_ids).select_related("step")
    return {alternative.photo_id: alternative for alternative in alternatives}
