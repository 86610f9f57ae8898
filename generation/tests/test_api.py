"""The studio's API (spec section 5.2), against the fake InvokeAI (CyberImage's: test_cyberimage.py)."""

from __future__ import annotations

import pytest

from generation.models import GenerationStep
from photos.models import Photo

from .conftest import PROMPT

pytestmark = pytest.mark.django_db


@pytest.fixture
def body(sd1) -> dict:
    """The flat body the spec's integration test sends."""
    return {
        "prompt": PROMPT,
        "negative_prompt": "blurry",
        "model_key": sd1.key,
        "width": 64,
        "height": 64,
        "steps": 2,
        "cfg_scale": 7.5,
        "scheduler": "euler",
        "seed": 42,
        "batch_size": 2,
    }


@pytest.fixture
def session_id(api, invokeai) -> int:
    response = api.post("/api/generation/sessions/", {"title": "Lighthouses"}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def test_create_a_step_and_follow_it_to_its_images(api, session_id, body, follow, user):
    response = api.post(f"/api/generation/sessions/{session_id}/steps/", body, format="json")
    assert response.status_code == 202, response.json()
    accepted = response.json()
    assert set(accepted) == {"id", "session_id", "batch_id", "status", "status_url", "warnings"}
    assert (accepted["session_id"], accepted["status"]) == (session_id, "running")
    assert response["Location"] == accepted["status_url"] == f"/api/generation/steps/{accepted['id']}/status"

    running = api.get(accepted["status_url"]).json()
    assert (running["status"], running["images"]) == ("running", [])
    assert running["progress"] == {"percent": 0, "images_finished": 0, "images_total": 2, "items": []}

    follow(accepted["id"])
    status = api.get(f"/api/generation/steps/{accepted['id']}/status/").json()
    assert (status["status"], status["error_message"]) == ("completed", "")
    assert status["progress"] == {"percent": 100, "images_finished": 2, "images_total": 2, "items": []}
    assert status["retrieval_stats"] == {"pending": 0, "completed": 2, "failed": 0}
    assert [image["seed"] for image in status["images"]] == [42, 43]
    image = status["images"][0]
    assert image["thumbnail_url"] == f"/api/photos/{image['id']}/thumbnail" and image["selected"] is False
    thumbnail = api.get(image["thumbnail_url"])
    display = api.get(image["display_url"])
    for response in (thumbnail, display):
        # Read to the end, which closes the file (response.close() would also close the test's connection).
        assert b"".join(response.streaming_content)
        assert response.status_code == 200 and response["Content-Type"] == "image/webp"
    assert [item["status"] for item in status["items"]] == ["completed", "completed"]

    photo = api.get(f"/api/photos/{image['id']}/").json()
    assert (photo["seed"], photo["generation_prompt"], photo["generation_negative_prompt"]) == (42, PROMPT, "blurry")
    assert (photo["model_name"], photo["generation_params"]["scheduler"]) == ("tiny-sd1", "euler")
    assert user.studio_preference.steps == 2


def test_select_then_see_it_in_the_session(api, session_id, body, follow):
    step_id = api.post(f"/api/generation/sessions/{session_id}/steps", body, format="json").json()["id"]
    follow(step_id)
    images = api.get(f"/api/generation/steps/{step_id}/status").json()["images"]

    selected = api.post(f"/api/generation/steps/{step_id}/select", {"image_id": images[1]["id"]}, format="json")
    assert selected.status_code == 200
    assert [image["selected"] for image in selected.json()["images"]] == [False, True]

    session = api.get(f"/api/generation/sessions/{session_id}/").json()
    assert session["title"] == "Lighthouses" and session["entry_type"] == "scratch"
    [step] = session["steps"]
    assert (step["id"], step["prompt"], step["position"]) == (step_id, PROMPT, 1)
    assert [image["selected"] for image in step["images"]] == [False, True]
    listed = api.get("/api/generation/sessions/").json()
    assert [(item["id"], item["step_count"]) for item in listed] == [(session_id, 1)]


def test_session_detail_does_not_grow_queries_with_steps(api, session_id, body, follow, django_assert_max_num_queries):
    for _ in range(3):
        follow(api.post(f"/api/generation/sessions/{session_id}/steps", body, format="json").json()["id"])
    with django_assert_max_num_queries(6):
        assert len(api.get(f"/api/generation/sessions/{session_id}").json()["steps"]) == 3


def test_validation_errors_use_the_project_error_body(api, session_id, body):
    response = api.post(f"/api/generation/sessions/{session_id}/steps/", {**body, "width": 100}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid_parameter",
        "message": "width must be a multiple of 8 for sd-1 models (got 100; 96 or 104 would do).",
        "details": {"field": "width"},
    }
    missing = api.post(f"/api/generation/sessions/{session_id}/steps/", {"prompt": "x"}, format="json")
    assert missing.status_code == 400 and missing.json()["code"] == "invalid"
    assert api.post("/api/generation/sessions/999/steps/", body, format="json").status_code == 404


def test_invokeai_down_at_enqueue_answers_503_and_the_step_is_failed(api, session_id, body, invokeai):
    invokeai.refuse_connections()
    response = api.post(f"/api/generation/sessions/{session_id}/steps/", body, format="json")
    assert response.status_code == 503
    assert response.json()["code"] == "invokeai_unreachable"
    assert f"InvokeAI at {invokeai.url} is not answering" in response.json()["message"]
    step = api.get(f"/api/generation/sessions/{session_id}").json()["steps"][0]
    assert step["status"] == "failed" and "not answering" in step["error_message"]


def test_cancel_and_close_the_session(api, session_id, body, invokeai):
    step_id = api.post(f"/api/generation/sessions/{session_id}/steps/", body, format="json").json()["id"]
    busy = api.patch(f"/api/generation/sessions/{session_id}/", {"status": "completed"}, format="json")
    assert busy.status_code == 409 and busy.json()["code"] == "step_in_flight"
    invokeai.clock.advance(1.2)
    cancelled = api.post(f"/api/generation/steps/{step_id}/cancel/")
    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], len(cancelled.json()["images"])) == ("cancelled", 1)
    assert api.post(f"/api/generation/steps/{step_id}/cancel").status_code == 409
    done = api.patch(f"/api/generation/sessions/{session_id}", {"status": "completed"}, format="json")
    assert done.status_code == 200 and done.json()["status"] == "completed"
    closed = api.post(f"/api/generation/sessions/{session_id}/steps/", body, format="json")
    assert closed.status_code == 409 and closed.json()["code"] == "session_closed"


