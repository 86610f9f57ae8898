"""Presets: CRUD in the API, validation naming each wrong model, use in a step, a preset whose model went."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from generation import models_cache, services
from generation.models import CachedModel, GenerationStep, Preset
from testing.accounts import other_account
from testing.fake_invokeai import every_type_models

from .conftest import PROMPT

pytestmark = pytest.mark.django_db


@pytest.fixture
def invokeai(use_fake_invokeai, settings, enqueued):
    settings.MODEL_DEFINITIONS = {}
    use_fake_invokeai.models = every_type_models()
    models_cache.models_refresh()
    return use_fake_invokeai


def key(name: str) -> str:
    return CachedModel.objects.get(name=name).key


@pytest.fixture
def body(invokeai) -> dict:
    return {
        "name": "Tiny lighthouse",
        "model_key": key("tiny-sd1"),
        "vae_key": key("tiny-sd1-vae"),
        "loras": [{"key": key("tiny-sd1-lora"), "weight": 0.6}],
        "embeddings": [key("tiny-sd1-ti")],
        "controlnets": [key("tiny-sd1-controlnet")],
        "scheduler": "euler",
        "steps": 3,
        "cfg_scale": 5.5,
        "width": 64,
        "height": 96,
        "clip_skip": 1,
    }


def test_crud(api, body):
    created = api.post("/api/presets/", body, format="json")
    assert created.status_code == 201, created.json()
    preset = created.json()
    assert preset["loras"] == [{"key": key("tiny-sd1-lora"), "weight": 0.6}]
    assert (preset["problems"], preset["refiner"], preset["clip_skip"]) == ([], None, 1)
    assert [p["name"] for p in api.get("/api/presets/").json()] == ["Tiny lighthouse"]

    changed = api.patch(f"/api/presets/{preset['id']}/", {"steps": 4, "loras": []}, format="json").json()
    assert (changed["steps"], changed["loras"], changed["scheduler"]) == (4, [], "euler")
    whole = api.put(f"/api/presets/{preset['id']}", {"name": "Plain", "model_key": key("tiny-sd1")}, format="json")
    # PUT replaces the whole preset: what it leaves out is unset again.
    assert whole.status_code == 200 and (whole.json()["embeddings"], whole.json()["steps"]) == ([], None)
    assert api.get(f"/api/presets/{preset['id']}").json()["name"] == "Plain"

    assert api.post("/api/presets/", {**body, "name": "Plain"}, format="json").json()["code"] == "preset_name_taken"
    assert api.delete(f"/api/presets/{preset['id']}/").status_code == 204
    assert not Preset.objects.exists()


def test_an_sdxl_preset_with_a_refiner(api, invokeai):
    body = {
        "name": "XL",
        "model_key": key("tiny-sdxl"),
        "vae_key": key("tiny-sdxl-vae-fp16-fix"),
        "refiner": {"model_key": key("tiny-sdxl-refiner"), "steps": 2, "start": 0.7},
    }
    created = api.post("/api/presets/", body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["refiner"] == {"model_key": key("tiny-sdxl-refiner"), "steps": 2, "start": 0.7}


def test_validation_names_each_model_of_another_base_or_missing(api, body):
    wrong = {
        **body,
        "vae_key": key("tiny-sdxl-vae-fp16-fix"),
        "loras": [{"key": "gone-key", "weight": 1}, {"key": key("tiny-sd1-ti"), "weight": 1}],
        "controlnets": [key("tiny-flux-vae")],
        "refiner": {"model_key": key("tiny-sdxl-refiner")},
    }
    response = api.post("/api/presets/", wrong, format="json")
    assert response.status_code == 400
    problems = response.json()["details"]["problems"]
    assert problems == [
        "VAE 'tiny-sdxl-vae-fp16-fix' is for SDXL models, not SD 1.x.",
        "ControlNet 'tiny-flux-vae' is a vae model, not a controlnet.",
        "LoRA with key gone-key is not installed in InvokeAI.",
        "LoRA 'tiny-sd1-ti' is an embedding model, not a lora.",
        "A refiner only follows an SDXL model; 'tiny-sd1' is SD 1.x.",
    ]
    assert not Preset.objects.exists()
    missing = api.post("/api/presets/", {**body, "model_key": "nope"}, format="json").json()
    assert missing["details"]["problems"] == ["Main model with key nope is not installed in InvokeAI."]
    lora_main = api.post("/api/presets/", {**body, "model_key": key("tiny-sd1-lora")}, format="json").json()
    assert lora_main["details"]["problems"] == ["Main model 'tiny-sd1-lora' is a lora model, not a main."]
    for field, value in (("width", 65), ("scheduler", "nope"), ("steps", 0), ("clip_skip", 99)):
        assert api.post("/api/presets/", {**body, field: value}, format="json").status_code == 400, field
    refiner_on_sdxl = {"name": "r", "model_key": key("tiny-sdxl"), "refiner": {"model_key": key("tiny-sd2")}}
    assert api.post("/api/presets/", refiner_on_sdxl, format="json").json()["details"]["problems"] == [
        "Refiner 'tiny-sd2' is not an SDXL refiner."
    ]


def test_presets_are_their_owners(api, body):
    preset_id = api.post("/api/presets/", body, format="json").json()["id"]
    guest = APIClient()
    guest.force_authenticate(other_account())
    assert guest.get("/api/presets/").json() == []
    assert guest.get(f"/api/presets/{preset_id}/").status_code == 404
    assert guest.delete(f"/api/presets/{preset_id}/").status_code == 404


def graph_of(invokeai, step: GenerationStep) -> dict:
    return invokeai.items[step.item_ids[0]].batch["graph"]


def nodes_of(graph: dict, node_type: str) -> list[dict]:
    return [node for node in graph["nodes"].values() if node["type"] == node_type]


def test_a_step_from_a_preset_takes_its_defaults_and_models_into_the_graph(api, body, invokeai, gallery_photo):
    preset = api.post("/api/presets/", body, format="json").json()
    session = api.post("/api/generation/sessions/", {}, format="json").json()
    photo = gallery_photo(size=(128, 128), plain=True)
    step = api.post(
        f"/api/generation/sessions/{session['id']}/steps/",
        # The preset's ControlNet at place 0, with the control image this step gives it.
        {"prompt": PROMPT, "preset_id": preset["id"], "steps": 2, "controlnets": [{"photo_id": str(photo.pk)}]},
        format="json",
    )
    assert step.status_code == 202, step.json()
    recorded = GenerationStep.objects.get()
    shown = api.get(f"/api/generation/steps/{recorded.pk}/").json()
    assert recorded.preset_id == preset["id"] and shown["preset_id"] == preset["id"]
    params = recorded.parameters
    assert (params["steps"], params["width"], params["height"], params["scheduler"]) == (2, 64, 96, "euler")
    assert (params["cfg_scale"], params["clip_skip"], params["vae_key"]) == (5.5, 1, key("tiny-sd1-vae"))
    assert (params["preset_name"], recorded.model_name) == ("Tiny lighthouse", "tiny-sd1")
    # What InvokeAI was sent: the preset's LoRA at its weight, its VAE, its ControlNet over the step's image.
    graph = graph_of(invokeai, recorded)
    assert [(n["lora"]["key"], n["weight"]) for n in nodes_of(graph, "lora_selector")] == [(key("tiny-sd1-lora"), 0.6)]
    assert nodes_of(graph, "vae_loader")[0]["vae_model"]["key"] == key("tiny-sd1-vae")
    assert graph["nodes"]["clip_skip"]["skipped_layers"] == 1
    (control,) = nodes_of(graph, "controlnet")
    assert control["control_model"]["key"] == key("tiny-sd1-controlnet")
    assert invokeai.images[control["image"]["image_name"]].category == "control"
    assert params["controlnets"][0]["photo_id"] == str(photo.pk)


def test_a_presets_controlnet_without_its_control_image_is_a_400_naming_it(api, body, invokeai):
    preset = api.post("/api/presets/", body, format="json").json()
    session = api.post("/api/generation/sessions/", {}, format="json").json()
    refused = api.post(
        f"/api/generation/sessions/{session['id']}/steps/",
        {"prompt": PROMPT, "preset_id": preset["id"]},
        format="json",
    )
    assert refused.status_code == 400
    assert refused.json()["details"]["field"] == "controlnets[0].photo_id"
    assert "Preset 'Tiny lighthouse' uses ControlNet 'tiny-sd1-controlnet' here." in refused.json()["message"]
    # Said as none, the step runs without it.
    none = api.post(
        f"/api/generation/sessions/{session['id']}/steps/",
        {"prompt": PROMPT, "preset_id": preset["id"], "controlnets": []},
        format="json",
    )
    assert none.status_code == 202, none.json()
    assert not nodes_of(graph_of(invokeai, GenerationStep.objects.get()), "controlnet")


def test_an_sdxl_step_from_a_preset_runs_the_refiner(api, invokeai, user):
    preset = api.post(
        "/api/presets/",
        {"name": "XL", "model_key": key("tiny-sdxl"), "refiner": {"model_key": key("tiny-sdxl-refiner"), "steps": 2}},
        format="json",
    ).json()
    session = services.session_create(owner=user)
    step = services.step_create(
        session_id=session.pk,
        owner=user,
        request=services.StepRequest(prompt=PROMPT, model_key="", preset_id=preset["id"], width=64, height=64, steps=2),
    )
    assert step.parameters["refiner"]["model_name"] == "tiny-sdxl-refiner"
    assert step.status == "running"
    graph = graph_of(invokeai, step)
    assert nodes_of(graph, "sdxl_refiner_model_loader")[0]["model"]["key"] == key("tiny-sdxl-refiner")
    assert graph["nodes"]["refiner_denoise"]["steps"] == 2


def test_choosing_a_preset_in_the_studio_fills_its_models_and_the_form_sends_them(
    client, user, body, api, invokeai, gallery_photo
):
    preset = api.post("/api/presets/", body, format="json").json()
    client.force_login(user)
    html = client.get("/studio/composer-preset/", {"preset_id": preset["id"], "prompt": PROMPT}).content.decode()
    lora, control = key("tiny-sd1-lora"), key("tiny-sd1-controlnet")
    assert f'name="lora" value="{lora}" checked' in html and f'name="lora_weight_{lora}" value="0.6"' in html
    assert f'<option value="{control}" selected>' in html and 'name="clip_skip" value="1"' in html
    # The person gives the slot its control image, and generates: the preset's models reach the graph.
    photo = gallery_photo(size=(128, 128), plain=True)
    posted = {
        "preset_id": preset["id"],
        "model_key": key("tiny-sd1"),
        "prompt": PROMPT,
        "mode": "txt2img",
        "seed_mode": "random",
        "batch_size": 1,
        "width": 64,
        "height": 96,
        "steps": 2,
        "vae_key": key("tiny-sd1-vae"),
        "clip_skip": 1,
        "lora": lora,
        f"lora_weight_{lora}": "0.6",
        "controlnet_key": control,
        "control_photo_id": str(photo.pk),
    }
    assert client.post("/studio/new/", posted).status_code == 302
    graph = graph_of(invokeai, GenerationStep.objects.get())
    assert [n["weight"] for n in nodes_of(graph, "lora_selector")] == [0.6]
    assert nodes_of(graph, "controlnet")[0]["control_model"]["key"] == control


def test_a_preset_whose_model_disappeared_says_so(api, body, invokeai, user):
    preset = api.post("/api/presets/", body, format="json").json()
    invokeai.uninstall_model("tiny-sd1-lora")
    models_cache.models_refresh()
    listed = api.get(f"/api/presets/{preset['id']}/").json()
    assert listed["problems"] == ["LoRA 'tiny-sd1-lora' is not installed in InvokeAI."]
    session = api.post("/api/generation/sessions/", {}, format="json").json()
    refused = api.post(
        f"/api/generation/sessions/{session['id']}/steps/", {"prompt": PROMPT, "preset_id": preset["id"]}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "preset_unusable"
    assert "Preset 'Tiny lighthouse' cannot be used: LoRA 'tiny-sd1-lora' is not installed" in refused.json()["message"]
    assert not GenerationStep.objects.exists()


def test_a_step_needs_a_model_or_a_preset(api, invokeai):
    session = api.post("/api/generation/sessions/", {}, format="json").json()
    refused = api.post(f"/api/generation/sessions/{session['id']}/steps/", {"prompt": PROMPT}, format="json")
    assert refused.status_code == 400 and "Choose a model (or a preset)" in refused.json()["message"]


def test_admin_lists_presets(owner_client, body, api):
    api.post("/api/presets/", body, format="json")
    page = owner_client.get("/admin/generation/preset/")
    assert page.status_code == 200 and b"Tiny lighthouse" in page.content


def test_listing_presets_takes_the_same_queries_however_many(api, body, django_assert_max_num_queries):
    for index in range(6):
        api.post("/api/presets/", {**body, "name": f"Preset {index}"}, format="json")
    with django_assert_max_num_queries(4):
        listed = api.get("/api/presets/").json()
    assert len(listed) == 6 and all(preset["problems"] == [] for preset in listed)


def test_keys_and_names_no_column_can_hold_are_refused(api, body):
    for change in ({"model_key": "\x00k"}, {"loras": [{"key": "x" * 65, "weight": 1}]}, {"name": "a\x00b"}):
        response = api.post("/api/presets/", {**body, **change}, format="json")
        assert response.status_code == 400, change
    assert not Preset.objects.exists()


def test_choosing_a_preset_in_the_studio_fills_its_embeddings_into_the_prompt(client, user, body, api, invokeai):
    preset = api.post("/api/presets/", body, format="json").json()
    client.force_login(user)

    def prompt_after(typed: str) -> str:
        html = client.get("/studio/composer-preset/", {"preset_id": preset["id"], "prompt": typed}).content.decode()
        return html.split('name="prompt"', 1)[1].split(">", 1)[1].split("</textarea>", 1)[0]

    # InvokeAI applies an embedding only where its <name> is in the prompt: the preset's joins what was typed, once.
    assert prompt_after(PROMPT) == f"{PROMPT} &lt;tiny-sd1-ti&gt;"
    assert prompt_after(f"<tiny-sd1-ti> {PROMPT}") == f"&lt;tiny-sd1-ti&gt; {PROMPT}"
    assert prompt_after("") == "&lt;tiny-sd1-ti&gt;"
