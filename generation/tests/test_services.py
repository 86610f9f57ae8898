"""Step creation (validation, defaults, inputs), variations, selection, sessions, preferences, the busy signal."""

from __future__ import annotations

import io

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image

from backends.invokeai.errors import ModelError
from backends.signals import app_is_busy, user_activity
from gallery_project.errors import Conflict, InvalidInput, NotFound, Unavailable
from generation import follower, services
from generation.models import CachedModel, GenerationSession, GenerationStep, StepAlternative, StudioPreference
from photos import services as photo_services
from photos import storage
from photos.models import Photo
from testing.media import stored_bytes

from .conftest import step_request

pytestmark = pytest.mark.django_db

Status = GenerationStep.Status


def uploads(invokeai) -> list:
    return [image for image in invokeai.images.values() if image.origin == "external"]


# --- validation and defaults, before anything reaches InvokeAI ---


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"prompt": "   "}, "Write a prompt"),
        ({"width": 100}, "width must be a multiple of 8"),
        ({"batch_size": 11}, "batch_size must be between 1 and 10"),
        ({"steps": 500}, "steps must be between 1 and 150"),
        ({"cfg_scale": 0.5}, "cfg_scale must be between 1 and 30"),
        ({"scheduler": "nope"}, "Unknown scheduler"),
        ({"mode": "sketch"}, "mode must be one of"),
        ({"mode": "outpaint"}, "outpaint needs an init photo"),
        ({"mode": "img2img"}, "img2img needs an init photo"),
        ({"vae_key": "missing"}, "That VAE is not installed"),
        ({"parent_id": 999}, "not a step of this session"),
    ],
)
def test_invalid_requests_are_refused_before_anything_is_recorded(invokeai, sd1, session, overrides, message, user):
    invokeai.requests.clear()
    with pytest.raises(InvalidInput, match=message):
        services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, **overrides))
    assert not GenerationStep.objects.exists()
    assert [path for _, path in invokeai.requests if "enqueue" in path] == []


def test_unknown_and_uninstalled_models(invokeai, sd1, session, user):
    with pytest.raises(NotFound, match="not in the model cache"):
        services.step_create(
            owner=user, session_id=session.pk, request=services.StepRequest(prompt="x", model_key="nope")
        )
    CachedModel.objects.filter(pk=sd1.pk).update(available=False)
    with pytest.raises(ModelError, match="no longer installed"):
        services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))


def test_a_model_reinstalled_under_a_new_key_is_followed_by_its_hash(invokeai, sd1, session, enqueued, user):
    new_key = invokeai.reinstall_model("tiny-sd1")["key"]
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, batch_size=1))
    assert step.model_key == new_key
    # An API client that only knows the hash and a stale key still gets the model.
    request = step_request(sd1, batch_size=1, model_key="stale-key", model_hash=sd1.hash)
    assert services.step_create(owner=user, session_id=session.pk, request=request).model_key == new_key


def test_defaults_come_from_the_model_base(invokeai, session, enqueued, user):
    sdxl = CachedModel.objects.get(name="tiny-sdxl")
    step = services.step_create(
        owner=user,
        session_id=session.pk,
        request=services.StepRequest(prompt="a fox", model_key=sdxl.key, steps=2, width=64, height=64),
    )
    params = step.parameters
    assert (params["scheduler"], params["cfg_scale"], params["vae_name"]) == (
        "dpmpp_2m_sde_k",
        6.0,
        "tiny-sdxl-vae-fp16-fix",
    )
    assert 0 <= params["seed"] <= 2**32 - 1
    sd1 = CachedModel.objects.get(name="tiny-sd1")
    plan = services._plan(session, services.StepRequest(prompt="a fox", model_key=sd1.key), session.owner)
    assert (plan.params.width, plan.params.height, plan.params.steps) == (512, 512, 30)
    plan = services._plan(session, services.StepRequest(prompt="a fox", model_key=sdxl.key), session.owner)
    assert (plan.params.width, plan.params.height) == (1024, 1024)


