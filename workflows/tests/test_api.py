"""`/api/workflows/`: import, form, export, delete, library, and running a workflow as a studio step."""

from __future__ import annotations

import io
import json

import pytest

from albums.models import Album
from generation.models import CachedModel, GenerationStep
from photos.models import Photo
from workflows import services
from workflows.models import Workflow

from .conftest import SD15, SD15_LORA, exposed, workflow_json

pytestmark = pytest.mark.django_db


def _import(api, slug: str = SD15) -> dict:
    answer = api.post("/api/workflows/", {"workflow": workflow_json(slug)}, format="json")
    assert answer.status_code == 201, answer.content
    return answer.json()


def test_a_pasted_workflow_is_stored_with_its_form_typed_by_the_server(api, invokeai):
    body = _import(api, SD15_LORA)

    assert body["name"] == "Text to Image - SD1.5, LoRA"
    assert body["schema_version"] == "3.0.0" and body["source"] == "paste"
    assert body["tags"] == "sd1.5, text to image, lora"
    fields = {field["name"]: field for field in body["fields"]}
    assert [field["name"] for field in body["fields"]] == [
        f"{item['nodeId']}.{item['fieldName']}" for item in workflow_json(SD15_LORA)["exposedFields"]
    ]
    model = fields[exposed(SD15_LORA, "model")]
    assert (model["type"], model["model_types"], model["required"]) == ("model", ["main"], True)
    assert fields[exposed(SD15_LORA, "lora")]["model_types"] == ["lora"]
    assert fields[exposed(SD15_LORA, "weight")]["type"] == "float"
    assert fields[exposed(SD15_LORA, "weight")]["default"] == 1
    assert fields[exposed(SD15_LORA, "prompt")]["type"] == "string"
    width = fields[exposed(SD15_LORA, "width")]
    assert (width["type"], width["multiple_of"], width["default"]) == ("integer", 8, 512)
    assert fields[exposed(SD15_LORA, "board")]["type"] == "board"
    assert body["layout"]["type"] == "container"
    assert [child["field"] for child in body["layout"]["children"]] == list(fields)
    assert body["missing_nodes"] == [] and body["templates_error"] == ""


def test_export_gives_the_file_back_unchanged(api, invokeai):
    text = json.dumps(workflow_json(SD15), indent=3) + "\n"
    upload = io.BytesIO(text.encode())
    upload.name = "my workflow.json"
    created = api.post("/api/workflows/", {"file": upload}, format="multipart")
    assert created.status_code == 201, created.content
    assert created.json()["source"] == "file"

    exported = api.get(f"/api/workflows/{created.json()['id']}/export/")

    assert exported.status_code == 200
    assert exported.content.decode() == text
    assert "workflow-" in exported["Content-Disposition"]


def test_import_from_the_connected_invokeais_library(api, invokeai):
    workflow_id = invokeai.add_workflow(workflow_json(SD15), category="default")

    library = api.get("/api/workflows/library/")
    assert library.status_code == 200
    assert [item["workflow_id"] for item in library.json()] == [workflow_id]

    created = api.post("/api/workflows/", {"invokeai_workflow_id": workflow_id}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["source"] == "library"
    assert created.json()["invokeai_workflow_id"] == workflow_id
    assert created.json()["invokeai_version"] == "6.14.2"

    missing = api.post("/api/workflows/", {"invokeai_workflow_id": "nope"}, format="json")
    assert missing.status_code == 404
    assert Workflow.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"workflow": "not json"}, "not JSON"),
        ({"workflow": [1, 2]}, "not an InvokeAI workflow"),
        ({"workflow": {"nodes": [], "edges": [], "meta": {"version": "1.0.0"}}}, "save it again"),
        ({}, "Give one of"),
        ({"workflow": {}, "invokeai_workflow_id": "x"}, "Give one of"),
    ],
)
def test_what_is_not_a_workflow_is_refused_and_nothing_stored(api, invokeai, body, message):
    answer = api.post("/api/workflows/", body, format="json")

    assert answer.status_code == 400
    assert message in json.dumps(answer.json())
    assert not Workflow.objects.exists()


