"""CyberImage's API, per endpoint, with the field names CyberImage's page (`main.js`) and scripts read, against
the fake InvokeAI. The page's whole sequence of calls is in test_cyberimage_flow.py."""

from __future__ import annotations

import io

import pytest
from django.test import Client
from knox.models import AuthToken
from PIL import Image
from rest_framework.test import APIClient

from generation import models_cache, services
from generation.models import GenerationSession, GenerationStep
from photos.models import Photo
from testing.accounts import other_account

from .conftest import PROMPT

pytestmark = pytest.mark.django_db

PREFIXES = ["/api", "/cyberimage/api"]


def cyberimage_body(**settings) -> dict:
    """What CyberImage's page posts (main.js, the image form), at the fake's tiny sizes."""
    return {
        "model_id": "tiny-sd1",
        "prompt": PROMPT,
        "negative_prompt": "blurry",
        "settings": {
            "num_images": 2,
            "num_inference_steps": 2,
            "guidance_scale": 7.5,
            "height": 64,
            "width": 64,
            "type": "image",
            **settings,
        },
    }


@pytest.fixture
def job(api, invokeai, sd1) -> str:
    response = api.post("/api/generate", cyberimage_body(), format="json")
    assert response.status_code == 202, response.json()
    return response.json()["job_id"]


@pytest.fixture
def images(api, job, follow) -> list[dict]:
    follow(int(job))
    return api.get(f"/api/status/{job}").json()["images"]


def nothing_created(invokeai) -> None:
    assert not GenerationSession.objects.exists()
    assert not GenerationStep.objects.exists()
    assert [path for _, path in invokeai.requests if "enqueue" in path] == []


# --- GET models ---


def test_models_are_an_object_keyed_by_model_id_with_step_config(api, invokeai, sd1, settings):
    models_cache.model_update(key=sd1.key, options={"steps": {"min": 2, "max": 40, "default": 12}})
    body = api.get("/cyberimage/api/models").json()
    # Only the main models the studio generates with; no VAE.
    assert set(body["models"]) == {"tiny-sd1", "tiny-sdxl"}
    assert body["default"] in body["models"]
    model = body["models"]["tiny-sd1"]
    assert {"description", "type", "source", "provider", "step_config"} <= set(model)
    assert (model["type"], model["description"], model["source"]) == ("image", "tiny random test model", "invokeai")
    assert model["step_config"]["steps"] == {"min": 2, "max": 40, "default": 12}
    assert model["step_config"]["guidance"] == {"min": 1.0, "max": 30.0, "step": 0.5, "default": 7.5}
    assert body["models"]["tiny-sdxl"]["step_config"]["steps"] == {"min": 1, "max": 150, "default": 30}


def test_a_fixed_step_model_says_fixed_steps_and_the_last_used_model_is_the_default(api, invokeai, sd1, settings):
    settings.MODEL_DEFINITIONS = {"MODEL_1": 'tiny-sdxl;x/y;turbo;huggingface;false;{"fixed_steps": 4}'}
    assert api.get("/cyberimage/api/models").json()["models"]["tiny-sdxl"]["step_config"]["fixed_steps"] == 4
    api.post("/api/generate", cyberimage_body(), format="json")
    assert api.get("/cyberimage/api/models").json()["default"] == "tiny-sd1"


def test_a_name_installed_twice_is_keyed_by_its_model_keys(api, invokeai):
    invokeai.install_models([{**invokeai.model("tiny-sd1"), "key": "second-key", "hash": "other-hash"}])
    models_cache.models_refresh()
    models = api.get("/cyberimage/api/models").json()["models"]
    assert "tiny-sd1" not in models and "second-key" in models
    assert api.post("/api/generate", cyberimage_body() | {"model_id": "second-key"}, format="json").status_code == 202


def test_the_model_list_costs_the_same_queries_for_more_models(api, invokeai, django_assert_max_num_queries):
    invokeai.install_models(
        [{**invokeai.model("tiny-sd1"), "key": f"k{n}", "hash": f"h{n}", "name": f"m{n}"} for n in range(8)]
    )
    models_cache.models_refresh()
    with django_assert_max_num_queries(2):
        assert len(api.get("/cyberimage/api/models").json()["models"]) == 10


