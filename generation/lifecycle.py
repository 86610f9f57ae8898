"""The one place that knows which status changes are allowed, for steps and for sessions.

    step:     pending -> running -> completed | failed | cancelled
              pending -> failed | cancelled        (enqueueing failed, or cancelled before it was enqueued)
    session:  active -> completed | abandoned

A cancel never moves a step by itself: it sets `cancel_requested_at` on a pending or running step. A running
step's follower (or the cancel request) then cancels its batch on InvokeAI and ends it CANCELLED once InvokeAI
has confirmed; a pending step is ended by the request that is sending it, which alone knows whether its batch
reached InvokeAI.

Every change is one conditional UPDATE (`WHERE status IN <the statuses it may come from>`), so of two workers
racing to move the same step, exactly one succeeds and the other learns it lost. Timestamps that belong to a
status (started_at, completed_at) are set here too.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Case, Value, When
from django.utils import timezone

from gallery_project.errors import Conflict

from .models import GenerationSession, GenerationStep

StepStatus = GenerationStep.Status
SessionStatus = GenerationSession.Status

STEP_TRANSITIONS: dict[str, frozenset[str]] = {
    StepStatus.PENDING: frozenset({StepStatus.RUNNING, StepStatus.FAILED, StepStatus.CANCELLED}),
    StepStatus.RUNNING: frozenset({StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.CANCELLED}),
    StepStatus.COMPLETED: frozenset(),
    StepStatus.FAILED: frozenset(),
    StepStatus.CANCELLED: frozenset(),
}
STEP_IN_FLIGHT = (StepStatus.PENDING, StepStatus.RUNNING)
CANCELLED_UNSENT = "Cancelled before it was sent to InvokeAI."

SESSION_TRANSITIONS: dict[str, frozenset[str]] = {
    SessionStatus.ACTIVE: frozenset({SessionStatus.COMPLETED, SessionStatus.ABANDONED}),
    SessionStatus.COMPLETED: frozenset(),
    SessionStatus.ABANDONED: frozenset(),
}


def _sources(transitions: dict[str, frozenset[str]], target: str) -> list[str]:
    if target not in transitions:
        raise ValueError(f"unknown status {target!r}")
    return [source for source, targets in transitions.items() if target in targets]


def step_can_move(source: str, target: str) -> bool:
    return target in STEP_TRANSITIONS.get(source, frozenset())


def step_move(*, step_id: int, to: str, **fields: Any) -> bool:
    """Move a step to `to` if its current status allows it, setting `fields` in the same UPDATE.

    Returns False when the step was not in a status `to` may follow: someone else moved it first.
    """
    now = timezone.now()
    if to == StepStatus.RUNNING:
        fields.setdefault("started_at", now)
    elif not STEP_TRANSITIONS[to]:
        fields.setdefault("completed_at", now)
        fields.setdefault("follower_token", "")
        fields.setdefault("follower_lease_until", None)
    updated = GenerationStep.objects.filter(pk=step_id, status__in=_sources(STEP_TRANSITIONS, to)).update(
        status=to, **fields
    )
    if updated:
        GenerationSession.objects.filter(steps__pk=step_id).update(updated_at=now)
    return bool(updated)


def step_move_or_conflict(*, step_id: int, to: str, **fields: Any) -> None:
    """`step_move` for a person's request: losing the race is a 409 that says what the step is doing now."""
    if not step_move(step_id=step_id, to=to, **fields):
        current = GenerationStep.objects.filter(pk=step_id).values_list("status", flat=True).first()
        raise Conflict(
            f"This step is {current}; it cannot become {to}.",
            code="invalid_transition",
            details={"status": current, "requested": to},
        )


def step_end_unsent(*, step_id: int, error_message: str) -> str | None:
    """End a PENDING step whose batch did not reach InvokeAI: CANCELLED if a cancel was asked for meanwhile, else
    FAILED with `error_message`.

    One UPDATE decides, so a cancel arriving at the same moment is never lost (the cancel marks a pending step
    and leaves its ending to whoever is sending it). Returns the status it got, None if it was no longer pending.
    """
    now = timezone.now()
    cancelled = {"cancel_requested_at__isnull": False}
    updated = GenerationStep.objects.filter(pk=step_id, status=StepStatus.PENDING).update(
        status=Case(When(**cancelled, then=Value(StepStatus.CANCELLED)), default=Value(StepStatus.FAILED)),
        error_message=Case(When(**cancelled, then=Value(CANCELLED_UNSENT)), default=Value(error_message)),
        completed_at=now,
        follower_token="",
        follower_lease_until=None,
    )
    if not updated:
        return None
    GenerationSession.objects.filter(steps__pk=step_id).update(updated_at=now)
    return GenerationStep.objects.filter(pk=step_id).values_list("status", flat=True).first()


def session_move(*, session_id: int, to: str) -> None:
    """Complete or abandon a session; a 409 if it is no longer active."""
    now = timezone.now()
    updated = GenerationSession.objects.filter(pk=session_id, status__in=_sources(SESSION_TRANSITIONS, to)).update(
        status=to, updated_at=now, completed_at=now
    )
    if not updated:
        current = GenerationSession.objects.filter(pk=session_id).values_list("status", flat=True).first()
        raise Conflict(
            f"This session is {current}; it cannot become {to}.",
            code="invalid_transition",
            details={"status": current, "requested": to},
        )
