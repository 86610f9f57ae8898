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

from .conftest import SD15, SD15_LORA, exposed, workflow_json

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