def test_the_apps_own_model_list_stays_at_api_models(api, invokeai):
    assert isinstance(api.get("/api/models").json(), list)
    assert isinstance(api.get("/api/models/").json(), list)


# --- POST generate ---


def test_generate_answers_a_job_id_and_makes_a_one_step_session(api, invokeai, sd1):
    response = api.post("/api/generate", cyberimage_body(), format="json")
    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["num_images"]) == ("processing", 2)
    assert isinstance(body["job_id"], str) and body["message"]
    step = GenerationStep.objects.get(pk=body["job_id"])
    assert (step.batch_size, step.parameters["steps"], step.parameters["cfg_scale"]) == (2, 2, 7.5)
    assert (step.negative_prompt, step.session.title) == ("blurry", PROMPT)


def test_guidance_scale_is_fluxs_guidance_for_a_flux_model(api, invokeai):
    from testing.fake_invokeai import flux_models

    invokeai.install_models(flux_models())
    models_cache.models_refresh()
    body = cyberimage_body(guidance_scale=4.0, num_inference_steps=4) | {"model_id": "flux-schnell"}
    response = api.post("/api/generate", body, format="json")
    assert response.status_code == 202, response.json()
    step = GenerationStep.objects.get()
    # CyberImage's page always sends its negative prompt; FLUX takes none, so it is dropped, not refused.
    assert (step.parameters["guidance"], step.negative_prompt) == (4.0, "")
    flux = api.get("/cyberimage/api/models").json()["models"]["flux-schnell"]
    assert flux["step_config"]["guidance"]["default"] == 3.5


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"settings": {"num_images": 10**9}}, 400, "num_images must be between 1 and 10"),
        ({"settings": {"num_images": 0}}, 400, "num_images must be between 1 and 10"),
        ({"settings": {"num_images": "many"}}, 400, "num_images: A valid integer is required."),
        ({"settings": {"num_inference_steps": [3]}}, 400, "num_inference_steps"),
        ({"settings": {"guidance_scale": {"a": 1}}}, 400, "guidance_scale"),
        ({"settings": {"width": 10**12}}, 400, "is too large for SD 1.x models"),
        ({"settings": {"type": "t2v"}}, 400, "Only image generation"),
        ({"settings": "fast"}, 400, "settings"),
        ({"prompt": ["a", "list"]}, 400, "prompt: Not a valid string."),
        ({"prompt": ""}, 400, "prompt"),
        ({"model_id": "no-such-model"}, 404, "No installed model is called 'no-such-model'"),
        ({"model_id": None}, 400, "model_id"),
        ({"model_id": 12}, 404, "No installed model is called '12'"),
    ],
)
def test_hostile_generate_bodies_get_a_message_and_create_nothing(api, invokeai, sd1, body, status, says):
    sent = cyberimage_body()
    overrides = dict(body)
    changed = overrides.pop("settings", {})
    sent["settings"] = {**sent["settings"], **changed} if isinstance(changed, dict) else changed
    response = api.post("/api/generate", sent | overrides, format="json")
    assert response.status_code == status, response.json()
    assert says in response.json()["message"]
    nothing_created(invokeai)


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"{", b"null", b'{"prompt": "x", "settings": []}'])
def test_bodies_that_are_not_an_object_are_refused(api, invokeai, raw):
    response = api.generic("POST", "/api/generate", raw, content_type="application/json")
    assert response.status_code == 400 and response.json()["message"]
    nothing_created(invokeai)


def test_no_invokeai_to_send_to_is_a_503_with_a_message_and_no_session(api, invokeai, sd1):
    invokeai.refuse_connections()
    response = api.post("/api/generate", cyberimage_body(), format="json")
    assert response.status_code == 503 and "InvokeAI" in response.json()["message"]
    # A step InvokeAI never got is recorded as failed (as the studio's are), and its job says so.
    job = GenerationStep.objects.get()
    status = api.get(f"/api/status/{job.pk}").json()
    assert status["status"] == "failed" and "InvokeAI" in status["error_message"]


# --- GET status/{job_id} ---

