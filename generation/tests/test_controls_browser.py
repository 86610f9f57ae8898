"""The studio controls in real Chromium against the fake InvokeAI, by clicks: a ControlNet step with a control
image chosen from the gallery, and an outpaint of a gallery photo, at 1440x900 and on a 390x844 phone."""

from __future__ import annotations

import pytest

from generation import models_cache
from generation.models import CachedModel, GenerationStep
from testing import fake_invokeai as fake

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = [{"width": 1440, "height": 900}, {"width": 390, "height": 844}]


@pytest.fixture(params=VIEWPORTS, ids=["desktop", "phone"])
def studio(request, logged_in_page, invokeai):
    invokeai.models = fake.recorded_models()
    models_cache.models_refresh()
    logged_in_page.set_viewport_size(request.param)
    return logged_in_page


def shot(page, name: str) -> None:
    page.screenshot(path=f"/tmp/controls-{name}-{page.viewport_size['width']}.png", full_page=True)


def pick(page, target: str, button: str) -> None:
    page.locator(f'[data-action="pick-photo"][data-target="{target}"]').click()
    page.locator("#photo-picker [data-action=picked]").first.click()
    page.locator(f'img[data-preview="{target}"]:not([hidden])').wait_for()


def test_a_controlnet_step_set_up_by_clicking(studio, live_server, gallery_photo, enqueued):
    page = studio
    photo = gallery_photo(size=(300, 200))
    page.goto(f"{live_server.url}/studio/")
    page.select_option("select[name=model_key]", label="tiny-sd1 · SD 1.x")
    page.locator(".controls-controlnet").wait_for()
    page.fill("textarea[name=prompt]", "a lighthouse at dusk")
    page.get_by_role("button", name="<tiny-sd1-ti>").click()
    assert page.locator("textarea[name=prompt]").input_value() == "a lighthouse at dusk <tiny-sd1-ti>"
    page.locator("input[name=lora]").check()
    page.fill(f"input[name=lora_weight_{CachedModel.objects.get(name='tiny-sd1-lora', available=True).key}]", "0.6")
    page.select_option("select[name=controlnet_key]", label="tiny-sd1-controlnet")
    pick(page, "control", "Choose an image…")
    page.select_option("select[name=preprocessor]", "canny_edge_detection")
    page.fill("input[name=control_end]", "0.8")
    page.fill("input[name=width]", "64")
    page.fill("input[name=height]", "64")
    page.fill("input[name=batch_size]", "1")
    shot(page, "controlnet-form")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url(f"{live_server.url}/studio/*/")
    step = GenerationStep.objects.get()
    control = step.parameters["controlnets"][0]
    assert (control["photo_id"], control["preprocessor"], control["end"]) == (
        str(photo.pk),
        "canny_edge_detection",
        0.8,
    )
    assert step.parameters["loras"][0]["weight"] == 0.6
    assert "<tiny-sd1-ti>" in step.prompt
    # The composer on the session page comes back with the same controls (remembered for SD 1.x).
    page.locator(".controls-controlnet").wait_for()
    assert page.locator("select[name=preprocessor]").input_value() == "canny_edge_detection"
    assert page.locator("input[name=lora]").is_checked()
    shot(page, "controlnet-session")


def test_an_outpaint_set_up_by_clicking(studio, live_server, gallery_photo, enqueued):
    page = studio
    photo = gallery_photo(size=(200, 160))
    page.goto(f"{live_server.url}/studio/")
    page.select_option("select[name=model_key]", label="tiny-sd1 · SD 1.x")
    page.fill("textarea[name=prompt]", "more of the coast")
    page.get_by_text("Outpaint", exact=True).click()
    pick(page, "init", "Choose a photo…")
    page.fill("input[name=outpaint_right]", "64")
    page.select_option("select[name=infill]", "color")
    page.fill("input[name=batch_size]", "1")
    shot(page, "outpaint-form")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url(f"{live_server.url}/studio/*/")
    step = GenerationStep.objects.get()
    assert step.parameters["mode"] == "outpaint" and step.parameters["init_photo_id"] == str(photo.pk)
    assert step.parameters["outpaint"] == {"left": 0, "right": 64, "top": 0, "bottom": 0, "infill": "color"}
    assert (step.parameters["width"], step.parameters["height"]) == (264, 160)
    shot(page, "outpaint-session")