def test_the_model_step_options_bound_the_steps(invokeai, sd1, session, enqueued, user):
    CachedModel.objects.filter(pk=sd1.pk).update(options={"fixed_steps": 4})
    with pytest.raises(InvalidInput, match="always runs 4 steps"):
        services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, steps=20))
    assert (
        services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, steps=None)).parameters[
            "steps"
        ]
        == 4
    )
    CachedModel.objects.filter(pk=sd1.pk).update(options={"steps": {"min": 2, "max": 8, "default": 6}})
    with pytest.raises(InvalidInput, match="between 2 and 8"):
        services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, steps=9))


def test_a_closed_session_takes_no_steps(invokeai, sd1, session, user):
    services.session_update(owner=user, session_id=session.pk, status="abandoned")
    with pytest.raises(Conflict, match="This session is abandoned"):
        services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))


def test_an_unavailable_backend_is_refused_before_a_step_is_recorded(invokeai, sd1, session, monkeypatch, user):
    """No InvokeAI to send to (remote mode without a pod) is nothing tried: no failed step to clutter the session."""

    def pod_not_ready():
        raise Unavailable("The RunPod GPU is still starting; try again in a minute.", code="pod_starting")

    monkeypatch.setattr("backends.manager.current_backend_url", pod_not_ready)
    with pytest.raises(Unavailable, match="still starting"):
        services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    with pytest.raises(Unavailable, match="still starting"):
        services.step_validate(owner=user, request=step_request(sd1))
    assert not GenerationStep.objects.exists()


def test_steps_are_numbered_within_their_session_and_activity_is_signalled(invokeai, sd1, session, enqueued, user):
    seen = []
    user_activity.connect(lambda sender, **kwargs: seen.append(sender), weak=False, dispatch_uid="test-activity")
    try:
        first = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, batch_size=1))
        second = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, batch_size=1))
        other = services.step_create(
            owner=user, session_id=services.session_create(owner=user).pk, request=step_request(sd1, batch_size=1)
        )
    finally:
        user_activity.disconnect(dispatch_uid="test-activity")
    assert (first.position, second.position, other.position) == (1, 2, 1)
    assert len(seen) == 3


def test_the_follower_is_enqueued_once_the_step_is_committed(
    invokeai, sd1, session, django_capture_on_commit_callbacks, enqueued, user
):
    with django_capture_on_commit_callbacks(execute=True):
        step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    assert enqueued == [step.pk]


def test_enqueue_records_the_batch_it_chose(invokeai, sd1, session, enqueued, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    assert {invokeai.items[item_id].batch["batch_id"] for item_id in step.item_ids} == {step.batch_id}
    assert step.item_ids == sorted(step.item_ids)


# --- img2img and inpainting inputs ---


def test_img2img_uploads_the_init_photo_at_the_step_size(invokeai, sd1, session, gallery_photo, enqueued, user):
    photo = gallery_photo(size=(3000, 2000), fmt="JPEG")
    request = step_request(sd1, mode="img2img", init_photo_id=photo.pk, width=None, height=None, strength=0.6)
    step = services.step_create(owner=user, session_id=session.pk, request=request)
    # 3:2 at about the area of SD1's 512 square, in multiples of 8.
    assert (step.parameters["width"], step.parameters["height"]) == (624, 416)
    assert (step.parameters["init_photo_id"], step.parameters["strength"]) == (str(photo.pk), 0.6)
    [init] = uploads(invokeai)
    assert (init.width, init.height, init.category, init.is_intermediate) == (624, 416, "general", True)
    graph = invokeai.items[step.item_ids[0]].session["graph"]
    assert graph["nodes"]["i2l"]["image"] == {"image_name": init.name}
    assert graph["nodes"]["denoise"]["denoising_start"] == pytest.approx(0.4)


def test_inpaint_uploads_the_mask_in_invokeai_polarity(invokeai, sd1, session, gallery_photo, enqueued, user):
    init = gallery_photo(size=(256, 256))
    mask = gallery_photo(size=(256, 256), color=(255, 255, 255), plain=True)
    request = step_request(sd1, mode="inpaint", init_photo_id=init.pk, mask_photo_id=mask.pk, width=128, height=128)
    step = services.step_create(owner=user, session_id=session.pk, request=request)
    uploaded = {image.category: image for image in uploads(invokeai)}
    assert set(uploaded) == {"general", "mask"}
    with Image.open(io.BytesIO(uploaded["mask"].png)) as converted:
        # White painted = regenerate here; InvokeAI regenerates black.
        assert converted.size == (128, 128) and converted.convert("L").getpixel((64, 64)) == 0
    assert step.parameters["mask_photo_id"] == str(mask.pk)


def test_an_init_photo_must_exist_and_be_downloaded(invokeai, sd1, session, gallery_photo, user):
    pending = Photo.objects.create(owner=user, is_generated=True, retrieval_status="pending", invoke_id="x.png")
    with pytest.raises(InvalidInput, match="init photo has not been downloaded"):
        services.step_create(
            owner=user, session_id=session.pk, request=step_request(sd1, mode="img2img", init_photo_id=pending.pk)
        )


# --- variations of a step ---


@pytest.fixture
def finished_step(invokeai, sd1, session, follow, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, batch_size=2, seed=77))
    follow(step.pk)
    step.refresh_from_db()
    return step


