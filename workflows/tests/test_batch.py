"""A workflow run as a batch over form fields' values (InvokeAI's batch data), and every model and photo
checked again as the batch is sent."""

from __future__ import annotations

import copy
import itertools

import pytest

from generation import services as generation_services
from generation.models import CachedModel, GenerationStep
from photos import services as photo_services
from photos.models import Photo

from .conftest import SD15, exposed, resize_workflow, workflow_json

pytestmark = pytest.mark.django_db


def _import(api, workflow: dict) -> dict:
    answer = api.post("/api/workflows/", {"workflow": workflow}, format="json")
    assert answer.status_code == 201, answer.content
    return answer.json()


def _run(api, workflow_id: int, **body):
    return api.post(f"/api/workflows/{workflow_id}/run/", body, format="json")


def _sd15_values(**fields) -> dict:
    values = {exposed(SD15, "model"): CachedModel.objects.get(name="tiny-sd1").key}
    values.update({exposed(SD15, name): value for name, value in fields.items()})
    return values


def _photos(step_id: int) -> list[Photo]:
    return list(Photo.objects.filter(step_alternative__step_id=step_id).order_by("step_alternative__index"))


def _seeded_sd15() -> dict:
    """Text to Image - SD1.5 with its noise's seed in the form instead of a rand_int node's."""
    workflow = copy.deepcopy(workflow_json(SD15))
    rand_int = next(node for node in workflow["nodes"] if node["data"]["type"] == "rand_int")
    noise = next(node for node in workflow["nodes"] if node["data"]["type"] == "noise")
    workflow["nodes"].remove(rand_int)
    workflow["edges"] = [edge for edge in workflow["edges"] if edge["source"] != rand_int["id"]]
    noise["data"]["inputs"]["seed"]["value"] = 5
    workflow["exposedFields"].append({"nodeId": noise["id"], "fieldName": "seed"})
    return workflow


def test_a_batch_over_two_prompts_makes_an_image_of_each_with_its_own_recipe(api, invokeai, follow):
    created = _import(api, workflow_json(SD15))
    prompt = exposed(SD15, "prompt")
    prompts = ["a tiger cub", "a snow leopard"]

    answer = _run(api, created["id"], values=_sd15_values(width=64, height=64), batch={prompt: prompts})

    assert answer.status_code == 202, answer.content
    sent = invokeai.items[min(invokeai.items)].batch
    node_id, field_name = prompt.split(".")
    assert sent["data"] == [[{"node_path": node_id, "field_name": field_name, "items": prompts}]]
    assert sent["runs"] == 1 and len(invokeai.items) == 2
    assert follow(answer.json()["id"]) == "finished"
    photos = _photos(answer.json()["id"])
    assert [photo.generation_prompt for photo in photos] == prompts
    assert [photo.generation_params["values"][prompt] for photo in photos] == prompts
    for photo in photos:
        assert photo.generation_params["workflow"] == "Text to Image - SD1.5"
        assert photo.generation_params["values"][exposed(SD15, "width")] == 64
        assert photo.generation_params["values"][exposed(SD15, "model")]["name"] == "tiny-sd1"
    step = GenerationStep.objects.get(pk=answer.json()["id"])
    assert step.batch_size == 2 and step.parameters["batch"] == {prompt: prompts}


def test_two_swept_fields_multiply_and_runs_repeat_them(api, invokeai, follow):
    created = _import(api, workflow_json(SD15))
    prompt, width = exposed(SD15, "prompt"), exposed(SD15, "width")

    answer = _run(
        api,
        created["id"],
        values=_sd15_values(height=64),
        batch={prompt: ["a", "b"], width: [64, 128]},
        runs=2,
    )

    assert answer.status_code == 202, answer.content
    assert len(invokeai.items) == 8
    follow(answer.json()["id"])
    photos = _photos(answer.json()["id"])
    made = [(photo.generation_params["values"][prompt], photo.width) for photo in photos]
    # InvokeAI's order: the first field the outer loop, then the whole product again for the second run.
    assert made == list(itertools.product(["a", "b"], [64, 128])) * 2
    assert all(photo.generation_params["values"][width] == photo.width for photo in photos)


