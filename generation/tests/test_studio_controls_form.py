"""The studio form's controls beyond the API's step body: upscale mode, control image uploads, several ControlNet
slots, the embedding check while typing and FLUX's parts, against the fake InvokeAI."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from generation import models_cache
from generation.models import CachedModel, GenerationStep
from photos.models import Photo
from photos.tests.images import image_bytes
from testing import fake_invokeai as fake

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _every_model(invokeai, client, user):
    """Every type the peer lists (a spandrel upscaler among them), and a signed-in owner."""
    invokeai.models = fake.every_type_models()
    models_cache.models_refresh()
    client.force_login(user)


def model(name: str) -> CachedModel:
    return CachedModel.objects.get(name=name, available=True)


def form(**extra) -> dict:
    return {
        "model_key": model("tiny-sd1").key,
        "prompt": "a lighthouse",
        "mode": "txt2img",
        "seed_mode": "random",
        "batch_size": 1,
        "width": 64,
        "height": 64,
        "steps": 2,
        **extra,
    }


def graph(invokeai) -> dict:
    step = GenerationStep.objects.get()
    return invokeai.items[step.item_ids[0]].batch["graph"]


def test_a_control_image_upload_is_stored_as_a_control_photo_and_picked_in_its_slot(client, user):
    upload = SimpleUploadedFile("pose.png", image_bytes("PNG", (200, 160)), content_type="image/png")
    response = client.post("/studio/control-upload/", {"control_file": upload})
    photo = Photo.objects.get()
    assert (photo.image_category, photo.owner, photo.filename) == ("control", user, "pose.png")
    html = response.content.decode()
    assert f'name="control_photo_id" value="{photo.pk}"' in html and 'class="picked control-picked"' in html


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (None, "Choose an image file to upload."),
        (SimpleUploadedFile("notes.txt", b"not an image", content_type="text/plain"), "notes.txt"),
        (SimpleUploadedFile("broken.png", b"\x89PNG\r\n\x1a\nbroken", content_type="image/png"), "broken.png"),
    ],
)
def test_a_bad_control_upload_says_why_and_stores_nothing(client, upload, message):
    response = client.post("/studio/control-upload/", {"control_file": upload} if upload else {})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'class="error"' in html and message in html and 'name="control_photo_id" value=""' in html
    assert not Photo.objects.exists()


def test_two_controlnet_slots_reach_the_graph_in_order_and_an_empty_slot_is_ignored(client, invokeai, gallery_photo):
    first, second = gallery_photo(size=(128, 128), plain=True), gallery_photo(size=(160, 160), plain=True)
    control = model("tiny-sd1-controlnet").key
    body = form(
        controlnet_key=[control, "", control],
        control_photo_id=[str(first.pk), "", str(second.pk)],
        preprocessor=["canny_edge_detection", "", ""],
        control_weight=["0.5", "1", "0"],
        control_begin=["0", "0", "0.2"],
        control_end=["1", "1", "0.8"],
        control_mode=["balanced", "balanced", "more_control"],
        resize_mode=["just_resize", "just_resize", "crop_resize"],
    )
    response = client.post("/studio/new/", body)
    assert response.status_code == 302, response.content.decode()
    recorded = GenerationStep.objects.get().parameters["controlnets"]
    assert [(c["photo_id"], c["preprocessor"], c["weight"]) for c in recorded] == [
        (str(first.pk), "canny_edge_detection", 0.5),
        (str(second.pk), "", 0.0),
    ]
    nodes = [node for node in graph(invokeai)["nodes"].values() if node["type"] == "controlnet"]
    assert [(n["control_weight"], n["begin_step_percent"], n["control_mode"]) for n in nodes] == [
        (0.5, 0.0, "balanced"),
        (0.0, 0.2, "more_control"),
    ]


def test_a_slot_with_a_bad_number_is_refused_naming_it(client, gallery_photo):
    photo = gallery_photo(size=(128, 128), plain=True)
    body = form(
        controlnet_key=[model("tiny-sd1-controlnet").key], control_photo_id=[str(photo.pk)], control_weight=["x"]
    )
    response = client.post("/studio/new/", body, HTTP_HX_REQUEST="true")
    assert "ControlNet 1, control weight: Enter a number." in response.content.decode()
    assert not GenerationStep.objects.exists()


def test_the_composer_shows_a_slot_per_recorded_controlnet_and_an_empty_template(client, user, gallery_photo):
    from generation import services

    from .conftest import step_request

    photo = gallery_photo(size=(128, 128), plain=True)
    control = model("tiny-sd1-controlnet").key
    session = services.session_create(owner=user)
    controls = ({"key": control, "photo_id": str(photo.pk)}, {"key": control, "photo_id": str(photo.pk), "end": 0.5})
    step = services.step_create(
        session_id=session.pk, owner=user, request=step_request(model("tiny-sd1"), controlnets=controls)
    )
    html = client.get(f"/studio/steps/{step.pk}/composer/").content.decode()
    # Two slots filled from the recipe, and the empty one "Add a ControlNet" copies.
    assert html.count('class="controlnet-slot"') == 3
    assert html.count(f'name="control_photo_id" value="{photo.pk}"') == 2
    assert 'id="controlnet-slot-template"' in html and 'data-action="add-controlnet"' in html


def test_the_prompt_check_warns_of_an_unknown_embedding_before_generate(client):
    sd1 = model("tiny-sd1").key
    unknown = client.get("/studio/prompt-check/", {"model_key": sd1, "prompt": "a <nobody-knows> cat"})
    assert "&lt;nobody-knows&gt; matches no installed sd-1 embedding" in unknown.content.decode()
    known = client.get("/studio/prompt-check/", {"model_key": sd1, "prompt": "a <tiny-sd1-ti> cat"})
    assert 'class="warning"' not in known.content.decode()
    # The warning is about the model's base: another base's embedding of that name does not count.
    sdxl = client.get(
        "/studio/prompt-check/", {"model_key": model("tiny-sdxl").key, "negative_prompt": "<tiny-sd1-ti>"}
    )
    assert "no installed sdxl embedding" in sdxl.content.decode()
    # The composer says so on load too, from the values it was filled with.
    assert "matches no installed" not in client.get("/studio/").content.decode()


def test_upscale_from_the_form_needs_no_prompt_or_model(client, invokeai, gallery_photo):
    upscaler = CachedModel.objects.get(type="spandrel_image_to_image")
    photo = gallery_photo(size=(120, 100), plain=True)
    page = client.get("/studio/").content.decode()
    assert 'value="upscale"' in page and f'<option value="{upscaler.key}"' in page
    body = {"mode": "upscale", "upscaler_key": upscaler.key, "init_photo_id": str(photo.pk)}
    response = client.post("/studio/new/", body)
    assert response.status_code == 302, response.content.decode()
    step = GenerationStep.objects.get()
    assert (step.parameters["mode"], step.parameters["upscaler_key"]) == ("upscale", upscaler.key)
    assert [node["type"] for node in graph(invokeai)["nodes"].values()] == ["spandrel_image_to_image"]
    page = client.get(f"/studio/{step.session_id}/").content.decode()
    assert "upscale of 120\u00d7100" in page


def test_upscale_without_an_upscaler_and_a_step_without_a_prompt_are_refused(client, gallery_photo):
    photo = gallery_photo(size=(120, 100), plain=True)
    response = client.post("/studio/new/", {"mode": "upscale", "init_photo_id": str(photo.pk)}, HTTP_HX_REQUEST="true")
    assert "Choose an upscaler model." in response.content.decode()
    response = client.post("/studio/new/", form(prompt=""), HTTP_HX_REQUEST="true")
    assert "Write a prompt" in response.content.decode()
    assert not GenerationStep.objects.exists()


def test_flux_parts_are_chosen_from_the_cache_with_the_defaults_preselected(client, invokeai):
    flux = model("tiny-flux-schnell")
    defaults = models_cache.flux_companions()
    html = client.get("/studio/model-fields/", {"model_key": flux.key}).content.decode()
    for field, chosen in (
        ("t5_encoder_key", defaults.t5_encoder.key),
        ("clip_embed_key", defaults.clip_embed.key),
        ("vae_key", defaults.vae.key),
    ):
        assert f'name="{field}"' in html and f'<option value="{chosen}" selected>' in html
    body = form(
        model_key=flux.key,
        steps=1,
        t5_encoder_key=defaults.t5_encoder.key,
        clip_embed_key=defaults.clip_embed.key,
        vae_key=defaults.vae.key,
    )
    assert client.post("/studio/new/", body).status_code == 302
    loader = graph(invokeai)["nodes"]["model_loader"]
    assert (loader["t5_encoder_model"]["key"], loader["vae_model"]["key"]) == (
        defaults.t5_encoder.key,
        defaults.vae.key,
    )
    step = GenerationStep.objects.get()
    assert (step.parameters["t5_encoder_name"], step.parameters["vae_key"]) == (
        defaults.t5_encoder.name,
        defaults.vae.key,
    )


def test_a_flux_part_that_is_not_installed_is_a_400_naming_its_field(api, invokeai):
    session = api.post("/api/generation/sessions/", {}, format="json").json()["id"]
    flux = model("tiny-flux-schnell")
    for field in ("t5_encoder_key", "clip_embed_key", "vae_key"):
        body = {"prompt": "a cat", "model_key": flux.key, "width": 64, "height": 64, "steps": 1, field: "nope"}
        response = api.post(f"/api/generation/sessions/{session}/steps/", body, format="json")
        assert response.status_code == 400 and response.json()["details"]["field"] == field, response.json()
    # A T5 encoder's key given as the CLIP-embed is not one either.
    body = {"prompt": "a cat", "model_key": flux.key, "width": 64, "height": 64, "steps": 1}
    body["clip_embed_key"] = models_cache.flux_companions().t5_encoder.key
    assert api.post(f"/api/generation/sessions/{session}/steps/", body, format="json").status_code == 400
    assert not GenerationStep.objects.exists()


def test_the_api_checks_a_step_before_it_is_sent_warning_of_an_unknown_embedding(api, invokeai):
    body = {"prompt": "a <nobody-knows> cat", "model_key": model("tiny-sd1").key, "width": 64, "height": 64}
    response = api.post("/api/generation/steps/check", body, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {
        "warnings": ["<nobody-knows> matches no installed sd-1 embedding: InvokeAI would read it as plain text."]
    }
    body["prompt"] = "a <tiny-sd1-ti> cat"
    assert api.post("/api/generation/steps/check", body, format="json").json() == {"warnings": []}
    body["width"] = 65
    refused = api.post("/api/generation/steps/check", body, format="json")
    assert refused.status_code == 400 and refused.json()["details"]["field"] == "width"
    assert not GenerationStep.objects.exists() and not invokeai.items


def test_outpaint_to_an_aspect_ratio_from_the_form_and_back_in_the_composer(client, gallery_photo):
    photo = gallery_photo(size=(128, 128), plain=True)
    body = form(mode="outpaint", init_photo_id=str(photo.pk), outpaint_aspect="16:9", outpaint_left="8", infill="tile")
    assert client.post("/studio/new/", body).status_code == 302
    step = GenerationStep.objects.get()
    # The ratio stands for the sides (the form's script disables them; a posted one is not used).
    assert step.parameters["outpaint"] == {
        "left": 48,
        "right": 48,
        "top": 0,
        "bottom": 0,
        "infill": "tile",
        "aspect_ratio": "16:9",
    }
    html = client.get(f"/studio/steps/{step.pk}/composer/").content.decode()
    assert (
        '<option value="16:9" selected>' in html
        and 'name="outpaint_left" min="0" max="1024" step="8" value="0"' in html
    )


def test_the_flux_parts_last_chosen_are_remembered_for_the_next_flux_step(client, invokeai):
    encoder = next(entry for entry in invokeai.models if entry["type"] == "t5_encoder")
    invokeai.models.append({**encoder, "key": "second-t5", "name": "second-t5", "hash": "blake3:second-t5"})
    models_cache.models_refresh()
    flux = model("tiny-flux-schnell")
    # The encoder that is not preselected is the one chosen.
    other = {"second-t5", encoder["key"]} - {models_cache.flux_companions().t5_encoder.key}
    (chosen,) = other
    assert client.post("/studio/new/", form(model_key=flux.key, steps=1, t5_encoder_key=chosen)).status_code == 302
    html = client.get("/studio/model-fields/", {"model_key": flux.key}).content.decode()
    assert f'<option value="{chosen}" selected>' in html
    # Per base: an SD1 model's fields have no FLUX parts.
    assert chosen not in client.get("/studio/model-fields/", {"model_key": model("tiny-sd1").key}).content.decode()
