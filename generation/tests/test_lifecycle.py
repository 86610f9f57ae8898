"""The state machine: which status changes are allowed, and that a lost race is reported, not applied."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from gallery_project.errors import Conflict
from generation import lifecycle
from generation.models import GenerationSession, GenerationStep

pytestmark = pytest.mark.django_db

S = GenerationStep.Status
ALL = list(S)
ALLOWED = {
    (S.PENDING, S.RUNNING),
    (S.PENDING, S.FAILED),
    (S.PENDING, S.CANCELLED),
    (S.RUNNING, S.COMPLETED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
}


def make_step(status: str = S.PENDING) -> GenerationStep:
    session = GenerationSession.objects.create()
    return GenerationStep.objects.create(
        session=session,
        position=1,
        prompt="p",
        model_key="k",
        model_hash="h",
        model_name="n",
        batch_size=1,
        status=status,
    )


@pytest.mark.parametrize("source", ALL)
@pytest.mark.parametrize("target", ALL)
def test_only_the_documented_transitions_happen(source, target):
    step = make_step(source)
    moved = lifecycle.step_move(step_id=step.pk, to=target)
    step.refresh_from_db()
    assert moved is ((source, target) in ALLOWED)
    assert lifecycle.step_can_move(source, target) is moved
    assert step.status == (target if moved else source)


def test_statuses_are_stored_lowercase():
    assert all(status == status.lower() for status in S.values)
    assert all(status == status.lower() for status in GenerationSession.Status.values)


def test_moving_sets_the_timestamps_and_drops_the_lease():
    step = make_step()
    lifecycle.step_move(step_id=step.pk, to=S.RUNNING)
    GenerationStep.objects.filter(pk=step.pk).update(follower_token="abc")
    step.refresh_from_db()
    assert step.started_at is not None and step.completed_at is None
    lifecycle.step_move(step_id=step.pk, to=S.COMPLETED, progress=100)
    step.refresh_from_db()
    assert step.completed_at is not None and step.progress == 100 and step.follower_token == ""


def test_of_two_racing_moves_exactly_one_wins():
    step = make_step(S.RUNNING)
    assert lifecycle.step_move(step_id=step.pk, to=S.CANCELLED)
    assert not lifecycle.step_move(step_id=step.pk, to=S.COMPLETED)
    step.refresh_from_db()
    assert step.status == S.CANCELLED


def test_a_refused_move_for_a_person_is_a_409_naming_the_current_status():
    step = make_step(S.COMPLETED)
    with pytest.raises(Conflict, match="This step is completed; it cannot become cancelled") as caught:
        lifecycle.step_move_or_conflict(step_id=step.pk, to=S.CANCELLED)
    assert caught.value.details == {"status": "completed", "requested": "cancelled"}


def test_sessions_complete_or_abandon_once():
    session = GenerationSession.objects.create()
    lifecycle.session_move(session_id=session.pk, to=GenerationSession.Status.COMPLETED)
    session.refresh_from_db()
    assert session.status == "completed" and session.completed_at is not None
    with pytest.raises(Conflict):
        lifecycle.session_move(session_id=session.pk, to=GenerationSession.Status.ABANDONED)


def test_the_database_refuses_unknown_statuses():
    step = make_step()
    with pytest.raises(IntegrityError), transaction.atomic():
        GenerationStep.objects.filter(pk=step.pk).update(status="RUNNING")
