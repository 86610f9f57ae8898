"""The Models page, the Presets page, and the studio's preset picker, through Django's test client."""

from __future__ import annotations

import pytest

from generation import model_installs, models_cache
from generation.models import CachedModel, ModelInstall, Preset
from testing.accounts import PASSWORD, other_account
from testing.fake_invokeai import every_type_models, tiny_model

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}
LORA_PATH = "/peer/models/models-page-lora.safetensors"


@pytest.fixture
def invokeai(use_fake_invokeai, settings, monkeypatch):
    settings.MODEL_DEFINITIONS = {}
    monkeypatch.setattr(model_installs, "async_task", lambda *args: None)
    use_fake_invokeai.models = every_type_models()
    models_cache.models_refresh()
    return use_fake_invokeai


def key(name: str) -> str:
    return CachedModel.objects.get(name=name).key


def test_models_page_filters_by_type_and_base(owner_client, invokeai, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        page = owner_client.get("/studio/models/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "tiny-sd1-lora" in text and "tiny-flux-t5" in text and "4x-upscaler" in text
    loras = owner_client.get("/studio/models/?type=lora", HTTP_HX_TARGET="model-list", **HX).content.decode()
    assert "tiny-sd1-lora" in loras and "tiny-sd2" not in loras and "Install a model" not in loras
    sdxl = owner_client.get("/studio/models/?base=sdxl").content.decode()
    assert "tiny-sdxl-vae-fp16-fix" in sdxl and "tiny-sd1-lora" not in sdxl


def test_the_models_page_is_for_staff(client, invokeai):
    client.login(username=other_account().username, password=PASSWORD)
    assert client.get("/studio/models/").status_code == 403
    assert client.post("/studio/models/install/", {"source": LORA_PATH}).status_code == 403


def test_favorite_and_step_options(owner_client, invokeai):
    sd1 = key("tiny-sd1")
    row = owner_client.post(f"/studio/models/{sd1}/favorite/", **HX).content.decode()
    assert "★" in row and CachedModel.objects.get(key=sd1).is_favorite
    owner_client.post(f"/studio/models/{sd1}/options/", {"fixed": "4"}, **HX)
    assert CachedModel.objects.get(key=sd1).options == {"fixed_steps": 4}
    owner_client.post(f"/studio/models/{sd1}/options/", {"min": "2", "max": "9", "default": "5"}, **HX)
    assert CachedModel.objects.get(key=sd1).options == {"steps": {"min": 2, "max": 9, "default": 5}}
    refused = owner_client.post(f"/studio/models/{sd1}/options/", {"min": "9", "max": "2", "default": "5"}, **HX)
    assert refused.status_code == 200 and b'class="error"' in refused.content
    assert owner_client.post(f"/studio/models/{sd1}/options/", {"min": "3"}, **HX).status_code == 200
    owner_client.post(f"/studio/models/{sd1}/options/", {}, **HX)
    assert CachedModel.objects.get(key=sd1).options == {}


def test_install_from_the_page_polls_to_ready(owner_client, invokeai):
    invokeai.add_model_file(LORA_PATH, tiny_model("x", model_type="lora", base="sd-1"), seconds=2)
    started = owner_client.post("/studio/models/install/", {"source": LORA_PATH, "name": "models-page"}, **HX)
    text = started.content.decode()
    assert 'data-status="queued"' in text and 'hx-trigger="every 1s"' in text
    install = ModelInstall.objects.get()
    invokeai.clock.advance(3)
    done = owner_client.get(f"/studio/models/install/{install.pk}/", **HX)
    assert 'data-status="ready"' in done.content.decode() and "every 1s" not in done.content.decode()
    assert "models-changed" in done.headers["HX-Trigger"]
    # A reload still shows it.
    assert "models-page" in owner_client.get("/studio/models/").content.decode()


def test_install_errors_show_on_the_page(owner_client, invokeai):
    refused = owner_client.post("/studio/models/install/", {"source": "/nowhere"}, **HX)
    assert refused.headers["HX-Retarget"] == "#install-error"
    assert "nothing it can install at /nowhere" in refused.content.decode()


def test_uninstall_from_the_page(owner_client, invokeai, user):
    vae = key("tiny-sd1-vae")
    Preset.objects.create(owner=user, name="Uses it", model_key=key("tiny-sd1"), vae_key=vae)
    refused = owner_client.post(f"/studio/models/{vae}/uninstall/", **HX).content.decode()
    assert "is in use by preset" in refused
    Preset.objects.all().delete()
    assert owner_client.post(f"/studio/models/{vae}/uninstall/", **HX).content == b""
    assert not CachedModel.objects.filter(key=vae).exists()


def test_presets_page_creates_edits_and_deletes(owner_client, invokeai):
    assert owner_client.get("/studio/presets/").status_code == 200
    form = {
        "name": "Page preset",
        "model_key": key("tiny-sd1"),
        "vae_key": key("tiny-sd1-vae"),
        "loras": [key("tiny-sd1-lora")],
        f"lora_weight_{key('tiny-sd1-lora')}": "0.4",
        "embeddings": [key("tiny-sd1-ti")],
        "steps": "3",
        "width": "64",
        "height": "64",
        "scheduler": "euler",
    }
    assert owner_client.post("/studio/presets/save/", form).status_code == 302
    preset = Preset.objects.get()
    assert (preset.loras, preset.embeddings, preset.steps) == (
        [{"key": key("tiny-sd1-lora"), "weight": 0.4}],
        [key("tiny-sd1-ti")],
        3,
    )
    editing = owner_client.get(f"/studio/presets/?edit={preset.pk}").content.decode()
    assert 'value="0.4"' in editing and "Save changes" in editing

    wrong = owner_client.post(
        "/studio/presets/save/", {**form, "preset_id": preset.pk, "vae_key": key("tiny-sdxl-vae-fp16-fix")}
    )
    assert wrong.status_code == 400
    assert "VAE &#x27;tiny-sdxl-vae-fp16-fix&#x27; is for SDXL models, not SD 1.x." in wrong.content.decode()
    assert owner_client.post("/studio/presets/save/", {**form, "preset_id": preset.pk, "steps": "x"}).status_code == 400

    components = owner_client.get(f"/studio/presets/components/?model_key={key('tiny-sdxl')}").content.decode()
    assert "tiny-sdxl-refiner" in components and "tiny-sd1-lora" not in components
    assert owner_client.post(f"/studio/presets/{preset.pk}/delete/").status_code == 302
    assert not Preset.objects.exists()


def test_choosing_a_preset_in_the_studio_fills_the_form(owner_client, invokeai, user):
    preset = Preset.objects.create(
        owner=user, name="Sd2 small", model_key=key("tiny-sd2"), steps=7, width=128, height=192, scheduler="euler"
    )
    composer = owner_client.get(
        "/studio/composer-preset/",
        {"preset_id": preset.pk, "prompt": "kept prompt", "model_key": key("tiny-sd1")},
        **HX,
    ).content.decode()
    assert "kept prompt" in composer
    assert f'<option value="{key("tiny-sd2")}" selected>' in composer
    assert 'name="width" value="128"' in composer and 'name="steps" min="1" max="150" value="7"' in composer
    assert f'<option value="{preset.pk}" selected>Sd2 small</option>' in composer

    invokeai.uninstall_model("tiny-sd2")
    models_cache.models_refresh()
    gone = owner_client.get("/studio/composer-preset/", {"preset_id": preset.pk}, **HX).content.decode()
    assert "Preset &#x27;Sd2 small&#x27; cannot be used: Main model &#x27;tiny-sd2&#x27; is not installed" in gone
    assert "(a model is missing)" in gone
