"""The model library: every model type InvokeAI reports, cached with what it says of it; filters; components."""

from __future__ import annotations

import pytest

from generation import models_cache
from generation.models import CachedModel
from testing.fake_invokeai import every_type_models

pytestmark = pytest.mark.django_db


@pytest.fixture
def every_type(use_fake_invokeai, settings):
    settings.MODEL_DEFINITIONS = {}
    use_fake_invokeai.models = every_type_models()
    models_cache.models_refresh()
    return use_fake_invokeai


def test_every_type_is_cached_with_what_invokeai_says_of_it(every_type):
    assert set(CachedModel.objects.values_list("type", flat=True)) == {
        "main",
        "vae",
        "lora",
        "embedding",
        "controlnet",
        "clip_embed",
        "t5_encoder",
        "t2i_adapter",
        "ip_adapter",
        "clip_vision",
        "spandrel_image_to_image",
    }
    sd2 = CachedModel.objects.get(name="tiny-sd2")
    assert (sd2.base, sd2.format, sd2.variant, sd2.prediction_type) == ("sd-2", "diffusers", "normal", "v_prediction")
    assert sd2.default_settings["width"] == 768 and sd2.default_width == 768
    lora = CachedModel.objects.get(name="tiny-sd1-lora")
    assert (lora.type, lora.format, lora.base, lora.trigger_phrases) == ("lora", "lycoris", "sd-1", [])
    assert lora.default_settings == {"weight": None, "weight_min": None, "weight_max": None}
    controlnet = CachedModel.objects.get(name="tiny-sd1-controlnet")
    assert controlnet.default_settings == {"preprocessor": None, "fp8_storage": None}
    flux = CachedModel.objects.get(name="tiny-flux-schnell")
    assert (flux.format, flux.variant, flux.default_settings) == ("checkpoint", "schnell", {})
    assert CachedModel.objects.get(name="tiny-flux-t5").compatible_with_base == "flux"


def test_trigger_phrases_are_kept(every_type):
    every_type.model("tiny-sd1-lora")["trigger_phrases"] = ["tinystyle", "tiny art"]
    models_cache.models_refresh()
    assert CachedModel.objects.get(name="tiny-sd1-lora").trigger_phrases == ["tinystyle", "tiny art"]


def test_nested_settings_a_hostile_server_sends_are_dropped(every_type):
    every_type.model("tiny-sd1-lora")["default_settings"] = {"weight": 0.7, "nested": {"x": [1] * 50}}
    models_cache.models_refresh()
    assert CachedModel.objects.get(name="tiny-sd1-lora").default_settings == {"weight": 0.7}


def test_api_filters_by_type_and_base(api, every_type):
    def names(query: str) -> set[str]:
        return {model["name"] for model in api.get(f"/api/models/?{query}").json()}

    assert names("type=lora") == {"tiny-sd1-lora"}
    assert names("base=sd-2") == {"tiny-sd2"}
    assert names("type=main&base=sdxl-refiner") == {"tiny-sdxl-refiner"}
    assert names("type=vae&base=flux") == {"tiny-flux-vae"}
    lora = api.get("/api/models/?type=lora").json()[0]
    assert (lora["format"], lora["trigger_phrases"], lora["default_settings"]["weight"]) == ("lycoris", [], None)
    sd2 = api.get("/api/models/?base=sd-2").json()[0]
    assert sd2["prediction_type"] == "v_prediction"


def test_components_of_a_main_model_in_one_call(api, every_type, django_assert_max_num_queries):
    sd1 = CachedModel.objects.get(name="tiny-sd1")
    with django_assert_max_num_queries(3):
        body = api.get(f"/api/models/{sd1.key}/components/").json()
    assert {kind: [model["name"] for model in models] for kind, models in body.items()} == {
        "vae": ["tiny-sd1-vae"],
        "lora": ["tiny-sd1-lora"],
        "embedding": ["tiny-sd1-ti"],
        "controlnet": ["tiny-sd1-controlnet"],
        "t2i_adapter": ["t2i-sd1"],
        "ip_adapter": ["ip-adapter-sd1"],
    }
    sdxl = CachedModel.objects.get(name="tiny-sdxl")
    assert api.get(f"/api/models/{sdxl.key}/components/").json() == {
        "vae": [api.get(f"/api/models/{CachedModel.objects.get(name='tiny-sdxl-vae-fp16-fix').key}/").json()],
        "refiner": [api.get(f"/api/models/{CachedModel.objects.get(name='tiny-sdxl-refiner').key}/").json()],
    }
    flux = CachedModel.objects.get(name="tiny-flux-schnell")
    flux_parts = api.get(f"/api/models/{flux.key}/components/").json()
    assert {kind: [m["name"] for m in models] for kind, models in flux_parts.items()} == {
        "vae": ["tiny-flux-vae"],
        "clip_embed": ["tiny-flux-clip"],
        "t5_encoder": ["tiny-flux-t5"],
    }


def test_components_of_a_component_are_refused(api, every_type):
    lora = CachedModel.objects.get(name="tiny-sd1-lora")
    response = api.get(f"/api/models/{lora.key}/components/")
    assert response.status_code == 400 and response.json()["code"] == "not_a_main_model"
    assert api.get("/api/models/nope/components/").status_code == 404


def test_admin_filters_by_type_and_base(owner_client, every_type):
    page = owner_client.get("/admin/generation/cachedmodel/?type__exact=lora")
    assert page.status_code == 200
    assert b"tiny-sd1-lora" in page.content and b"tiny-sd2" not in page.content
    page = owner_client.get("/admin/generation/cachedmodel/?base__exact=sdxl-refiner")
    assert b"tiny-sdxl-refiner" in page.content and b"tiny-sd1-lora" not in page.content
