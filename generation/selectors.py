"""Reads for the studio and its API: sessions with their steps and images, a step's status, what is in flight.

Sessions and steps are read for their owner (gallery_project.permissions): another account's are not found.
What is in flight is read for everyone, by the background work that keeps the backend busy or idle.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Prefetch, Q, QuerySet

from gallery_project.errors import NotFound
from gallery_project.permissions import Owner, owned_by
from photos.models import Photo

from .lifecycle import STEP_IN_FLIGHT
from .models import GenerationSession, GenerationStep, StepAlternative, StudioPreference

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
    """The session's steps in order, each with its alternatives and their photos (three queries in all)."""
    return list(session.steps.order_by("position").select_related("parent").prefetch_related(_alternatives()))


def _steps(owner: Owner) -> QuerySet[GenerationStep]:
    return owned_by(GenerationStep.objects.select_related("session"), owner, via="session__owner")


def step_get(*, step_id: int | str, owner: Owner) -> GenerationStep:
    try:
        return _steps(owner).get(pk=int(step_id))
    except (GenerationStep.DoesNotExist, ValueError):
        raise NotFound("This generation step does not exist.", details={"step_id": str(step_id)}) from None


def step_with_alternatives(*, step_id: int | str, owner: Owner) -> GenerationStep:
    step = step_get(step_id=step_id, owner=owner)
    return _steps(owner).prefetch_related(_alternatives()).get(pk=step.pk)


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


def retrievals_unfinished() -> QuerySet[StepAlternative]:
    """Images still to download: pending, or failed with attempts left (the retry task will try them)."""
    return StepAlternative.objects.filter(
        Q(photo__retrieval_status=Photo.RetrievalStatus.PENDING)
        | Q(
            photo__retrieval_status=Photo.RetrievalStatus.FAILED,
            photo__retrieval_attempts__lt=settings.RETRIEVAL_MAX_ATTEMPTS,
        )
    )


def generation_in_flight() -> bool:
    """Whether work of ours still needs the InvokeAI backend: a step generating, or images to download."""
    return steps_in_flight().exists() or retrievals_unfinished().exists()


def preference_get(*, user: AbstractBaseUser | AnonymousUser) -> StudioPreference | None:
    if isinstance(user, AnonymousUser):
        return None
    return StudioPreference.objects.filter(user_id=user.pk).first()