STATUS_FIELDS = {
    "status",
    "status_message",
    "progress",
    "queue_position",
    "estimated_processing_time_seconds",
    "error_message",
    "images",
}


def test_status_while_processing(api, job, invokeai):
    body = api.get(f"/api/status/{job}").json()
    assert set(body) >= STATUS_FIELDS
    assert (body["status"], body["progress"], body["queue_position"], body["error_message"]) == (
        "processing",
        0,
        1,
        None,
    )
    assert body["status_message"] == "Generating image 1 of 2..."
    # No step of this model has finished yet to estimate from.
    assert body["estimated_processing_time_seconds"] is None
    assert body["settings"]["num_images"] == 2 and body["images"] == []


def test_status_when_completed_has_the_images_with_cyberimage_metadata(api, job, follow):
    follow(int(job))
    body = api.get(f"/api/status/{job}").json()
    assert (body["status"], body["progress"], body["queue_position"]) == ("completed", 100, None)
    assert body["status_message"] == "Generated 2 of 2 image(s)."
    assert len(body["images"]) == 2
    first, second = body["images"]
    assert {"id", "file_path", "url", "thumbnail_url", "metadata"} <= set(first)
    assert first["file_path"] == first["url"] == f"/api/get_image/{first['id']}"
    assert first["metadata"]["prompt"] == PROMPT and first["metadata"]["negative_prompt"] == "blurry"
    assert [image["metadata"]["image_number"] for image in body["images"]] == [1, 2]
    assert second["metadata"]["total_images"] == 2
    assert second["metadata"]["settings"] == {
        "num_images": 2,
        "num_inference_steps": 2,
        "guidance_scale": 7.5,
        "height": 64,
        "width": 64,
        "seed": second["metadata"]["seed"],
        "scheduler": "dpmpp_2m_k",
        "type": "image",
        "negative_prompt": "blurry",
    }
    # The next job of the same model has an estimate from this one.
    next_job = api.post("/api/generate", cyberimage_body(), format="json").json()["job_id"]
    assert api.get(f"/api/status/{next_job}").json()["estimated_processing_time_seconds"] > 0


def test_status_queries_do_not_grow_with_the_images(api, invokeai, sd1, follow, django_assert_max_num_queries):
    job = api.post("/api/generate", cyberimage_body(num_images=6), format="json").json()["job_id"]
    follow(int(job))
    with django_assert_max_num_queries(6):  # one of them the running items' live state
        assert len(api.get(f"/api/status/{job}").json()["images"]) == 6


def test_a_cancelled_job_is_failed_with_a_message(api, job, invokeai):
    services.step_cancel(step_id=int(job), owner=GenerationStep.objects.get().session.owner)
    assert GenerationStep.objects.get().status == GenerationStep.Status.CANCELLED
    body = api.get(f"/api/status/{job}").json()
    assert body["status"] == "failed"
    assert "cancelled" in body["error_message"].lower()
    assert body["status_message"] == body["error_message"]


def test_a_failed_job_says_why(api, invokeai, sd1, follow):
    invokeai.fail_items(2, error_message="CUDA out of memory")
    job = api.post("/api/generate", cyberimage_body(), format="json").json()["job_id"]
    follow(int(job))
    body = api.get(f"/api/status/{job}").json()
    assert body["status"] == "failed" and "CUDA out of memory" in body["error_message"]


def test_the_queue_position_counts_the_steps_before(api, invokeai, sd1):
    first = api.post("/api/generate", cyberimage_body(), format="json").json()["job_id"]
    second = api.post("/api/generate", cyberimage_body(), format="json").json()["job_id"]
    assert api.get(f"/api/status/{first}").json()["queue_position"] == 1
    body = api.get(f"/api/status/{second}").json()
    assert body["queue_position"] == 2 and "queue position 2" in body["status_message"]


def test_unknown_and_other_accounts_jobs_are_404(api, job, invokeai):
    assert api.get("/api/status/999999").status_code == 404
    guest_api = APIClient()
    guest_api.force_authenticate(other_account())
    assert guest_api.get(f"/api/status/{job}").status_code == 404
    assert guest_api.get("/api/queue").json()["jobs"] == []


