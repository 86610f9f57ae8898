"""Workflows on a real InvokeAI: `INVOKEAI_TEST_URL=http://127.0.0.1:9090 pytest -m invokeai workflows`.

InvokeAI's own default workflows, imported from its library, run through the app with the peer's tiny models
set in their forms (64 px); the images come back as photos with the workflow's recipe and the seeds its
rand_int node drew. Only our own batches are cancelled at the end (the server is shared).
"""

from __future__ import annotations

import time

import pytest
import requests
from PIL import Image

from generation import follower
from generation.models import CachedModel, GenerationStep
from photos import storage
from testing.real_invokeai import MODULE_MARKS, REAL_URL
from workflows import services

from .conftest import SD15, SD15_LORA, exposed, workflow_json

pytestmark = MODULE_MARKS


def _library_id(name: str) -> str:
    found = [item for item in services.library_list() if item.name == name]
    assert found, f"the InvokeAI at {REAL_URL} has no workflow {name!r}"
    return found[0].workflow_id


def _follow(step_id: int, timeout: float = 600) -> GenerationStep:
    deadline = time.monotonic() + timeout
    while follower.step_follow(step_id=step_id, budget=30) != "finished":
        assert time.monotonic() < deadline, "the step did not finish in time (is the shared InvokeAI busy?)"
    return GenerationStep.objects.get(pk=step_id)


@pytest.mark.parametrize(
    ("name", "slug", "with_lora"),
    [("Text to Image - SD1.5", SD15, False), ("Text to Image - SD1.5, LoRA", SD15_LORA, True)],
)
def test_a_default_workflow_runs_with_tiny_models(real, user, name, slug, with_lora):
    workflow = services.workflow_import_from_library(owner=user, invokeai_workflow_id=_library_id(name))
    sd1 = CachedModel.objects.get(name="tiny-sd1")
    values = {
        exposed(slug, "model"): sd1.key,
        exposed(slug, "width"): 64,
        exposed(slug, "height"): 64,
        exposed(slug, "prompt"): "workflows-test: a tiger cub",
    }
    if with_lora:
        values[exposed(slug, "lora")] = CachedModel.objects.get(name="tiny-sd1-lora").key
        values[exposed(slug, "weight")] = 0.75

    step = services.workflow_run(workflow_id=workflow.pk, owner=user, values=values, runs=2)
    step = _follow(step.pk)

    assert (step.status, step.images_retrieved, step.images_failed) == ("completed", 2, 0), step.error_message
    alternatives = list(step.alternatives.select_related("photo"))
    seeds = set()
    for alternative in alternatives:
        photo = alternative.photo
        assert photo.generation_params["workflow"] == name
        assert photo.generation_params["values"][exposed(slug, "model")]["name"] == "tiny-sd1"
        assert photo.generation_prompt == "workflows-test: a tiger cub"
        with Image.open(storage.absolute(photo.local_storage_path)) as png:
            assert png.size == (64, 64)
        # The seed is the one the item's rand_int node drew (the batch data has none).
        item = requests.get(f"{REAL_URL}/api/v1/queue/default/i/{alternative.item_id}", timeout=30).json()
        results = item["session"]["results"].values()
        drawn = [result["value"] for result in results if result["type"] == "integer_output"]
        assert drawn == [photo.seed]
        seeds.add(photo.seed)
    assert len(seeds) == 2


def test_a_workflow_with_a_removed_node_is_refused_with_its_name(real, user):
    workflow = services.workflow_import_from_library(
        owner=user, invokeai_workflow_id=_library_id("Text to Image -  SD1.5, Control")
    )

    with pytest.raises(Exception) as error:
        services.workflow_run(workflow_id=workflow.pk, owner=user, values={})

    assert getattr(error.value, "code", "") == "workflow_outdated"
    assert "canny_image_processor" in str(error.value) and "InvokeAI's workflow editor" in str(error.value)
    assert not GenerationStep.objects.exists()
    # The fixtures the fake's tests use are the peer's own defaults.
    assert workflow_json(SD15)["id"] == _library_id("Text to Image - SD1.5")


def test_a_batch_over_two_prompts_gives_an_image_of_each(real, user):
    workflow = services.workflow_import_from_library(
        owner=user, invokeai_workflow_id=_library_id("Text to Image - SD1.5")
    )
    prompt = exposed(SD15, "prompt")
    prompts = ["workflows2-test: a red fox", "workflows2-test: a grey wolf"]
    values = {
        exposed(SD15, "model"): CachedModel.objects.get(name="tiny-sd1").key,
        exposed(SD15, "width"): 64,
        exposed(SD15, "height"): 64,
    }

    step = services.workflow_run(workflow_id=workflow.pk, owner=user, values=values, batch={prompt: prompts})
    step = _follow(step.pk)

    assert (step.status, step.images_retrieved, step.images_failed) == ("completed", 2, 0), step.error_message
    node_id, field_name = prompt.split(".")
    made = []
    for alternative in step.alternatives.select_related("photo").order_by("index"):
        photo = alternative.photo
        item = requests.get(f"{REAL_URL}/api/v1/queue/default/i/{alternative.item_id}", timeout=30).json()
        # The prompt InvokeAI substituted for this image is the one its recipe names.
        used = [value["value"] for value in item["field_values"] if value["node_path"] == node_id]
        assert used == [photo.generation_params["values"][prompt]]
        assert item["session"]["graph"]["nodes"][node_id][field_name] == used[0]
        assert photo.generation_prompt == used[0]
        assert photo.generation_params["workflow"] == "Text to Image - SD1.5"
        made.append(used[0])
    assert made == prompts
