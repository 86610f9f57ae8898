"""The studio controls in a step's body (LoRAs, embeddings, refiner, clip skip, seamless, ControlNets) against
the fake InvokeAI: what reaches InvokeAI's graph, what the step records, and the 400 naming each wrong field."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from generation import models_cache, services
from generation.models import CachedModel, GenerationStep
from photos import storage
from photos.models import Photo
from testing import fake_invokeai as fake

from .conftest import PROMPT, step_request

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _every_model(invokeai):
    """The peer's list: a LoRA, an embedding, a ControlNet, SD2, the SDXL refiner and FLUX with its parts."""
    invokeai.models = fake.recorded_models()
    models_cache.models_refresh()


def model(name: str) -> CachedModel:
    return CachedModel.objects.get(name=name, available=True)


@pytest.fixture
def session_id(api, invokeai) -> int:
    return api.post("/api/generation/sessions/", {"title": "Controls"}, format="json").json()["id"]


def post(api, session_id: int, body: dict):
    return api.post(f"/api/generation/sessions/{session_id}/steps/", body, format="json")


def graph_of(invokeai, step_id: int) -> dict:
    step = GenerationStep.objects.get(pk=step_id)
    return invokeai.items[step.item_ids[0]].batch["graph"]


def of_type(graph: dict, node_type: str) -> list[dict]:
    return [node for node in graph["nodes"].values() if node["type"] == node_type]


def base_body(name: str = "tiny-sd1", **extra) -> dict:
    return {"prompt": PROMPT, "model_key": model(name).key, "width": 64, "height": 64, "steps": 2, **extra}


def test_loras_reach_the_graph_the_step_the_photos_recipe_and_core_metadata(api, session_id, invokeai, follow):
    lora = model("tiny-sd1-lora")
    response = post(api, session_id, base_body(loras=[{"key": lora.key, "weight": 0.5}], batch_size=1))
    assert response.status_code == 202, response.json()
    graph = graph_of(invokeai, response.json()["id"])
    assert [node["weight"] for node in of_type(graph, "lora_selector")] == [0.5]
    assert of_type(graph, "core_metadata")[0]["loras"] == [{"model": lora.identifier.as_field(), "weight": 0.5}]
    step = GenerationStep.objects.get(pk=response.json()["id"])
    assert step.parameters["loras"] == [{"key": lora.key, "name": "tiny-sd1-lora", "weight": 0.5}]
    follow(step.pk)
    photo = step.alternatives.get().photo
    assert photo.generation_params["loras"] == step.parameters["loras"]


def test_a_lora_without_a_weight_takes_invokeais_default_or_the_uis(invokeai, session, user):
    lora = model("tiny-sd1-lora")
    request = step_request(model("tiny-sd1"), loras=({"key": lora.key},))
    # The recorded LoRA has no default weight: the UI's 0.75 then.
    assert (
        services.step_create(session_id=session.pk, owner=user, request=request).parameters["loras"][0]["weight"]
        == 0.75
    )
    CachedModel.objects.filter(pk=lora.pk).update(default_settings={"weight": 0.4})
    step = services.step_create(session_id=session.pk, owner=user, request=request)
    assert step.parameters["loras"][0]["weight"] == 0.4


BAD = {
    "a LoRA of another base": (
        "tiny-sdxl",
        lambda: {"loras": [{"key": model("tiny-sd1-lora").key, "weight": 1}]},
        "loras[0]",
    ),
    "a LoRA that is not installed": ("tiny-sd1", lambda: {"loras": [{"key": "nope"}]}, "loras[0]"),
    "FLUX with a negative prompt": ("tiny-flux-schnell", lambda: {"negative_prompt": "blurry"}, "negative_prompt"),
    "FLUX off the multiple of 16": ("tiny-flux-schnell", lambda: {"width": 72}, "width"),
    "a ControlNet without an image": (
        "tiny-sd1",
        lambda: {"controlnets": [{"key": model("tiny-sd1-controlnet").key}]},
        "controlnets[0].photo_id",
    ),
    "a refiner on SD 1.5": (
        "tiny-sd1",
        lambda: {"refiner": {"key": model("tiny-sdxl-refiner").key}},
        "refiner",
    ),
    "clip skip on SDXL": ("tiny-sdxl", lambda: {"clip_skip": 2}, "clip_skip"),
    "seamless on FLUX": ("tiny-flux-schnell", lambda: {"seamless": {"x": True}}, "seamless"),
}