def test_retry_a_failed_download_per_photo_and_per_step(api, session_id, body, follow, invokeai, upload_photo):
    invokeai.fail_requests(r"^/api/v1/images/i/.+/full$", status=404, times=2)
    step_id = api.post(f"/api/generation/sessions/{session_id}/steps/", body, format="json").json()["id"]
    follow(step_id)
    status = api.get(f"/api/generation/steps/{step_id}/status").json()
    assert status["retrieval_stats"] == {"pending": 0, "completed": 0, "failed": 2}
    assert status["images"][0]["thumbnail_url"] is None and status["images"][0]["next_retry_at"]

    first, second = (image["id"] for image in status["images"])
    retried = api.post(f"/api/photos/{first}/retry/")
    assert retried.status_code == 200
    assert (retried.json()["retrieval_status"], retried.json()["retrieval_attempts"]) == ("completed", 1)
    again = api.post(f"/api/photos/{first}/retry")
    assert again.status_code == 409 and again.json()["code"] == "nothing_to_retry"

    per_step = api.post(f"/api/generation/steps/{step_id}/retry-retrievals/").json()
    assert per_step["stored"] == 1 and per_step["step"]["images_retrieved"] == 2
    assert Photo.objects.get(pk=second).is_available
    assert api.post(f"/api/photos/{upload_photo().pk}/retry/").status_code == 409


@pytest.fixture
def upload_photo(gallery_photo):
    return gallery_photo


def test_anonymous_callers_get_401(anon_api):
    assert anon_api.get("/api/generation/sessions/").status_code == 401
    assert anon_api.post("/api/generate", {}, format="json").status_code == 401
    assert not GenerationStep.objects.exists()


def test_the_schema_documents_the_step_s_progress_object_with_a_running_example(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    components = schema["components"]["schemas"]
    assert components["Step"]["properties"]["progress"]["allOf"] == [{"$ref": "#/components/schemas/StepProgress"}]
    progress = components["StepProgress"]["properties"]
    assert set(progress) == {"percent", "images_finished", "images_total", "items"}
    assert progress["items"]["items"] == {"$ref": "#/components/schemas/LiveItem"}
    assert "preview_url" in components["LiveItem"]["properties"]
    answer = schema["paths"]["/api/generation/steps/{id}/status/"]["get"]["responses"]["200"]["content"]
    [example] = answer["application/json"]["examples"].values()
    assert example["value"]["progress"]["items"][0]["preview_url"].startswith("/api/generation/steps/42/previews/")