def test_remix_keeps_everything_but_the_seed(finished_step, enqueued, user):
    request = services.step_request_from(step=finished_step, variation="remix")
    step = services.step_create(owner=user, session_id=finished_step.session_id, request=request)
    assert step.parent_id == finished_step.pk and step.position == 2
    assert step.prompt == finished_step.prompt and step.parameters["steps"] == 2
    assert step.parameters["seed"] != 77


def test_reuse_seed_keeps_the_seed_with_a_new_prompt(finished_step, enqueued, user):
    request = services.step_request_from(step=finished_step, variation="reuse_seed", prompt="the same, at dawn")
    step = services.step_create(owner=user, session_id=finished_step.session_id, request=request)
    assert (step.prompt, step.parameters["seed"]) == ("the same, at dawn", 77)


def test_continue_is_img2img_from_the_chosen_image(finished_step, invokeai, enqueued, user):
    with pytest.raises(Conflict, match="Choose one of this step's images first"):
        services.step_request_from(step=finished_step, variation="continue")
    chosen = finished_step.alternatives.order_by("index").last()
    services.alternative_select(owner=user, step_id=finished_step.pk, photo_id=chosen.photo_id)
    request = services.step_request_from(step=finished_step, variation="continue", strength=0.5)
    step = services.step_create(owner=user, session_id=finished_step.session_id, request=request)
    assert step.parameters["mode"] == "img2img" and step.parameters["init_photo_id"] == str(chosen.photo_id)
    assert step.parameters["strength"] == 0.5 and step.parent_id == finished_step.pk
    assert (step.parameters["width"], step.parameters["height"]) == (64, 64)
    [init] = uploads(invokeai)
    assert (init.width, init.height) == (64, 64)


# --- choosing an image ---


def test_selecting_copies_the_image_and_a_new_choice_moves_the_copies(
    finished_step, django_capture_on_commit_callbacks, user
):
    first, second = finished_step.alternatives.order_by("index").select_related("photo")
    services.alternative_select(owner=user, step_id=finished_step.pk, photo_id=first.photo_id)
    day = timezone.localdate(first.photo.created_at).isoformat()
    selected = f"generated/sessions/{finished_step.session_id}/{finished_step.pk}/selected/{first.photo_id}.png"
    completed = f"generated/completed/{day}/{first.photo_id}.png"
    original = stored_bytes(first.photo.local_storage_path)
    assert stored_bytes(selected) == original
    assert stored_bytes(completed) == original

    with django_capture_on_commit_callbacks(execute=True):
        services.alternative_select(owner=user, step_id=finished_step.pk, photo_id=second.photo_id)
    assert list(finished_step.alternatives.filter(selected=True).values_list("photo_id", flat=True)) == [
        second.photo_id
    ]
    assert not storage.exists(selected) and not storage.exists(completed)
    assert storage.exists(completed.replace(str(first.photo_id), str(second.photo_id)))