def test_a_batch_over_seeds_gives_each_photo_its_seed(api, invokeai, follow):
    workflow = _seeded_sd15()
    created = _import(api, workflow)
    noise = next(node for node in workflow["nodes"] if node["data"]["type"] == "noise")

    answer = _run(api, created["id"], values=_sd15_values(width=64, height=64), batch={f"{noise['id']}.seed": [7, 8]})

    assert answer.status_code == 202, answer.content
    follow(answer.json()["id"])
    photos = _photos(answer.json()["id"])
    assert [photo.seed for photo in photos] == [7, 8]
    assert [photo.generation_params["values"][f"{noise['id']}.seed"] for photo in photos] == [7, 8]


def test_a_batch_over_photos_uploads_each_once_and_records_which(api, invokeai, follow, gallery_photo):
    created = _import(api, resize_workflow())
    first, second = gallery_photo(size=(160, 120)), gallery_photo(size=(120, 160))
    photo_ids = [str(first.pk), str(second.pk), str(first.pk)]

    answer = _run(api, created["id"], batch={"resize.image": photo_ids})

    assert answer.status_code == 202, answer.content
    uploads = [image for image in invokeai.images.values() if image.category == "user"]
    assert len(uploads) == 2
    follow(answer.json()["id"])
    made = _photos(answer.json()["id"])
    assert [photo.generation_params["values"]["resize.image"] for photo in made] == photo_ids


@pytest.mark.parametrize(
    ("batch", "field", "message"),
    [
        ({"x.y": ["a"]}, "x.y", "not a field of this workflow's form"),
        ({"@prompt": "a tiger"}, "@prompt", "needs a list of values"),
        ({"@prompt": []}, "@prompt", "needs a list of values"),
        ({"@prompt": ["a", 3]}, "@prompt", "this needs text. (value 2 of the batch)"),
        ({"@width": [64, 65]}, "@width", "a multiple of 8. (value 2 of the batch)"),
        ({"@width": [64, "wide"]}, "@width", "needs a number"),
        ({"@model": ["sd1"]}, "@model", "a batch goes over text, number, choice or image fields"),
        ({"@board": ["auto"]}, "@board", "this is a board field"),
        ({"@prompt": ["a"] * 101}, "@prompt", "at most 100 values"),
        ({"@prompt": ["a"] * 20, "@width": [64] * 6}, "batch", "would make 120 images; at most 100"),
    ],
)
def test_a_bad_batch_is_refused_naming_the_field(api, invokeai, batch, field, message):
    created = _import(api, workflow_json(SD15))

    def name(key: str) -> str:
        return exposed(SD15, key[1:]) if key.startswith("@") else key

    body = {name(key): items for key, items in batch.items()}
    values = {key: value for key, value in _sd15_values(height=64).items() if key not in body}
    answer = _run(api, created["id"], values=values, batch=body)

    assert answer.status_code == 400, answer.content
    assert message in answer.json()["message"]
    assert answer.json()["details"]["field"] == name(field)
    assert not GenerationStep.objects.exists() and not invokeai.items


@pytest.mark.parametrize(
    ("batch", "message"),
    [(["a", "b"], "batch: Expected a dictionary"), ("a, b", "batch: Expected a dictionary"), ({"x": {}}, "x is not")],
)
def test_a_batch_that_is_not_an_object_of_lists_is_refused(api, invokeai, batch, message):
    created = _import(api, workflow_json(SD15))

    answer = _run(api, created["id"], values=_sd15_values(), batch=batch)

    assert answer.status_code == 400, answer.content
    assert answer.json()["message"].startswith(message)
    assert not GenerationStep.objects.exists()


def test_a_field_is_given_a_value_or_a_batch_not_both(api, invokeai):
    created = _import(api, workflow_json(SD15))

    answer = _run(api, created["id"], values=_sd15_values(width=64), batch={exposed(SD15, "width"): [64, 128]})

    assert answer.status_code == 400 and "not both" in answer.json()["message"]
    assert answer.json()["details"]["field"] == exposed(SD15, "width")