@pytest.mark.parametrize("name,extra,field", BAD.values(), ids=BAD.keys())
def test_an_incompatible_choice_is_a_400_naming_the_field_and_records_nothing(
    api, session_id, invokeai, name, extra, field
):
    response = post(api, session_id, base_body(name, **extra()))
    assert response.status_code == 400, response.json()
    assert response.json()["details"]["field"] == field, response.json()
    assert not GenerationStep.objects.exists()


def test_an_unknown_embedding_trigger_is_a_warning_a_known_one_is_not(api, session_id, invokeai):
    response = post(api, session_id, base_body(prompt="a cat, <tiny-sd1-ti>, <no-such-ti>"))
    assert response.status_code == 202, response.json()
    assert response.json()["warnings"] == [
        "<no-such-ti> matches no installed sd-1 embedding: InvokeAI would read it as plain text."
    ]
    assert GenerationStep.objects.get().parameters["warnings"] == response.json()["warnings"]
    # An embedding of another base does not count.
    assert services.embedding_warnings(prompt="<tiny-sd1-ti>", negative_prompt="", base="sdxl")


def test_sdxl_refiner_from_the_body_is_built_and_recorded(api, session_id, invokeai):
    refiner = model("tiny-sdxl-refiner")
    chosen = {
        "key": refiner.key,
        "start": 0.7,
        "steps": 3,
        "cfg_scale": 5,
        "scheduler": "euler",
        "aesthetic_score": 7,
        "negative_aesthetic_score": 2,
    }
    response = post(api, session_id, base_body("tiny-sdxl", refiner=chosen))
    assert response.status_code == 202, response.json()
    graph = graph_of(invokeai, response.json()["id"])
    assert graph["nodes"]["refiner_denoise"]["denoising_start"] == 0.7
    assert sorted(node["aesthetic_score"] for node in of_type(graph, "sdxl_refiner_compel_prompt")) == [2, 7]
    recorded = GenerationStep.objects.get().parameters["refiner"]
    assert {name: recorded[name] for name in chosen} == chosen


def test_clip_skip_and_seamless_on_sd2(api, session_id, invokeai):
    response = post(api, session_id, base_body("tiny-sd2", clip_skip=1, seamless={"x": True, "y": True}))
    assert response.status_code == 202, response.json()
    graph = graph_of(invokeai, response.json()["id"])
    assert graph["nodes"]["clip_skip"]["skipped_layers"] == 1
    assert (graph["nodes"]["seamless"]["seamless_x"], graph["nodes"]["seamless"]["seamless_y"]) == (True, True)
    assert GenerationStep.objects.get().parameters["seamless"] == {"x": True, "y": True}


def test_a_controlnet_uploads_its_photo_as_a_control_image_under_2048_px(api, session_id, invokeai, gallery_photo):
    photo = gallery_photo(size=(3000, 1500), plain=True)
    control = model("tiny-sd1-controlnet")
    body = base_body(
        controlnets=[
            {"key": control.key, "photo_id": str(photo.pk), "preprocessor": "canny_edge_detection", "weight": 0.8}
        ]
    )
    response = post(api, session_id, body)
    assert response.status_code == 202, response.json()
    graph = graph_of(invokeai, response.json()["id"])
    processor = of_type(graph, "canny_edge_detection")[0]
    uploaded = invokeai.images[processor["image"]["image_name"]]
    assert (uploaded.category, uploaded.width, uploaded.height) == ("control", 2048, 1024)
    assert of_type(graph, "controlnet")[0]["control_weight"] == 0.8
    recorded = GenerationStep.objects.get().parameters["controlnets"][0]
    assert (recorded["photo_id"], recorded["preprocessor"], recorded["weight"]) == (
        str(photo.pk),
        "canny_edge_detection",
        0.8,
    )


def test_a_small_control_image_is_not_enlarged(invokeai, gallery_photo):
    from generation import inputs

    photo = gallery_photo(size=(300, 200), plain=True)
    with Image.open(io.BytesIO(inputs.control_image(photo=photo))) as image:
        assert image.size == (300, 200)
    assert storage.exists(photo.local_storage_path)


