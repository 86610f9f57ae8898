"""The model cache: refresh from (the fake) InvokeAI, step options from admin and MODEL_* lines, the API."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from backends.invokeai.errors import ModelError
from gallery_project.schedules import SCHEDULES
from generation import models_cache, tasks
from generation.models import CachedModel
from generation.step_options import parse_model_lines
from testing.fake_invokeai import flux_models

pytestmark = pytest.mark.django_db


@pytest.fixture
def invokeai(use_fake_invokeai, settings):
    settings.MODEL_DEFINITIONS = {}
    return use_fake_invokeai


@pytest.fixture
def cached(invokeai):
    models_cache.models_refresh()
    return invokeai


def names(queryset) -> list[str]:
    return [model.name for model in queryset]


def test_refresh_adds_the_models_with_their_defaults(invokeai):
    result = models_cache.models_refresh()
    assert (result.added, result.updated, result.unavailable, result.available) == (4, 0, 0, 4)
    sdxl = CachedModel.objects.get(name="tiny-sdxl")
    assert (sdxl.key, sdxl.hash) == (invokeai.model("tiny-sdxl")["key"], invokeai.model("tiny-sdxl")["hash"])
    assert (sdxl.type, sdxl.base, sdxl.format, sdxl.variant) == ("main", "sdxl", "diffusers", "normal")
    assert (sdxl.default_width, sdxl.default_height, sdxl.compatible_with_base) == (1024, 1024, "sdxl")
    assert sdxl.description == "tiny random test model" and sdxl.available


def test_a_default_vae_per_base_prefers_fp16(invokeai):
    invokeai.install_models(
        [
            {
                **invokeai.model("tiny-sd1-vae"),
                "key": "k-a",
                "hash": "h-a",
                "name": "a-sdxl-vae",
                "base": "sdxl",
            }
        ]
    )
    models_cache.models_refresh()
    defaults = CachedModel.objects.filter(is_default_vae=True)
    assert {(vae.compatible_with_base, vae.name) for vae in defaults} == {
        ("sd-1", "tiny-sd1-vae"),
        ("sdxl", "tiny-sdxl-vae-fp16-fix"),
    }


def test_refresh_again_updates_marks_missing_and_follows_a_reinstall(cached):
    CachedModel.objects.filter(name="tiny-sd1").update(is_favorite=True, options={"fixed_steps": 4})
    cached.uninstall_model("tiny-sdxl-vae-fp16-fix")
    new_key = cached.reinstall_model("tiny-sd1")["key"]

    result = models_cache.models_refresh()

    assert (result.added, result.updated, result.unavailable) == (0, 3, 1)
    assert CachedModel.objects.count() == 4
    sd1 = CachedModel.objects.get(name="tiny-sd1")
    assert (sd1.key, sd1.is_favorite, sd1.options) == (new_key, True, {"fixed_steps": 4})
    gone = CachedModel.objects.get(name="tiny-sdxl-vae-fp16-fix")
    assert (gone.available, gone.is_default_vae) == (False, False)
    assert names(models_cache.model_list(model_type="vae")) == ["tiny-sd1-vae"]


def test_verify_follows_a_reinstall_and_refuses_an_uninstalled_model(cached):
    old_key = cached.model("tiny-sd1")["key"]
    new_key = cached.reinstall_model("tiny-sd1")["key"]
    assert models_cache.model_verify(key=old_key).key == new_key
    cached.uninstall_model("tiny-sd1")
    with pytest.raises(ModelError, match="Model 'tiny-sd1' is no longer installed in InvokeAI") as caught:
        models_cache.model_verify(key=new_key)
    assert caught.value.code == "model_not_installed"
    assert CachedModel.objects.get(key=new_key).available is False


def test_list_puts_favorites_then_recent_first_and_filters(cached):
    assert names(models_cache.model_list(model_type="main")) == ["tiny-sd1", "tiny-sdxl"]
    models_cache.model_update(key=cached.model("tiny-sdxl")["key"], is_favorite=True)
    assert names(models_cache.model_list(model_type="main")) == ["tiny-sdxl", "tiny-sd1"]
    models_cache.model_update(key=cached.model("tiny-sdxl")["key"], is_favorite=False)
    models_cache.model_mark_used(key=cached.model("tiny-sdxl")["key"])
    assert names(models_cache.model_list(model_type="main")) == ["tiny-sdxl", "tiny-sd1"]
    assert names(models_cache.model_list(base="sd-1")) == ["tiny-sd1", "tiny-sd1-vae"]


LINES = {
    "MODEL_1": 'tiny-sd1;someone/tiny-sd1;Tiny;huggingface;false;{"fixed_steps": 4}',
    # Quotes escaped for a shell, as CyberImage's .env.example writes them.
    "MODEL_2": "anything;<fake>/models/tiny-sdxl;Tiny XL;huggingface;false;"
    '{\\"steps\\":{\\"min\\":2,\\"max\\":8,\\"default\\":4}}',
    "MODEL_3": "too;short",
    "MODEL_4": 'tiny-sd1-vae;x;y;z;false;{"fixed_steps": 0}',
    "MODEL_5": '"no-options;repo;desc;huggingface;true"',
}


def test_model_lines_in_cyberimage_format():
    lines = parse_model_lines(LINES)
    assert [(line.variable, line.name, line.options) for line in lines] == [
        ("MODEL_1", "tiny-sd1", {"fixed_steps": 4}),
        ("MODEL_2", "anything", {"steps": {"min": 2, "max": 8, "default": 4}}),
        ("MODEL_5", "no-options", {}),
    ]


def test_step_options_from_lines_by_name_or_source_and_the_admin_wins(cached, settings):
    settings.MODEL_DEFINITIONS = LINES
    sd1, sdxl = CachedModel.objects.get(name="tiny-sd1"), CachedModel.objects.get(name="tiny-sdxl")
    assert models_cache.step_options_for(sd1).as_dict() == {"fixed_steps": 4}
    assert models_cache.step_options_for(sdxl).as_dict() == {"steps": {"min": 2, "max": 8, "default": 4}}
    models_cache.model_update(key=sd1.key, options={"steps": {"min": 10, "max": 20, "default": 12}})
    assert models_cache.step_options_for(CachedModel.objects.get(pk=sd1.pk)).default == 12


def test_step_defaults_are_base_aware(cached, settings):
    settings.MODEL_DEFINITIONS = {"MODEL_1": 'tiny-sd1;x;y;z;false;{"fixed_steps": 6}'}
    sd1 = models_cache.step_defaults(key=cached.model("tiny-sd1")["key"])
    assert (sd1.width, sd1.height, sd1.size_multiple, sd1.cfg_scale, sd1.guidance) == (512, 512, 8, 7.5, None)
    assert (sd1.steps.fixed, sd1.steps.default, sd1.vae_key) == (True, 6, None)
    assert names(sd1.vae_choices) == ["tiny-sd1-vae"]
    sdxl = models_cache.step_defaults(key=cached.model("tiny-sdxl")["key"])
    assert (sdxl.width, sdxl.steps.as_dict(), sdxl.scheduler) == (
        1024,
        {"steps": {"min": 1, "max": 150, "default": 30}},
        "dpmpp_2m_sde_k",
    )
    assert sdxl.vae_key == cached.model("tiny-sdxl-vae-fp16-fix")["key"]
    with pytest.raises(ModelError, match=r"SD 1\.x, SD 2\.x, SDXL and FLUX main models"):
        models_cache.step_defaults(key=cached.model("tiny-sd1-vae")["key"])


def test_flux_needs_its_companions(cached):
    with pytest.raises(ModelError, match="missing: T5 encoder, CLIP-embed model, FLUX VAE"):
        models_cache.flux_companions()
    cached.install_models(flux_models())
    models_cache.models_refresh()
    companions = models_cache.flux_companions()
    assert (companions.t5_encoder.name, companions.clip_embed.name, companions.vae.name) == (
        "t5-bnb-int8",
        "clip-vit-large-patch14",
        "flux-ae",
    )
    flux = models_cache.step_defaults(key=cached.model("flux-schnell")["key"])
    assert (flux.size_multiple, flux.steps.default, flux.guidance, flux.vae_key) == (
        16,
        4,
        3.5,
        cached.model("flux-ae")["key"],
    )
    assert CachedModel.objects.get(name="t5-bnb-int8").compatible_with_base == "flux"


# --- API ---


def test_api_lists_with_step_options(api, cached, settings):
    settings.MODEL_DEFINITIONS = {"MODEL_1": 'tiny-sd1;x;y;z;false;{"fixed_steps": 4}'}
    body = api.get("/api/models/?type=main").json()
    assert [model["name"] for model in body] == ["tiny-sd1", "tiny-sdxl"]
    assert body[0]["step_options"] == {"fixed_steps": 4}
    assert body[1]["step_options"] is None
    assert body[1]["default_settings"]["width"] == 1024
    assert [m["name"] for m in api.get("/api/models?base=sdxl&type=vae").json()] == ["tiny-sdxl-vae-fp16-fix"]


def test_api_patch_favorite_and_options(api, cached):
    key = cached.model("tiny-sdxl")["key"]
    response = api.patch(f"/api/models/{key}/", {"is_favorite": True, "options": {"fixed_steps": 8}}, format="json")
    assert response.status_code == 200
    assert (response.json()["is_favorite"], response.json()["step_options"]) == (True, {"fixed_steps": 8})
    assert api.get("/api/models/?type=main").json()[0]["name"] == "tiny-sdxl"
    refused = api.patch(f"/api/models/{key}", {"options": {"steps": {"min": 9, "max": 4, "default": 5}}}, format="json")
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_options"
    assert api.patch("/api/models/nope/", {"is_favorite": True}, format="json").status_code == 404


def test_api_refresh(api, invokeai):
    response = api.post("/api/models/refresh/")
    assert response.status_code == 200
    assert response.json() == {"added": 4, "updated": 0, "unavailable": 0, "available": 4}


def test_api_refresh_when_invokeai_is_down(api, invokeai):
    invokeai.refuse_connections()
    response = api.post("/api/models/refresh")
    assert response.status_code == 503
    assert response.json()["code"] == "invokeai_unreachable"
    assert "is not answering" in response.json()["message"]


# --- admin, command, schedule ---


def test_admin_lists_the_cache_and_refreshes_from_a_button(owner_client, invokeai):
    page = owner_client.get(reverse("admin:generation_cachedmodel_changelist"))
    assert b"Refresh from InvokeAI" in page.content
    response = owner_client.post(reverse("admin:generation_cachedmodel_refresh"), follow=True)
    assert b"4 models in InvokeAI: 4 added" in response.content
    assert b"tiny-sdxl-vae-fp16-fix" in response.content
    invokeai.refuse_connections()
    response = owner_client.post(reverse("admin:generation_cachedmodel_refresh"), follow=True)
    assert b"is not answering" in response.content


def test_admin_refuses_malformed_options(owner_client, cached):
    model = CachedModel.objects.get(name="tiny-sd1")
    url = reverse("admin:generation_cachedmodel_change", args=[model.pk])
    response = owner_client.post(url, {"options": '{"fixed_steps": 0}'})
    assert response.status_code == 200
    assert b"fixed_steps must be a whole number of steps" in response.content


def test_refresh_command(invokeai, capsys):
    call_command("refresh_models")
    assert "4 models in InvokeAI: 4 added, 0 updated, 0 no longer installed" in capsys.readouterr().out


def test_the_schedule_refreshes_every_quarter_hour_and_tolerates_a_stopped_invokeai(invokeai):
    job = next(job for job in SCHEDULES if job.name == "generation.refresh_models")
    assert (job.func, job.minutes) == ("generation.tasks.refresh_models", 15)
    assert tasks.refresh_models() == "4 models, 4 added, 0 unavailable"
    invokeai.refuse_connections()
    assert tasks.refresh_models() == "InvokeAI not answering"
    assert CachedModel.objects.filter(available=True).count() == 4
    assert CachedModel.objects.first().cached_at <= timezone.now()
