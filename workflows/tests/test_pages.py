"""The workflow pages with Django's test client: import, the form's inputs, running, "Open in the studio"."""

from __future__ import annotations

import io
import json

import pytest

from albums import services as album_services
from backends.invokeai import workflows as wf
from generation.models import CachedModel, GenerationStep
from photos.models import Photo
from testing import fake_invokeai
from workflows import services
from workflows.models import Workflow

from .conftest import SD15, SD15_LORA, exposed, resize_workflow, workflow_json

pytestmark = pytest.mark.django_db


def _upload(owner_client, slug: str = SD15):
    upload = io.BytesIO(json.dumps(workflow_json(slug)).encode())
    upload.name = "workflow.json"
    return owner_client.post("/studio/workflows/", {"file": upload})


def test_an_uploaded_file_becomes_a_page_with_the_forms_inputs(owner_client, invokeai):
    answer = _upload(owner_client, SD15_LORA)
    workflow = Workflow.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/studio/workflows/{workflow.pk}/"

    page = owner_client.get(answer["Location"]).content.decode()

    assert "Text to Image - SD1.5, LoRA" in page
    model = exposed(SD15_LORA, "model")
    assert f'<select name="{model}">' in page and "tiny-sd1 · sd-1" in page
    # The model picker lists only the field's type: no LoRA among the main models, no main model among LoRAs.
    lora_select = page.split(f'name="{exposed(SD15_LORA, "lora")}"')[1].split("</select>")[0]
    assert "tiny-sd1-lora" in lora_select and "tiny-sd1 · " not in lora_select
    width = exposed(SD15_LORA, "width")
    assert f'name="{width}" value="512"' in page and 'step="8"' in page
    assert "super cute tiger cub" in page
    positions = [page.index(f'name="{name}"') for name in (model, exposed(SD15_LORA, "lora"), width)]
    assert positions == sorted(positions)


def test_running_from_the_page_goes_to_the_session_and_a_photo_opens_it_again(owner_client, invokeai, follow):
    _upload(owner_client)
    workflow = Workflow.objects.get()
    sd1 = CachedModel.objects.get(name="tiny-sd1")
    posted = {
        exposed(SD15, "model"): sd1.key,
        exposed(SD15, "width"): "64",
        exposed(SD15, "height"): "64",
        exposed(SD15, "prompt"): "a red fox",
        exposed(SD15, "board"): "none",
        "runs": "1",
    }

    answer = owner_client.post(f"/studio/workflows/{workflow.pk}/run/", posted)

    step = GenerationStep.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/studio/{step.session_id}/"
    follow(step.pk)
    photo = step.alternatives.get().photo
    lightbox = owner_client.get(f"/photos/{photo.pk}/").content.decode()
    link = f"/studio/workflows/{workflow.pk}/?photo={photo.pk}"
    assert "Open in the studio" in lightbox and link in lightbox
    again = owner_client.get(link).content.decode()
    assert "a red fox" in again and f'name="{exposed(SD15, "width")}" value="64"' in again
    assert f'<option value="{sd1.key}" selected>' in again


def test_a_refused_run_shows_why_on_the_page_and_records_nothing(owner_client, invokeai):
    _upload(owner_client)
    workflow = Workflow.objects.get()

    answer = owner_client.post(f"/studio/workflows/{workflow.pk}/run/", {exposed(SD15, "width"): "65"})

    assert answer.status_code == 400
    assert "a multiple of 8" in answer.content.decode()
    assert not GenerationStep.objects.exists()


def test_a_bad_import_shows_why(owner_client, invokeai):
    answer = owner_client.post("/studio/workflows/", {"document": "{nope"})

    assert answer.status_code == 400 and "This is not JSON" in answer.content.decode()
    assert not Workflow.objects.exists()


def test_unknown_field_types_are_shown_read_only(owner_client, invokeai):
    workflow = workflow_json(SD15)
    node = next(node for node in workflow["nodes"] if node["data"]["type"] == "noise")
    node["data"]["type"] = "some_removed_noise"
    owner_client.post("/studio/workflows/", {"document": json.dumps(workflow)})

    page = owner_client.get(f"/studio/workflows/{Workflow.objects.get().pk}/").content.decode()

    assert "some_removed_noise" in page and "needs updating in InvokeAI" in page
    assert page.count("data-read-only") == 2  # width and height, with their values
    assert "Run</button>" in page and "disabled>Run" in page