def test_reuse_brings_back_every_control(invokeai, session, user, gallery_photo):
    photo = gallery_photo(size=(128, 128), plain=True)
    request = step_request(
        model("tiny-sd1"),
        loras=({"key": model("tiny-sd1-lora").key, "weight": 0.3},),
        clip_skip=1,
        seamless={"x": True, "y": False},
        controlnets=({"key": model("tiny-sd1-controlnet").key, "photo_id": str(photo.pk), "end": 0.5},),
    )
    step = services.step_create(session_id=session.pk, owner=user, request=request)
    again = services.step_request_from(step=step, variation="reuse_seed")
    assert again.loras == ({"key": model("tiny-sd1-lora").key, "weight": 0.3},)
    assert (again.clip_skip, again.seamless) == (1, {"x": True, "y": False})
    assert again.controlnets[0]["photo_id"] == str(photo.pk) and again.controlnets[0]["end"] == 0.5
    second = services.step_create(session_id=session.pk, owner=user, request=again)
    assert {k: v for k, v in second.parameters.items() if k != "seed"} == {
        k: v for k, v in step.parameters.items() if k != "seed"
    }


def test_an_outpaint_sends_the_padded_canvas_its_mask_and_the_original(api, session_id, invokeai, gallery_photo):
    photo = gallery_photo(size=(128, 128), plain=True, color=(200, 10, 10))
    body = base_body(mode="outpaint", init_photo_id=str(photo.pk), outpaint={"right": 64, "infill": "cv2"})
    body.pop("width"), body.pop("height")
    response = post(api, session_id, body)
    assert response.status_code == 202, response.json()
    graph = graph_of(invokeai, response.json()["id"])
    padded = invokeai.images[graph["nodes"]["infill"]["image"]["image_name"]]
    original = invokeai.images[graph["nodes"]["output"]["image"]["image_name"]]
    mask = invokeai.images[graph["nodes"]["gradient_mask"]["mask"]["image_name"]]
    assert (padded.width, padded.height, original.width, original.height) == (192, 128, 128, 128)
    with Image.open(io.BytesIO(padded.png)) as canvas:
        assert canvas.getpixel((10, 10)) == (200, 10, 10, 255) and canvas.getpixel((150, 10))[3] == 0
    with Image.open(io.BytesIO(mask.png)) as painted:
        # InvokeAI's polarity: white keeps (the original), black regenerates (the new area).
        assert (painted.getpixel((10, 10)), painted.getpixel((150, 10))) == (255, 0)
    step = GenerationStep.objects.get()
    assert step.parameters["outpaint"] == {"left": 0, "right": 64, "top": 0, "bottom": 0, "infill": "cv2"}
    assert (step.parameters["width"], step.parameters["height"]) == (192, 128)


def test_an_outpaint_rounds_the_canvas_up_to_the_bases_multiple_on_the_extended_side(
    invokeai, session, user, gallery_photo
):
    photo = gallery_photo(size=(100, 120), plain=True)
    request = step_request(
        model("tiny-flux-schnell"), negative_prompt="", mode="outpaint", init_photo_id=photo.pk, outpaint={"left": 30}
    )
    step = services.step_create(session_id=session.pk, owner=user, request=request)
    # 100 + 30 -> 144 (FLUX: multiples of 16), the 14 px more on the left; 120 -> 128, on the bottom.
    assert step.parameters["outpaint"] == {"left": 44, "right": 0, "top": 0, "bottom": 8, "infill": "tile"}
    assert (step.parameters["width"], step.parameters["height"]) == (144, 128)