# --- images ---


def test_get_image_is_the_png_and_size_small_its_thumbnail(api, images):
    image_id = images[0]["id"]
    original = api.get(f"/api/get_image/{image_id}")
    assert (original.status_code, original["Content-Type"]) == (200, "image/png")
    assert b"".join(original.streaming_content).startswith(b"\x89PNG")
    small = api.get(images[0]["thumbnail_url"])
    assert (small.status_code, small["Content-Type"]) == (200, "image/webp")
    medium = api.get(f"/api/get_image/{image_id}?size=medium")
    assert (medium.status_code, medium["Content-Type"]) == (200, "image/webp")
    assert Image.open(io.BytesIO(b"".join(medium.streaming_content))).format == "WEBP"
    bad = api.get(f"/api/get_image/{image_id}?size=huge")
    assert bad.status_code == 400 and "size must be" in bad.json()["message"]
    assert api.get("/api/get_image/00000000-0000-0000-0000-000000000000").status_code == 404


def test_image_metadata(api, images):
    body = api.get(f"/api/image/{images[1]['id']}/metadata").json()
    assert body["id"] == images[1]["id"]
    assert (body["model_id"], body["prompt"], body["image_number"], body["total_images"]) == ("tiny-sd1", PROMPT, 2, 2)
    assert body["settings"]["num_inference_steps"] == 2 and body["type"] == "image"
    assert isinstance(body["generation_time"], float)


def test_delete_image_moves_it_to_the_trash_and_it_is_gone_for_cyberimage(api, images):
    image_id = images[0]["id"]
    response = api.delete(f"/api/image/{image_id}")
    assert response.status_code == 200 and response.json()["status"] == "success"
    assert Photo.objects.get(pk=image_id).deleted_at is not None
    assert api.get(f"/api/get_image/{image_id}").status_code == 404
    assert api.get(f"/api/image/{image_id}/metadata").status_code == 404
    assert api.delete(f"/api/image/{image_id}").status_code == 404
    assert [image["id"] for image in api.get("/api/gallery").json()["images"]] == [images[1]["id"]]
    # The app's own API still reaches it in the trash, to restore it.
    assert api.post(f"/api/photos/{image_id}/restore").status_code == 200


def test_gallery_pages(api, invokeai, sd1, follow, gallery_photo):
    gallery_photo()  # an upload is not one of CyberImage's images
    for _ in range(2):
        follow(int(api.post("/api/generate", cyberimage_body(num_images=2), format="json").json()["job_id"]))
    first = api.get("/api/gallery?page=1&per_page=3").json()
    assert (first["total"], first["page"], first["per_page"], first["total_pages"], first["has_more"]) == (
        4,
        1,
        3,
        2,
        True,
    )
    image = first["images"][0]
    assert {"id", "prompt", "model_id", "file_path", "settings", "thumbnail_url"} <= set(image)
    assert (image["prompt"], image["model_id"], image["settings"]["num_images"]) == (PROMPT, "tiny-sd1", 2)
    assert image["thumbnail_url"] == f"/api/get_image/{image['id']}?size=small"
    second = api.get("/api/gallery?page=2&per_page=3").json()
    assert (len(second["images"]), second["has_more"]) == (1, False)
    assert {i["id"] for i in first["images"]}.isdisjoint(i["id"] for i in second["images"])
    # CyberImage's API reads `limit`; its page sends `per_page`.
    assert len(api.get("/api/gallery?limit=1").json()["images"]) == 1
    assert api.get("/api/gallery?page=9").json()["images"] == []


@pytest.mark.parametrize("query", ["page=0", "page=x", "per_page=51", "per_page=-1", "page=99999999999999999999"])
def test_gallery_refuses_bad_pages(api, query):
    response = api.get(f"/api/gallery?{query}")
    assert response.status_code == 400 and response.json()["message"]


def test_gallery_queries_do_not_grow_with_the_page(api, invokeai, sd1, follow, django_assert_max_num_queries):
    follow(int(api.post("/api/generate", cyberimage_body(num_images=4), format="json").json()["job_id"]))
    with django_assert_max_num_queries(4):
        assert len(api.get("/api/gallery?per_page=4").json()["images"]) == 4