def test_a_huge_file_is_refused(api, invokeai, monkeypatch):
    monkeypatch.setattr("workflows.services.MAX_DOCUMENT_BYTES", 1000)
    upload = io.BytesIO(b" " * 2000 + json.dumps(workflow_json(SD15)).encode())
    upload.name = "big.json"

    answer = api.post("/api/workflows/", {"file": upload}, format="multipart")

    assert answer.status_code == 400
    assert "larger than" in answer.json()["message"]
    assert not Workflow.objects.exists()


def test_rename_delete_and_another_accounts_workflow(api, invokeai, django_user_model):
    created = _import(api)
    renamed = api.patch(f"/api/workflows/{created['id']}/", {"name": "Mine"}, format="json")
    assert renamed.status_code == 200 and renamed.json()["name"] == "Mine"
    assert [item["name"] for item in api.get("/api/workflows/").json()] == ["Mine"]

    other = django_user_model.objects.create_user("other", password="x" * 12)
    theirs = Workflow.objects.create(owner=other, name="theirs", schema_version="3.0.0", source="paste", document="{}")
    assert api.get(f"/api/workflows/{theirs.pk}/").status_code == 404
    assert api.delete(f"/api/workflows/{theirs.pk}/").status_code == 404

    assert api.delete(f"/api/workflows/{created['id']}/").status_code == 204
    assert Workflow.objects.filter(owner=other).count() == 1 and Workflow.objects.count() == 1


def test_the_form_is_untyped_when_invokeai_does_not_answer(api, invokeai):
    created = _import(api)
    services.node_templates_forget()
    invokeai.refuse_connections()

    body = api.get(f"/api/workflows/{created['id']}/").json()

    assert {field["type"] for field in body["fields"]} == {"unknown"}
    assert "not answering" in body["templates_error"]


# --- running ---


def _values(slug: str, **fields) -> dict:
    return {exposed(slug, name): value for name, value in fields.items()}


def test_a_run_is_a_step_whose_photos_have_the_workflows_recipe(api, invokeai, follow, user):
    created = _import(api, SD15_LORA)
    sd1 = CachedModel.objects.get(name="tiny-sd1")
    lora = CachedModel.objects.get(name="tiny-sd1-lora")
    values = _values(SD15_LORA, model=sd1.key, lora=lora.key, weight=0.5, width=64, height=64, prompt="a tiger cub")

    answer = api.post(f"/api/workflows/{created['id']}/run/", {"values": values, "runs": 2}, format="json")

    assert answer.status_code == 202, answer.content
    step = answer.json()
    assert step["status"] == "running" and step["status_url"] == f"/api/generation/steps/{step['id']}/status"
    sent = invokeai.items[min(invokeai.items)].batch
    assert sent["origin"] == "workflows" and sent["runs"] == 2 and "id" not in sent["workflow"]
    assert sent["graph"]["nodes"][exposed(SD15_LORA, "lora").split(".")[0]]["lora"]["key"] == lora.key

    assert follow(step["id"]) == "finished"

    status = api.get(step["status_url"]).json()
    assert status["status"] == "completed" and len(status["images"]) == 2
    photos = list(Photo.objects.filter(step_alternative__step_id=step["id"]).order_by("seed"))
    assert len(photos) == 2 and all(photo.retrieval_status == "completed" for photo in photos)
    recipe = photos[0].generation_params
    assert recipe["workflow"] == "Text to Image - SD1.5, LoRA" and recipe["workflow_id"] == created["id"]
    assert recipe["values"][exposed(SD15_LORA, "model")] == {"key": sd1.key, "name": "tiny-sd1"}
    assert recipe["values"][exposed(SD15_LORA, "weight")] == 0.5
    assert photos[0].generation_prompt == "a tiger cub"
    # The seeds came from the workflow's rand_int node, read back from each item's results.
    rand_int_results = []
    for item in invokeai.items.values():
        for result in item.session["results"].values():
            if result["type"] == "integer_output":
                rand_int_results.append(result["value"])
    assert sorted(photo.seed for photo in photos) == sorted(rand_int_results)
    assert photos[0].model_name == "tiny-sd1"
    photo_json = api.get(f"/api/photos/{photos[0].pk}/").json()
    assert photo_json["generation_params"]["workflow"] == "Text to Image - SD1.5, LoRA"
    assert photo_json["invoke_id"] == photos[0].invoke_id