@pytest.mark.parametrize(
    ("size", "ratio", "name", "sides", "canvas"),
    [
        # 128x128 to 16:9: 228 px wide, rounded to 224 (8s), 48 on each side.
        ((128, 128), "16:9", "tiny-sd1", {"left": 48, "right": 48, "top": 0, "bottom": 0}, (224, 128)),
        ((128, 128), "9:16", "tiny-sd1", {"left": 0, "right": 0, "top": 48, "bottom": 48}, (128, 224)),
        # 200x100 is 2:1; 1:1 heightens it: 200 wide, 200 high, 50 above and below.
        ((200, 100), "1:1", "tiny-sd1", {"left": 0, "right": 0, "top": 50, "bottom": 50}, (200, 200)),
        # 100x120 to 4:3 on FLUX (16s): 128 high (120 rounded up), 128 x 4/3 = 170.7 wide, rounded to 176.
        ((100, 120), "4:3", "tiny-flux-schnell", {"left": 38, "right": 38, "top": 4, "bottom": 4}, (176, 128)),
    ],
)
def test_an_outpaint_to_an_aspect_ratio_pads_the_photo_evenly_in_the_bases_multiple(
    invokeai, session, user, gallery_photo, size, ratio, name, sides, canvas
):
    photo = gallery_photo(size=size, plain=True)
    negative = "" if name.startswith("tiny-flux") else "blurry"
    request = step_request(
        model(name),
        negative_prompt=negative,
        mode="outpaint",
        init_photo_id=photo.pk,
        outpaint={"aspect_ratio": ratio, "infill": "color"},
    )
    step = services.step_create(session_id=session.pk, owner=user, request=request)
    assert step.parameters["outpaint"] == {**sides, "infill": "color", "aspect_ratio": ratio}
    assert (step.parameters["width"], step.parameters["height"]) == canvas
    # Reuse asks for the ratio again, so another photo is brought to the same shape.
    again = services.step_request_from(step=step, variation="remix")
    assert again.outpaint == {"aspect_ratio": ratio, "infill": "color"}


@pytest.mark.parametrize(
    ("outpaint", "message"),
    [
        ({"aspect_ratio": "wide"}, "width:height in whole numbers"),
        ({"aspect_ratio": "16:0"}, "width:height in whole numbers"),
        ({"aspect_ratio": "10:1"}, "between 1:4 and 4:1"),
        ({"aspect_ratio": "1:1"}, "already is 1:1"),
        ({"aspect_ratio": "16:9", "left": 8}, "not both"),
        ({"aspect_ratio": "4:1"}, "more than 1024 px"),
    ],
)
def test_a_bad_aspect_ratio_is_a_400_naming_the_field(api, session_id, invokeai, gallery_photo, outpaint, message):
    photo = (
        gallery_photo(size=(1000, 1000), plain=True)
        if outpaint["aspect_ratio"] == "4:1"
        else gallery_photo(size=(128, 128), plain=True)
    )
    body = base_body(mode="outpaint", init_photo_id=str(photo.pk), outpaint=outpaint)
    response = post(api, session_id, body)
    assert response.status_code == 400, response.json()
    assert response.json()["details"]["field"] == "outpaint.aspect_ratio"
    assert message in response.json()["message"]
    assert not GenerationStep.objects.exists()


def test_the_openapi_schema_documents_the_aspect_ratio_with_an_example(api):
    schema = api.get("/api/schema", HTTP_ACCEPT="application/json").json()
    field = schema["components"]["schemas"]["StepOutpaintRequest"]["properties"]["aspect_ratio"]
    assert "16:9" in field["description"]
    examples = schema["paths"]["/api/generation/sessions/{id}/steps/"]["post"]["requestBody"]["content"][
        "application/json"
    ]["examples"]
    assert any(example["value"].get("outpaint", {}).get("aspect_ratio") == "16:9" for example in examples.values())


def test_an_outpaint_without_a_side_is_a_400(api, session_id, invokeai, gallery_photo):
    photo = gallery_photo(size=(128, 128), plain=True)
    response = post(api, session_id, base_body(mode="outpaint", init_photo_id=str(photo.pk), outpaint={}))
    assert response.status_code == 400 and response.json()["details"]["field"] == "outpaint", response.json()


def test_an_upscale_is_a_step_of_its_own(api, session_id, invokeai, gallery_photo):
    invokeai.models = fake.every_type_models()
    models_cache.models_refresh()
    upscaler = CachedModel.objects.filter(type="spandrel_image_to_image", available=True).first()
    photo = gallery_photo(size=(120, 100), plain=True)
    response = post(api, session_id, {"mode": "upscale", "init_photo_id": str(photo.pk), "upscaler_key": upscaler.key})
    assert response.status_code == 202, response.json()
    graph = graph_of(invokeai, response.json()["id"])
    assert [node["type"] for node in graph["nodes"].values()] == ["spandrel_image_to_image"]
    step = GenerationStep.objects.get()
    assert (step.model_key, step.parameters["upscaler_name"]) == (upscaler.key, upscaler.name)
    missing = post(api, session_id, {"mode": "upscale", "init_photo_id": str(photo.pk)})
    assert missing.status_code == 400 and "upscaler_key" in str(missing.json())