# --- GET queue ---


def test_queue_counts_and_details(api, invokeai, sd1, follow):
    done = api.post("/api/generate", cyberimage_body(), format="json").json()["job_id"]
    follow(int(done))
    cancelled = api.post("/api/generate", cyberimage_body(), format="json").json()["job_id"]
    api.post(f"/api/generation/steps/{cancelled}/cancel")
    api.post("/api/generate", cyberimage_body(), format="json")
    body = api.get("/api/queue").json()
    assert {key: body[key] for key in ("pending", "processing", "completed", "failed", "total")} == {
        "pending": 0,
        "processing": 1,
        "completed": 1,
        "failed": 1,
        "total": 3,
    }
    assert "recent_24h" not in body and body["invokeai"] is not None
    detailed = api.get("/api/queue?detailed=true").json()
    assert detailed["recent_24h"] == {"pending": 0, "processing": 1, "completed": 1, "failed": 1, "total": 3}
    assert detailed["models"]["tiny-sd1"]["total"] == 3
    assert detailed["failure_rate"] == 50.0 and detailed["avg_processing_time_seconds"] > 0


def test_queue_without_invokeai_still_counts(api, invokeai):
    invokeai.refuse_connections()
    body = api.get("/api/queue?detailed=true").json()
    assert body["total"] == 0 and body["invokeai"] is None and "not answering" in body["invokeai_error"]
    assert body["failure_rate"] == 0


# --- prefixes and authentication ---


def test_everything_is_under_the_cyberimage_prefix_with_urls_that_keep_it(api, invokeai, sd1, follow):
    response = api.post("/cyberimage/api/generate", cyberimage_body(), format="json")
    assert response.status_code == 202 and response.json()["status_url"].startswith("/cyberimage/api/status/")
    job = response.json()["job_id"]
    follow(int(job))
    image = api.get(f"/cyberimage/api/status/{job}").json()["images"][0]
    assert image["url"] == f"/cyberimage/api/get_image/{image['id']}"
    assert api.get(image["thumbnail_url"]).status_code == 200
    assert api.get(f"/cyberimage/api/image/{image['id']}/metadata").status_code == 200
    assert (
        api.get("/cyberimage/api/gallery?page=1&per_page=1")
        .json()["images"][0]["file_path"]
        .startswith("/cyberimage/api/")
    )
    assert api.get("/cyberimage/api/queue?detailed=true").json()["completed"] == 1
    assert api.delete(f"/cyberimage/api/image/{image['id']}").status_code == 200
    # Errors there are the API's JSON, not pages.
    missing = api.get("/cyberimage/api/nothing-here")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


ENDPOINTS = [
    ("get", "models"),
    ("post", "generate"),
    ("get", "status/1"),
    ("get", "get_image/00000000-0000-0000-0000-000000000000"),
    ("get", "image/00000000-0000-0000-0000-000000000000/metadata"),
    ("delete", "image/00000000-0000-0000-0000-000000000000"),
    ("get", "gallery"),
    ("get", "queue"),
]


@pytest.mark.parametrize(
    ("prefix", "method", "path"),
    # /api/models is the app's own model list, whose authentication the app's API tests cover.
    [
        (prefix, method, path)
        for prefix in PREFIXES
        for method, path in ENDPOINTS
        if (prefix, path) != ("/api", "models")
    ],
)
def test_nothing_is_open_without_authentication(anon_api, prefix, method, path):
    response = getattr(anon_api, method)(f"{prefix}/{path}", {}, format="json")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert not GenerationSession.objects.exists()


def test_a_token_or_a_session_with_csrf_is_accepted(user, invokeai, sd1):
    token = AuthToken.objects.create(user)[1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/cyberimage/api/models").status_code == 200
    assert client.post("/cyberimage/api/generate", cyberimage_body(), format="json").status_code == 202
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    assert browser.get("/cyberimage/api/queue").status_code == 200
    # A session's writes need the CSRF token, as everywhere in the API: CyberImage's page sends none.
    refused = browser.post("/cyberimage/api/generate", cyberimage_body(), content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["message"]
    assert GenerationStep.objects.count() == 1