def test_a_photo_imported_from_invokeai_with_a_workflow_opens_it_in_the_studio(owner_client, invokeai, user):
    sd1 = CachedModel.objects.get(name="tiny-sd1")
    values = {
        exposed(SD15, "model"): sd1.identifier.as_field(),
        exposed(SD15, "prompt"): "a heron in the reeds",
        exposed(SD15, "width"): 64,
    }
    embedded = wf.batch_body(workflow_json(SD15), values, services.node_templates())["batch"]["workflow"]
    png = fake_invokeai._noise_png(64, 64, 1, None, {"nodes": {}, "edges": []})
    image = invokeai._store_image(
        png, category="general", is_intermediate=False, origin="internal", workflow=json.dumps(embedded), at=0
    )

    album_services.boards_import(owner=user, boards=["none"])
    album_services.boards_import(owner=user, boards=["none"])

    photo = Photo.objects.get(invoke_id=image.name)
    workflow = Workflow.objects.get()
    assert workflow.source == "image" and workflow.name == "Text to Image - SD1.5"
    assert photo.generation_params["workflow_id"] == workflow.pk
    assert photo.generation_params["values"][exposed(SD15, "model")] == {"key": sd1.key, "name": "tiny-sd1"}
    page = owner_client.get(f"/studio/workflows/{workflow.pk}/?photo={photo.pk}").content.decode()
    assert "a heron in the reeds" in page and f'<option value="{sd1.key}" selected>' in page
    assert f'name="{exposed(SD15, "width")}" value="64"' in page


def test_several_values_for_a_field_run_the_workflow_once_with_each(owner_client, invokeai, follow):
    _upload(owner_client)
    workflow = Workflow.objects.get()
    prompt, width = exposed(SD15, "prompt"), exposed(SD15, "width")
    page = owner_client.get(f"/studio/workflows/{workflow.pk}/").content.decode()
    assert f'name="batch:{prompt}"' in page and f'name="batch:{width}"' in page
    assert f'name="batch:{exposed(SD15, "model")}"' not in page  # InvokeAI's batch data cannot carry a model
    posted = {
        exposed(SD15, "model"): CachedModel.objects.get(name="tiny-sd1").key,
        exposed(SD15, "height"): "64",
        prompt: "ignored: the batch wins",
        f"batch:{prompt}": "a red fox\r\n\r\n a grey wolf \r\n",
        f"batch:{width}": "64",
        "runs": "1",
    }

    answer = owner_client.post(f"/studio/workflows/{workflow.pk}/run/", posted)

    assert answer.status_code == 302, answer.content.decode()[:2000]
    step = GenerationStep.objects.get()
    assert step.parameters["batch"] == {prompt: ["a red fox", "a grey wolf"], width: [64]}
    follow(step.pk)
    photos = Photo.objects.filter(step_alternative__step=step).order_by("step_alternative__index")
    assert [photo.generation_prompt for photo in photos] == ["a red fox", "a grey wolf"]
    # "Open in the studio" from the second brings the form back with the prompt it was made with.
    again = owner_client.get(f"/studio/workflows/{workflow.pk}/?photo={photos[1].pk}").content.decode()
    assert f'<textarea name="{prompt}" rows="3">a grey wolf</textarea>' in again


def test_a_bad_value_among_several_is_shown_with_the_values_kept(owner_client, invokeai):
    _upload(owner_client)
    workflow = Workflow.objects.get()
    width = exposed(SD15, "width")
    posted = {exposed(SD15, "model"): CachedModel.objects.get(name="tiny-sd1").key, f"batch:{width}": "64\nwide"}

    answer = owner_client.post(f"/studio/workflows/{workflow.pk}/run/", posted)

    assert answer.status_code == 400
    page = answer.content.decode()
    assert "needs a number. (value 2 of the batch)" in page
    assert "64\nwide</textarea>" in page and '<details class="batch-values" open>' in page
    assert not GenerationStep.objects.exists()