def test_reuse_in_the_composer_and_a_new_model_of_the_same_base_bring_the_controls_back(
    client, user, invokeai, session, gallery_photo
):
    client.force_login(user)
    photo = gallery_photo(size=(128, 128), plain=True)
    lora = model("tiny-sd1-lora")
    control = model("tiny-sd1-controlnet")
    request = step_request(
        model("tiny-sd1"),
        loras=({"key": lora.key, "weight": 0.3},),
        clip_skip=2,
        controlnets=({"key": control.key, "photo_id": str(photo.pk), "preprocessor": "content_shuffle"},),
    )
    step = services.step_create(session_id=session.pk, owner=user, request=request)
    html = client.get(f"/studio/steps/{step.pk}/composer/").content.decode()
    assert f'name="lora" value="{lora.key}" checked' in html
    assert f'name="lora_weight_{lora.key}" value="0.3"' in html
    assert '<option value="content_shuffle" selected>' in html
    assert 'name="clip_skip" value="2"' in html
    # Generating from the form remembers them for SD 1.x: choosing the model again brings them back.
    posted = client.post(
        f"/studio/{session.pk}/generate/",
        {
            "model_key": model("tiny-sd1").key,
            "prompt": "again",
            "mode": "txt2img",
            "seed_mode": "random",
            "batch_size": 1,
            "width": 64,
            "height": 64,
            "lora": lora.key,
            f"lora_weight_{lora.key}": "0.9",
        },
    )
    assert posted.status_code == 200
    latest = GenerationStep.objects.order_by("-pk").first()
    assert latest.parameters["loras"][0]["weight"] == 0.9
    fields = client.get(f"/studio/model-fields/?model_key={model('tiny-sd1').key}").content.decode()
    assert f'name="lora_weight_{lora.key}" value="0.9"' in fields
    sdxl = client.get(f"/studio/model-fields/?model_key={model('tiny-sdxl').key}").content.decode()
    assert "controls-refiner" in sdxl and "controls-controlnet" not in sdxl and 'name="clip_skip"' not in sdxl


def test_a_preprocessors_image_is_kept_once_as_a_control_photo_linked_from_the_step_and_recipes(
    api, session_id, invokeai, gallery_photo, follow, user
):
    photo = gallery_photo(size=(128, 128), plain=True)
    control, plain = model("tiny-sd1-controlnet"), model("tiny-sd1-controlnet")
    body = base_body(
        batch_size=2,
        controlnets=[
            {"key": control.key, "photo_id": str(photo.pk), "preprocessor": "canny_edge_detection"},
            {"key": plain.key, "photo_id": str(photo.pk)},
        ],
    )
    response = post(api, session_id, body)
    assert response.status_code == 202, response.json()
    follow(response.json()["id"])
    step = GenerationStep.objects.get()
    assert step.status == "completed"
    processed = Photo.objects.get(image_category="control")
    first = invokeai.items[step.item_ids[0]].session
    made = next(
        result["image"]["image_name"]
        for exec_id, result in first["results"].items()
        if first["prepared_source_mapping"][exec_id] == "preprocessor_1"
    )
    assert (processed.invoke_id, processed.owner, processed.source_image_id) == (made, user, photo.pk)
    assert processed.is_available and processed.generation_params["preprocessor"] == "canny_edge_detection"
    controls = step.parameters["controlnets"]
    assert controls[0]["processed_photo_id"] == str(processed.pk)
    # No preprocessor: the control image is used as it is, nothing more to keep.
    assert "processed_photo_id" not in controls[1]
    for alternative in step.alternatives.all():
        assert alternative.photo.generation_params["controlnets"] == controls
    assert api.get(f"/api/generation/steps/{step.pk}").json()["parameters"]["controlnets"] == controls


