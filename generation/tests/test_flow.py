"""A step from creation to its stored images, against the fake InvokeAI: the happy path and every way it breaks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.utils import timezone

from backends import manager
from backends.invokeai.errors import InvokeAIConnectionError
from backends.invokeai.graphs import OUTPUT_NODE, seeds_from
from generation import follower, retrieval, services
from generation.models import GenerationStep, StepAlternative
from photos.models import Photo
from photos.tests.images import with_garbage_pixels
from testing.media import stored_bytes, stored_image, stored_names

from .conftest import PROMPT, step_request

pytestmark = pytest.mark.django_db

Status = GenerationStep.Status


def alternatives(step: GenerationStep) -> list[StepAlternative]:
    return list(StepAlternative.objects.filter(step=step).select_related("photo").order_by("index"))


def test_a_four_image_step_end_to_end(invokeai, sd1, session, follow, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, seed=1234))
    assert step.status == Status.RUNNING
    assert len(step.item_ids) == 4 and step.batch_id and step.backend_url == invokeai.url
    assert step.position == 1 and step.parameters["seed"] == 1234

    assert follow(step.pk) == "finished"

    step.refresh_from_db()
    assert (step.status, step.progress, step.images_retrieved, step.images_failed) == (Status.COMPLETED, 100, 4, 0)
    assert step.error_message == "" and step.completed_at is not None
    stored = alternatives(step)
    assert [alt.photo.seed for alt in stored] == seeds_from(1234, 4)
    for alt in stored:
        photo = alt.photo
        assert photo.is_generated and photo.is_available and photo.image_category == "general"
        assert (photo.generation_prompt, photo.generation_negative_prompt) == (PROMPT, "blurry")
        assert (photo.model_key, photo.model_name) == (sd1.key, "tiny-sd1")
        assert photo.generation_params["steps"] == 2 and photo.generation_params["mode"] == "txt2img"
        assert photo.invoke_id in invokeai.images
        assert photo.local_storage_path == f"generated/sessions/{session.pk}/{step.pk}/variants/{photo.pk}.png"
        assert stored_bytes(photo.local_storage_path) == invokeai.images[photo.invoke_id].png
        with stored_image(photo.local_thumbnail_path) as thumbnail:
            assert thumbnail.format == "WEBP" and thumbnail.size == (64, 64)
        assert (photo.width, photo.height, photo.retrieval_attempts) == (64, 64, 1)
    session.refresh_from_db()
    assert session.title == PROMPT


def test_each_image_is_stored_as_soon_as_its_item_completes(invokeai, sd1, session, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    invokeai.clock.advance(1.2)
    assert follower.step_poll(step_id=step.pk).finished is False
    step.refresh_from_db()
    assert (step.status, step.progress, step.images_retrieved) == (Status.RUNNING, 25, 1)
    assert [alt.photo.is_available for alt in alternatives(step)] == [True]
    # Nothing new finished: no items fetched, nothing written.
    invokeai.requests.clear()
    follower.step_poll(step_id=step.pk)
    assert [path for _, path in invokeai.requests if "items_by_ids" in path] == []


def test_two_of_four_items_fail(invokeai, sd1, session, follow, user):
    invokeai.fail_items(2, error_type="RuntimeError", error_message="CUDA out of memory")
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    follow(step.pk)
    step.refresh_from_db()
    assert (step.status, step.images_retrieved, step.images_failed) == (Status.COMPLETED, 2, 2)
    assert step.error_message == "2 of 4 images failed: RuntimeError: CUDA out of memory (x2)"
    statuses = [step.item_results[str(item_id)]["status"] for item_id in step.item_ids]
    assert statuses == ["failed", "failed", "completed", "completed"]
    assert Photo.objects.count() == 2


def test_a_step_whose_items_all_fail_is_failed(invokeai, sd1, session, follow, user):
    invokeai.fail_items(4)
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    follow(step.pk)
    step.refresh_from_db()
    assert (step.status, step.images_failed) == (Status.FAILED, 4)
    assert "4 of 4 images failed" in step.error_message
    assert not Photo.objects.exists()


def test_a_failed_download_is_retried_with_backoff(invokeai, sd1, session, follow, settings, user):
    settings.RETRIEVAL_RETRY_BACKOFF = 30
    invokeai.fail_requests(r"^/api/v1/images/i/.+/full$", status=404, times=1)
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    follow(step.pk)
    step.refresh_from_db()
    assert (step.status, step.images_retrieved, step.images_failed) == (Status.COMPLETED, 3, 0)
    [failed] = Photo.objects.filter(retrieval_status="failed")
    assert (failed.retrieval_attempts, failed.local_storage_path) == (1, "")
    assert "no longer has image" in failed.retrieval_error
    assert retrieval.next_retry_at(failed) == failed.last_retrieval_attempt + timedelta(seconds=30)

    assert retrieval.retrievals_retry_due(now=failed.last_retrieval_attempt + timedelta(seconds=10)) == 0
    assert retrieval.retrievals_retry_due(now=failed.last_retrieval_attempt + timedelta(seconds=31)) == 1

    failed.refresh_from_db()
    assert (failed.retrieval_status, failed.retrieval_attempts, failed.retrieval_error) == ("completed", 2, "")
    assert failed.is_available
    step.refresh_from_db()
    assert step.images_retrieved == 4


def test_after_the_last_attempt_a_download_waits_for_the_retry_button(invokeai, sd1, session, follow, settings, user):
    settings.RETRIEVAL_MAX_ATTEMPTS = 2
    invokeai.fail_requests(r"^/api/v1/images/i/.+/full$", status=404, times=2)
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, batch_size=1))
    follow(step.pk)
    [photo] = Photo.objects.all()
    later = timezone.now() + timedelta(hours=1)
    assert retrieval.retrievals_retry_due(now=later) == 0  # attempt 2 fails
    photo.refresh_from_db()
    assert (photo.retrieval_status, photo.retrieval_attempts) == ("failed", 2)
    assert retrieval.next_retry_at(photo) is None
    assert retrieval.retrievals_retry_due(now=later + timedelta(hours=1)) == 0

    retried = retrieval.photo_retrieval_retry(owner=user, photo_id=photo.pk)
    assert (retried.retrieval_status, retried.retrieval_attempts) == ("completed", 1)
    step.refresh_from_db()
    assert step.images_retrieved == 1


def test_cancel_mid_batch_keeps_the_finished_images(invokeai, sd1, session, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    invokeai.clock.advance(1.5)  # the first image is done, the second is being made

    cancelled = services.step_cancel(owner=user, step_id=step.pk)

    assert (cancelled.status, cancelled.images_retrieved, cancelled.images_failed) == (Status.CANCELLED, 1, 0)
    assert cancelled.error_message == "Cancelled after 1 of 4 images."
    assert [result["status"] for result in cancelled.item_results.values()].count("canceled") == 3
    assert all(invokeai.items[item_id].status != "in_progress" for item_id in step.item_ids)
    assert Photo.objects.filter(retrieval_status="completed").count() == 1


def test_invokeai_down_at_enqueue_fails_the_step_with_a_clear_error(invokeai, sd1, session, enqueued, user):
    invokeai.refuse_connections()
    with pytest.raises(InvokeAIConnectionError, match=f"InvokeAI at {invokeai.url} is not answering") as caught:
        services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    assert caught.value.status == 503
    [step] = GenerationStep.objects.all()
    assert step.status == Status.FAILED and "is not answering" in step.error_message
    assert step.completed_at is not None and step.item_ids == []
    assert not Photo.objects.exists() and enqueued == []


def test_invokeai_restart_mid_batch_reports_what_it_cancelled_and_lost(invokeai, sd1, session, follow, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    invokeai.clock.advance(1.5)
    follower.step_poll(step_id=step.pk)
    invokeai.refuse_connections()

    assert follower.step_poll(step_id=step.pk) == follower.Poll(finished=False, reached=False)
    step.refresh_from_db()
    assert step.status == Status.RUNNING and step.error_message.startswith("Waiting for InvokeAI: ")

    invokeai.accept_connections()
    invokeai.restart()  # the item being made is cancelled
    invokeai.vanish([step.item_ids[3]])  # and one is gone from its queue
    follow(step.pk)

    step.refresh_from_db()
    results = [step.item_results[str(item_id)] for item_id in step.item_ids]
    assert [result["status"] for result in results] == ["completed", "canceled", "completed", "lost"]
    assert "restarts" in results[1]["error"] and "no longer has" in results[3]["error"]
    assert (step.status, step.images_retrieved, step.images_failed) == (Status.COMPLETED, 2, 2)
    assert "2 of 4 images failed" in step.error_message


def test_a_worker_restart_mid_step_resumes_without_duplicates(invokeai, sd1, session, follow, enqueued, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    # A follower took the step, stored two images, and its worker died holding the lease.
    assert follower._lease_take(step.pk, "dead-worker")
    invokeai.clock.advance(2.5)
    follower.step_poll(step_id=step.pk)
    # It had also registered and downloaded the third image without recording its item as finished.
    invokeai.clock.advance(1)
    [third] = manager.invokeai_client(step.backend_url).queue_items([step.item_ids[2]], output_node=OUTPUT_NODE)
    retrieval.items_store(step=GenerationStep.objects.get(pk=step.pk), items=[third])

    assert follower.steps_resume() == 0  # the lease is still valid
    assert follower.steps_resume(now=timezone.now() + follower.LEASE + timedelta(seconds=1)) == 1
    assert enqueued == [step.pk]
    GenerationStep.objects.filter(pk=step.pk).update(follower_lease_until=timezone.now() - timedelta(seconds=1))

    assert follow(step.pk) == "finished"
    step.refresh_from_db()
    assert (step.status, step.images_retrieved) == (Status.COMPLETED, 4)
    assert Photo.objects.count() == 4 and StepAlternative.objects.count() == 4


def test_a_second_follower_steps_aside(invokeai, sd1, session, follow, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    assert follower._lease_take(step.pk, "first")
    assert follow(step.pk) == "not followed: finished, or another follower holds it"
    follower._lease_release(step.pk, "first")
    assert follow(step.pk) == "finished"


def test_a_follower_out_of_time_hands_over_its_lease_to_the_next_burst(
    invokeai, sd1, session, follow, monkeypatch, user
):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    handed: list[str] = []
    monkeypatch.setattr(follower, "step_follow_enqueue", lambda *, step_id, token="": handed.append(token))
    assert follow(step.pk, budget=0) == "handed over to a new follower"
    step.refresh_from_db()
    # Waiting its turn in the queue, the step is not an orphan: the sweep leaves it alone, others step aside.
    assert handed == [step.follower_token] and step.follower_lease_until > timezone.now()
    assert follower.steps_resume() == 0
    assert follow(step.pk) == "not followed: finished, or another follower holds it"
    assert follow(step.pk, token=handed[0], budget=0) == "handed over to a new follower"
    assert follow(step.pk, token=handed[0]) == "finished"
    step.refresh_from_db()
    assert (step.status, step.images_retrieved, step.follower_token) == (Status.COMPLETED, 4, "")


def test_a_handover_that_cannot_be_queued_frees_the_lease(invokeai, sd1, session, follow, monkeypatch, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))

    def broken(*, step_id, token=""):
        raise DatabaseError("the queue is gone")

    monkeypatch.setattr(follower, "step_follow_enqueue", broken)
    with pytest.raises(DatabaseError):
        follow(step.pk, budget=0)
    step.refresh_from_db()
    assert step.follower_token == "" and step.follower_lease_until is None


def test_a_step_whose_invokeai_stays_silent_fails(invokeai, sd1, session, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    GenerationStep.objects.filter(pk=step.pk).update(last_contact_at=timezone.now() - timedelta(minutes=16))
    invokeai.refuse_connections()
    assert follower.step_poll(step_id=step.pk).finished
    step.refresh_from_db()
    assert step.status == Status.FAILED and "stopped answering for more than 15 minutes" in step.error_message


def test_a_step_interrupted_before_enqueueing_is_failed_and_its_batch_cancelled(invokeai, sd1, session, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    # As if the app died between enqueueing and recording: still PENDING, the batch id known.
    GenerationStep.objects.filter(pk=step.pk).update(
        status=Status.PENDING, created_at=timezone.now() - timedelta(minutes=6)
    )
    assert follower.steps_resume() == 1
    step.refresh_from_db()
    assert step.status == Status.FAILED and "generate it again" in step.error_message
    assert {invokeai.items[item_id].status for item_id in step.item_ids} == {"canceled"}


def test_invokeai_s_thumbnail_is_kept_and_one_is_made_when_it_has_none(invokeai, sd1, session, follow, user):
    invokeai.fail_requests(r"^/api/v1/images/i/.+/thumbnail$", status=404, times=1)
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, batch_size=2))
    follow(step.pk)
    made_here, kept = (alt.photo for alt in alternatives(step))
    assert stored_bytes(kept.local_thumbnail_path) == invokeai.images[kept.invoke_id].webp
    with stored_image(made_here.local_thumbnail_path) as thumbnail:
        assert thumbnail.format == "WEBP" and thumbnail.size == (64, 64)
    assert stored_bytes(made_here.local_thumbnail_path) != invokeai.images[made_here.invoke_id].webp


def test_a_damaged_image_is_a_failed_download(invokeai, sd1, session, follow, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, batch_size=1))
    invokeai.clock.advance(1)
    manager.invokeai_client(invokeai.url).batch_status(step.batch_id)  # the fake runs its queue on requests
    for image in invokeai.images.values():
        image.png = image.png[: len(image.png) // 2]
    follow(step.pk)
    [photo] = Photo.objects.all()
    assert photo.retrieval_status == "failed" and "InvokeAI sent a damaged" in photo.retrieval_error
    assert photo.local_storage_path == "" and not [name for name in stored_names() if name.endswith(".png")]


def test_an_image_with_garbage_pixels_and_a_usable_thumbnail_is_a_failed_download_then_retried(
    invokeai, sd1, session, follow, settings
):
    """Its chunks and checksums are intact and InvokeAI's thumbnail is fine: only decoding finds it out."""
    step = services.step_create(owner=session.owner, session_id=session.pk, request=step_request(sd1, batch_size=1))
    invokeai.clock.advance(1)
    manager.invokeai_client(invokeai.url).batch_status(step.batch_id)
    [image] = invokeai.images.values()
    whole = image.png
    image.png = with_garbage_pixels(whole)

    follow(step.pk)

    [photo] = Photo.objects.all()
    assert photo.retrieval_status == "failed" and photo.retrieval_attempts == 1
    assert "InvokeAI sent a damaged" in photo.retrieval_error and "does not decode" in photo.retrieval_error
    assert photo.local_storage_path == "" and not stored_names()
    step.refresh_from_db()
    assert step.images_retrieved == 0

    # Retried by the retrieval rules: InvokeAI now serves a whole copy.
    image.png = whole
    later = timezone.now() + timedelta(seconds=settings.RETRIEVAL_RETRY_BACKOFF + 1)
    assert retrieval.retrievals_retry_due(now=later) == 1
    photo.refresh_from_db()
    assert photo.retrieval_status == "completed" and photo.retrieval_error == ""
    assert stored_bytes(photo.local_storage_path) == whole