def test_an_image_field_is_the_studios_photo_picker_and_shows_the_chosen_photos(
    owner_client, invokeai, user, gallery_photo
):
    workflow = services.workflow_import(owner=user, document=resize_workflow())
    first, second = gallery_photo(), gallery_photo()

    page = owner_client.get(f"/studio/workflows/{workflow.pk}/").content.decode()

    assert '<select name="resize.image"' not in page and '<input type="hidden" name="resize.image" value="">' in page
    assert 'data-action="pick-photo" data-target="resize.image"' in page
    assert "/studio/photo-picker/?target=resize.image" in page
    assert 'data-target="batch:resize.image"' in page and "?target=batch%3Aresize.image" in page
    assert '<dialog id="photo-picker"' in page and "js/picker.js" in page
    tiles = owner_client.get("/studio/photo-picker/?target=batch:resize.image", headers={"HX-Request": "true"})
    assert tiles.status_code == 200
    assert tiles.content.decode().count('data-action="picked" data-target="batch:resize.image"') == 2

    # Sent back with an error (runs not a number): the chosen photo and the several chosen ones are shown again.
    run = f"/studio/workflows/{workflow.pk}/run/"
    again = owner_client.post(run, {"resize.image": str(first.pk), "runs": "x"})
    assert again.status_code == 400
    page = again.content.decode()
    assert f'<input type="hidden" name="resize.image" value="{first.pk}">' in page
    assert f'src="/api/photos/{first.pk}/thumbnail"' in page and "Change photo…" in page
    page = owner_client.post(run, {"batch:resize.image": [str(second.pk), str(first.pk)], "runs": "x"}).content.decode()
    chips = page.split("data-picked-list>")[1].split("</ul>")[0]
    assert chips.index(str(second.pk)) < chips.index(str(first.pk))
    assert chips.count('name="batch:resize.image"') == 2 and '<details class="batch-values" open>' in page


@pytest.mark.parametrize("value", ["not-a-photo", "00000000-0000-0000-0000-000000000000", '"><b>x</b>'])
def test_an_image_value_the_picker_cannot_show_is_left_unchosen_not_a_crash(owner_client, invokeai, user, value):
    workflow = services.workflow_import(owner=user, document=resize_workflow())

    answer = owner_client.post(
        f"/studio/workflows/{workflow.pk}/run/", {"resize.image": value, "batch:resize.image": [value], "runs": "x"}
    )

    assert answer.status_code == 400
    page = answer.content.decode()
    assert '<input type="hidden" name="resize.image" value="">' in page and "<b>x</b>" not in page
    assert "data-picked-list></ul>" in page


def test_someone_elses_photo_is_not_shown_as_chosen(owner_client, invokeai, user, django_user_model):
    workflow = services.workflow_import(owner=user, document=resize_workflow())
    other = django_user_model.objects.create_user("someone-else", password="x")
    theirs = Photo.objects.create(owner=other, filename="theirs.png")

    page = owner_client.post(
        f"/studio/workflows/{workflow.pk}/run/", {"resize.image": str(theirs.pk), "runs": "x"}
    ).content.decode()

    assert str(theirs.pk) not in page


@pytest.mark.parametrize("target", ['x"><script>', "a b", "x" * 201, ""])
def test_the_picker_refuses_a_target_that_is_not_a_field_name(owner_client, target):
    answer = owner_client.get("/studio/photo-picker/", {"target": target}, headers={"HX-Request": "true"})

    assert answer.status_code == 400 and "Unknown picker target" in answer.content.decode()


def test_running_with_a_picked_photo_and_several_picked_photos(owner_client, invokeai, user, gallery_photo):
    workflow = services.workflow_import(owner=user, document=resize_workflow())
    first, second = gallery_photo(), gallery_photo()

    run = f"/studio/workflows/{workflow.pk}/run/"
    single = owner_client.post(run, {"resize.image": str(first.pk)})
    several = owner_client.post(run, {"resize.image": "", "batch:resize.image": [str(first.pk), str(second.pk)]})

    assert single.status_code == several.status_code == 302
    one, two = GenerationStep.objects.order_by("pk")
    assert one.parameters["values"]["resize.image"] == str(first.pk)
    assert two.parameters["batch"] == {"resize.image": [str(first.pk), str(second.pk)]} and two.batch_size == 2
