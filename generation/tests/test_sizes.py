"""Image sizes: each model base has a largest image (MAX_IMAGE_PIXELS overrides it), and a size that is not one
(0, negative, absurd, not a number) is refused instead of being replaced; through the service, the studio API,
CyberImage's /api/generate and the studio's form, and nothing is recorded for a refused size."""

from __future__ import annotations

import pytest

from gallery_project.errors import InvalidInput
from generation import services
from generation.models import CachedModel, GenerationSession, GenerationStep

from .conftest import step_request
from .test_views import HX, form_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def sdxl(invokeai) -> CachedModel:
    return CachedModel.objects.get(name="tiny-sdxl")


def refused(invokeai) -> None:
    assert not GenerationStep.objects.exists()
    assert [path for _, path in invokeai.requests if "enqueue" in path] == []


@pytest.mark.parametrize(
    ("model", "width", "height"),
    [("tiny-sdxl", 4000, 4000), ("tiny-sdxl", 2048, 2056), ("tiny-sd1", 1024, 1032), ("tiny-sd1", 4096, 512)],
)
def test_sizes_beyond_the_base_s_largest_are_refused(invokeai, session, model, width, height, user):
    model = CachedModel.objects.get(name=model)
    with pytest.raises(InvalidInput, match=rf"^{width}x{height} is too large for .* models: at most") as caught:
        services.step_create(owner=user, session_id=session.pk, request=step_request(model, width=width, height=height))
    assert caught.value.code == "image_too_large"
    refused(invokeai)


@pytest.mark.parametrize(("model", "width", "height"), [("tiny-sdxl", 2048, 2048), ("tiny-sd1", 1024, 1024)])
def test_the_largest_size_itself_is_allowed(invokeai, session, enqueued, model, width, height, user):
    model = CachedModel.objects.get(name=model)
    step = services.step_create(
        owner=user, session_id=session.pk, request=step_request(model, width=width, height=height)
    )
    assert (step.parameters["width"], step.parameters["height"]) == (width, height)


def test_max_image_pixels_sets_the_limit_for_every_base(invokeai, sdxl, sd1, session, enqueued, settings, user):
    settings.MAX_IMAGE_PIXELS = 512 * 512
    with pytest.raises(InvalidInput, match=r"at most 262,144 pixels \(512x512, or as many in another shape\)"):
        services.step_create(owner=user, session_id=session.pk, request=step_request(sdxl, width=1024, height=1024))
    settings.MAX_IMAGE_PIXELS = 2048 * 2048
    services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, width=2048, height=2048))


@pytest.mark.parametrize(
    ("width", "message"),
    [
        (0, r"width must be between 64 and 4096 \(got 0\)"),
        (-512, r"width must be between 64 and 4096 \(got -512\)"),
        (10**12, "too large"),
    ],
)
def test_a_size_that_is_not_one_is_refused_not_replaced(invokeai, sd1, session, width, message, user):
    with pytest.raises(InvalidInput, match=message):
        services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, width=width))
    refused(invokeai)


@pytest.fixture
def session_id(api, invokeai) -> int:
    return api.post("/api/generation/sessions/", {}, format="json").json()["id"]


@pytest.mark.parametrize(
    ("size", "code"),
    [
        ({"width": 4000, "height": 4000}, "image_too_large"),
        ({"width": 0}, "invalid_parameter"),
        ({"height": -64}, "invalid_parameter"),
        ({"width": "wide"}, "invalid"),
    ],
)
def test_the_studio_api_refuses_bad_sizes(api, session_id, sdxl, invokeai, size, code):
    body = {"prompt": "a lighthouse", "model_key": sdxl.key, **size}
    response = api.post(f"/api/generation/sessions/{session_id}/steps/", body, format="json")
    assert (response.status_code, response.json()["code"]) == (400, code)
    refused(invokeai)


@pytest.mark.parametrize(
    ("settings_body", "code"),
    [
        ({"width": 4000, "height": 4000}, "image_too_large"),
        ({"width": 0, "height": 1024}, "invalid_parameter"),
        ({"width": "abc"}, "invalid"),
        ({"num_images": "many"}, "invalid"),
    ],
)
def test_cyberimage_generate_refuses_bad_sizes_and_makes_no_session(api, invokeai, sdxl, settings_body, code):
    body = {"prompt": "a lighthouse", "model": "tiny-sdxl", "settings": settings_body}
    response = api.post("/api/generate", body, format="json")
    assert (response.status_code, response.json()["code"]) == (400, code)
    refused(invokeai)
    assert not GenerationSession.objects.exists()


def test_the_studio_form_refuses_a_zero_width_and_says_the_limit(owner_client, invokeai, sd1, sdxl):
    response = owner_client.post("/studio/new/", form_data(sd1, width=0), headers=HX)
    assert "width must be between 64 and 4096 (got 0)" in response.content.decode()
    response = owner_client.post("/studio/new/", form_data(sdxl, width=4000, height=4000), headers=HX)
    assert "4000x4000 is too large for SDXL models" in response.content.decode()
    assert not GenerationSession.objects.exists()

    fields = owner_client.get(f"/studio/model-fields/?model_key={sdxl.key}").content.decode()
    assert "Largest: 2048\N{MULTIPLICATION SIGN}2048 for SDXL models, or as many pixels in another shape." in fields
    assert 'data-max-pixels="4194304"' in fields
    fields = owner_client.get(f"/studio/model-fields/?model_key={sd1.key}").content.decode()
    assert "Largest: 1024\N{MULTIPLICATION SIGN}1024 for SD 1.x models" in fields