def test_a_field_a_connection_feeds_cannot_be_swept(api, invokeai):
    workflow = copy.deepcopy(workflow_json(SD15))
    noise = next(node for node in workflow["nodes"] if node["data"]["type"] == "noise")
    workflow["exposedFields"].append({"nodeId": noise["id"], "fieldName": "seed"})
    created = _import(api, workflow)

    answer = _run(api, created["id"], values=_sd15_values(), batch={f"{noise['id']}.seed": [1, 2]})

    assert answer.status_code == 400
    assert "a connection in the workflow feeds it" in answer.json()["message"]
    assert answer.json()["details"]["field"] == f"{noise['id']}.seed"


def test_the_run_schema_documents_the_batch_with_an_example(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    run = schema["paths"]["/api/workflows/{id}/run/"]["post"]
    body = run["requestBody"]["content"]["application/json"]
    assert any("batch" in example["value"] for example in body["examples"].values())
    assert "batch" in schema["components"]["schemas"]["WorkflowRunRequest"]["properties"]
    assert "202" in run["responses"]


# --- checked again as the batch is sent ---


def test_a_lora_gone_from_invokeai_by_the_time_of_sending_is_refused_naming_its_field(api, invokeai):
    from .conftest import SD15_LORA

    created = _import(api, workflow_json(SD15_LORA))
    lora = CachedModel.objects.get(name="tiny-sd1-lora")
    values = {
        exposed(SD15_LORA, "model"): CachedModel.objects.get(name="tiny-sd1").key,
        exposed(SD15_LORA, "lora"): lora.key,
        exposed(SD15_LORA, "width"): 64,
        exposed(SD15_LORA, "height"): 64,
    }
    invokeai.uninstall_model("tiny-sd1-lora")  # the cache still has it

    answer = _run(api, created["id"], values=values)

    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == "model_not_installed"
    assert answer.json()["details"]["field"] == exposed(SD15_LORA, "lora")
    assert "no longer installed" in answer.json()["message"]
    assert not invokeai.items
    assert GenerationStep.objects.get().status == "failed"


def test_a_photo_trashed_before_sending_is_refused_naming_its_field(api, invokeai, gallery_photo, user, monkeypatch):
    created = _import(api, resize_workflow())
    photo = gallery_photo(size=(160, 120))
    insert = generation_services._step_insert

    def trash_meanwhile(*args, **kwargs):
        step = insert(*args, **kwargs)
        photo_services.photo_delete(photo_id=photo.pk, owner=user)
        return step

    monkeypatch.setattr(generation_services, "_step_insert", trash_meanwhile)

    answer = _run(api, created["id"], values={"resize.image": str(photo.pk)})

    assert answer.status_code == 400, answer.content
    assert answer.json()["details"]["field"] == "resize.image"
    assert f"no photo {photo.pk}" in answer.json()["message"]
    assert not invokeai.items


def test_a_photo_not_downloaded_yet_is_refused(api, invokeai, gallery_photo):
    created = _import(api, resize_workflow())
    photo = gallery_photo(size=(160, 120))
    Photo.objects.filter(pk=photo.pk).update(retrieval_status="pending")

    answer = _run(api, created["id"], batch={"resize.image": [str(photo.pk)]})

    assert answer.status_code == 400
    assert "not downloaded yet" in answer.json()["message"] and "(value 1 of the batch)" in answer.json()["message"]
    assert answer.json()["details"] == {"field": "resize.image", "index": 0}


def test_items_an_event_reports_finished_are_stored_with_the_workflows_output_and_values(api, invokeai, enqueued):
    """The events listener's path (`step_items_collect`) reads a workflow's own output node, as the poll does."""
    from generation import follower

    created = _import(api, workflow_json(SD15))
    prompt = exposed(SD15, "prompt")
    answer = _run(api, created["id"], values=_sd15_values(width=64, height=64), batch={prompt: ["a", "b"]})
    step = GenerationStep.objects.get(pk=answer.json()["id"])
    invokeai.clock.advance(30)

    assert follower.step_items_collect(step_id=step.pk, item_ids=step.item_ids)

    step.refresh_from_db()
    assert step.status == "completed" and step.images_failed == 0
    assert [photo.generation_params["values"][prompt] for photo in _photos(step.pk)] == ["a", "b"]