def test_a_run_can_be_cancelled_like_any_step(api, invokeai, enqueued):
    created = _import(api)
    sd1 = CachedModel.objects.get(name="tiny-sd1")
    values = _values(SD15, model=sd1.key, width=64, height=64)
    step = api.post(f"/api/workflows/{created['id']}/run/", {"values": values, "runs": 3}, format="json").json()

    cancelled = api.post(f"/api/generation/steps/{step['id']}/cancel/")

    assert cancelled.status_code == 200
    assert GenerationStep.objects.get(pk=step["id"]).cancel_requested_at is not None


def test_a_board_field_set_to_an_album_files_the_images_there(api, invokeai, follow, user):
    created = _import(api)
    album = Album.objects.create(owner=user, name="Tigers")
    sd1 = CachedModel.objects.get(name="tiny-sd1")
    values = _values(SD15, model=sd1.key, width=64, height=64, board=str(album.pk))

    step = api.post(f"/api/workflows/{created['id']}/run/", {"values": values}, format="json").json()
    follow(step["id"])

    assert album.entries.count() == 1
    l2i = exposed(SD15, "board").split(".")[0]
    assert invokeai.items[min(invokeai.items)].batch["graph"]["nodes"][l2i].get("board") is None


@pytest.mark.parametrize(
    ("fields", "code", "message"),
    [
        ({}, "missing_values", "Set these before running"),
        ({"model": "lora"}, "wrong_model_type", "is a lora model; this field takes main models"),
        ({"model": "sdxl"}, "wrong_model_base", "is a sdxl model; this field takes sd-1 or sd-2 models"),
        ({"model": "no-such-key"}, "model_not_found", "no model with key"),
        ({"model": "sd1", "width": 65}, "invalid_parameter", "a multiple of 8"),
        ({"model": "sd1", "width": "wide"}, "invalid_parameter", "needs a number"),
        ({"model": "sd1", "board": "00000000-0000-0000-0000-000000000000"}, "invalid_parameter", "no album"),
    ],
)
def test_bad_values_are_refused_before_anything_is_sent(api, invokeai, fields, code, message):
    created = _import(api)
    models = {
        "sd1": CachedModel.objects.get(name="tiny-sd1").key,
        "sdxl": CachedModel.objects.get(name="tiny-sdxl").key,
        "lora": CachedModel.objects.get(name="tiny-sd1-lora").key,
    }
    values = _values(SD15, **{name: models.get(value, value) for name, value in fields.items()})

    answer = api.post(f"/api/workflows/{created['id']}/run/", {"values": values}, format="json")

    assert answer.status_code == 400, answer.content
    assert answer.json()["code"] == code and message in answer.json()["message"]
    assert not GenerationStep.objects.exists() and not invokeai.items


def test_values_outside_the_form_are_refused(api, invokeai):
    created = _import(api)

    answer = api.post(f"/api/workflows/{created['id']}/run/", {"values": {"x.y": 1}}, format="json")

    assert answer.status_code == 400 and "not a field of this workflow's form" in answer.json()["message"]


def test_a_workflow_with_a_removed_node_type_names_it(api, invokeai):
    workflow = workflow_json(SD15)
    node = next(node for node in workflow["nodes"] if node["data"]["type"] == "rand_int")
    node["data"].update(type="canny_image_processor", label="Canny edges")
    created = api.post("/api/workflows/", {"workflow": workflow}, format="json").json()
    assert created["missing_nodes"] == [
        {"node_id": node["id"], "node_type": "canny_image_processor", "label": "Canny edges"}
    ]

    answer = api.post(f"/api/workflows/{created['id']}/run/", {"values": {}}, format="json")

    assert answer.status_code == 400
    assert answer.json()["code"] == "workflow_outdated"
    assert "Canny edges (canny_image_processor" in answer.json()["message"]
    assert "needs updating in InvokeAI's workflow editor" in answer.json()["message"]
    assert not GenerationStep.objects.exists()