def test_the_database_allows_one_selected_image_per_step(finished_step):
    StepAlternative.objects.filter(step=finished_step).update(selected=False)
    first, second = finished_step.alternatives.all()
    StepAlternative.objects.filter(pk=first.pk).update(selected=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        StepAlternative.objects.filter(pk=second.pk).update(selected=True)


def test_only_a_step_s_own_downloaded_image_can_be_chosen(finished_step, gallery_photo, user):
    with pytest.raises(NotFound, match="not one of this step's"):
        services.alternative_select(owner=user, step_id=finished_step.pk, photo_id=gallery_photo().pk)
    alternative = finished_step.alternatives.first()
    Photo.objects.filter(pk=alternative.photo_id).update(retrieval_status="failed", local_storage_path="")
    with pytest.raises(Conflict, match="not been downloaded"):
        services.alternative_select(owner=user, step_id=finished_step.pk, photo_id=alternative.photo_id)


def test_purging_a_chosen_image_removes_its_copies(finished_step, django_capture_on_commit_callbacks, user):
    alternative = finished_step.alternatives.select_related("photo").first()
    services.alternative_select(owner=user, step_id=finished_step.pk, photo_id=alternative.photo_id)
    copies = storage.selection_copies(
        alternative.photo.local_storage_path,
        alternative.photo_id,
        timezone.localdate(alternative.photo.created_at),
    )
    assert all(storage.exists(copy) for copy in copies)
    with django_capture_on_commit_callbacks(execute=True):
        photo_services.photo_purge(photo_ids=[alternative.photo_id], only_trashed=False)
    assert not any(storage.exists(copy) for copy in copies)
    assert not StepAlternative.objects.filter(pk=alternative.pk).exists()


# --- sessions, preferences, the busy signal ---


def test_a_session_from_a_photo(gallery_photo, user):
    photo = gallery_photo()
    session = services.session_create(owner=user, source_photo_id=photo.pk)
    assert (session.entry_type, session.source_image_id) == ("photo", photo.pk)


def test_a_session_cannot_close_while_a_step_generates(invokeai, sd1, session, enqueued, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    with pytest.raises(Conflict, match="still generating"):
        services.session_update(owner=user, session_id=session.pk, status="completed")
    services.step_cancel(owner=user, step_id=step.pk)
    assert (
        services.session_update(owner=user, session_id=session.pk, status="completed", title="Lighthouses").status
        == "completed"
    )
    assert GenerationSession.objects.get().title == "Lighthouses"


def test_preferences_are_remembered_per_user(user, sd1):
    services.preference_remember(user=user, model_key=sd1.key, steps=12)
    services.preference_remember(user=user, model_key=sd1.key, steps=14)
    assert StudioPreference.objects.get(user=user).steps == 14


def test_the_backend_is_busy_while_a_step_generates_or_images_wait(invokeai, sd1, session, follow, settings, user):
    assert app_is_busy() is False
    invokeai.fail_requests(r"^/api/v1/images/i/.+/full$", status=404, times=1)
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, batch_size=1))
    assert app_is_busy() is True
    follow(step.pk)
    assert GenerationStep.objects.get().status == Status.COMPLETED
    assert app_is_busy() is True  # its image failed to download and will be retried
    Photo.objects.update(retrieval_attempts=settings.RETRIEVAL_MAX_ATTEMPTS)
    assert app_is_busy() is False


def test_cancelling_while_invokeai_is_silent_is_finished_by_the_follower(invokeai, sd1, session, follow, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    invokeai.refuse_connections()
    assert services.step_cancel(owner=user, step_id=step.pk).status == Status.RUNNING
    invokeai.accept_connections()
    follow(step.pk)
    step.refresh_from_db()
    assert step.status == Status.CANCELLED
    assert follower.step_poll(step_id=step.pk).finished