def test_the_processed_image_shows_in_the_step_panel_and_the_lightbox(client, invokeai, gallery_photo, follow, user):
    photo = gallery_photo(size=(128, 128), plain=True)
    session = services.session_create(owner=user)
    controls = ({"key": model("tiny-sd1-controlnet").key, "photo_id": str(photo.pk), "preprocessor": "color_map"},)
    step = services.step_create(
        session_id=session.pk, owner=user, request=step_request(model("tiny-sd1"), batch_size=1, controlnets=controls)
    )
    follow(step.pk)
    processed = Photo.objects.get(image_category="control")
    client.force_login(user)
    panel = client.get(f"/studio/steps/{step.pk}/").content.decode()
    assert f"/photos/{processed.pk}/" in panel and "color_map" in panel
    lightbox = client.get(f"/photos/{step.alternatives.get().photo_id}/").content.decode()
    assert f"/photos/{processed.pk}/" in lightbox and "tiny-sd1-controlnet" in lightbox


def test_a_processed_image_that_cannot_be_downloaded_leaves_the_images_and_is_tried_again(
    invokeai, gallery_photo, follow, user, session
):
    photo = gallery_photo(size=(128, 128), plain=True)
    controls = ({"key": model("tiny-sd1-controlnet").key, "photo_id": str(photo.pk), "preprocessor": "color_map"},)
    step = services.step_create(
        session_id=session.pk, owner=user, request=step_request(model("tiny-sd1"), batch_size=2, controlnets=controls)
    )
    # The first item's processed image fails to download; the second item's try keeps it.
    invokeai.fail_requests(r"^/api/v1/images/i/.+/full$", status=500, times=1)
    follow(step.pk)
    step.refresh_from_db()
    assert (step.status, step.images_retrieved) == ("completed", 2)
    assert step.parameters["controlnets"][0]["processed_photo_id"]
    assert Photo.objects.filter(image_category="control").count() == 1


RECORDED_FAILURE = (
    Path(__file__).parents[2] / "backends/tests/fixtures/recorded/preprocessor_download_failed.queue_item.json"
)


def test_a_failing_preprocessor_shows_invokeais_reason_in_one_line_and_keeps_the_traceback(
    client, invokeai, gallery_photo, follow, user, session
):
    """dw_openpose on the offline peer: InvokeAI's error_message is the whole traceback of the model download."""
    recorded = json.loads(RECORDED_FAILURE.read_text())
    invokeai.fail_items(
        error_type=recorded["error_type"],
        error_message=recorded["error_message"],
        error_traceback=recorded["error_traceback"],
    )
    photo = gallery_photo(size=(128, 128), plain=True)
    controls = (
        {"key": model("tiny-sd1-controlnet").key, "photo_id": str(photo.pk), "preprocessor": "dw_openpose_detection"},
    )
    step = services.step_create(
        session_id=session.pk, owner=user, request=step_request(model("tiny-sd1"), batch_size=1, controlnets=controls)
    )
    follow(step.pk)
    step.refresh_from_db()
    assert step.status == "failed"
    reason = step.item_results[str(step.item_ids[0])]["error"]
    assert reason.startswith("ConnectionError: _GuardedHTTPSConnectionPool(host='huggingface.co', port=443)")
    assert "Traceback" not in reason and "\n" not in reason and len(reason) <= 400
    assert step.error_message == f"1 of 1 images failed: {reason}"
    assert step.item_results[str(step.item_ids[0])]["traceback"] == recorded["error_traceback"]
    client.force_login(user)
    panel = client.get(f"/studio/steps/{step.pk}/").content.decode()
    assert "InvokeAI's traceback" in panel and "_do_download" in panel


@pytest.mark.parametrize(
    ("error_type", "message", "traceback", "reason"),
    [
        (
            "ConnectError",
            "[Errno -2] Name or service not known",
            None,
            "ConnectError: [Errno -2] Name or service not known",
        ),
        (
            "RuntimeError",
            "CUDA out of memory",
            "Traceback (most recent call last):\n  x\nRuntimeError: CUDA out of memory\n",
            "RuntimeError: CUDA out of memory",
        ),
        (
            "Exception",
            "Traceback (most recent call last):\n  File x\nsocket.gaierror: [Errno -2] no\n",
            None,
            "gaierror: [Errno -2] no",
        ),
        (
            "Exception",
            "Traceback (most recent call last):\n  File x\n  something odd\n",
            None,
            "Exception: something odd",
        ),
        ("ValueError", "x" * 1000, None, "ValueError: " + "x" * 387 + "…"),
        (None, None, None, ""),
    ],
)
def test_failure_reason_is_the_exception_in_one_line(error_type, message, traceback, reason):
    from backends.invokeai.client import failure_reason

    assert failure_reason(error_type, message, traceback) == reason
