"""The studio controls in real Chromium against the fake InvokeAI, by clicks: a ControlNet step with a control
image chosen from the gallery, one with an uploaded control image whose processed image the step keeps, an
outpaint of a gallery photo by pixels and to an aspect ratio, and an upscale, at 1440x900 and on a 390x844 phone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from generation import models_cache
from generation.models import CachedModel, GenerationStep
from photos.models import Photo
from photos.tests.images import image_bytes
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


@pytest.fixture
def outpaint_of(studio, live_server, gallery_photo):
    """Open the studio on an outpaint of a new gallery photo of this size, by clicking; return the photo."""

    def open_outpaint(size: tuple[int, int]) -> Photo:
        photo = gallery_photo(size=size)
        studio.goto(f"{live_server.url}/studio/")
        studio.select_option("select[name=model_key]", label="tiny-sd1 · SD 1.x")
        studio.fill("textarea[name=prompt]", "more of the coast")
        studio.get_by_text("Outpaint", exact=True).click()
        pick(studio, "init", "Choose a photo…")
        return photo

    return open_outpaint


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


def test_an_outpaint_set_up_by_clicking(studio, outpaint_of, live_server, enqueued):
    page = studio
    photo = outpaint_of((200, 160))
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


def test_a_controlnet_step_with_an_uploaded_control_image_and_its_processed_image(
    studio, live_server, follow, tmp_path
):
    """Upload a control image into the slot, choose canny, add and remove a second slot, be warned of an
    unknown embedding while typing, generate on the fake, and see the processed image the step kept."""
    page = studio
    upload = tmp_path / "pose.png"
    upload.write_bytes(image_bytes("PNG", (240, 180), color=(200, 60, 30)))
    page.goto(f"{live_server.url}/studio/")
    page.select_option("select[name=model_key]", label="tiny-sd1 · SD 1.x")
    page.locator(".controls-controlnet").wait_for()
    page.locator("textarea[name=prompt]").press_sequentially("a lighthouse, <nobody-knows>")
    warning = page.locator("#prompt-warnings .warning")
    warning.wait_for()
    assert "<nobody-knows> matches no installed sd-1 embedding" in warning.inner_text()
    page.fill("textarea[name=prompt]", "")
    page.locator("textarea[name=prompt]").press_sequentially("a lighthouse at dusk")
    expect(warning).to_have_count(0)

    slot = page.locator(".controlnet-slot").first
    slot.locator("select[name=controlnet_key]").select_option(label="tiny-sd1-controlnet")
    slot.locator("input[name=control_file]").set_input_files(upload)
    page.locator('.controlnet-slot img[data-preview="control"]:not([hidden])').wait_for()
    uploaded = Photo.objects.get(image_category="control")
    assert slot.locator("input[name=control_photo_id]").input_value() == str(uploaded.pk)
    slot.locator("select[name=preprocessor]").select_option("canny_edge_detection")
    # A second slot, added and removed again by clicking.
    page.get_by_role("button", name="Add a ControlNet").click()
    expect(page.locator(".controlnet-slot")).to_have_count(2)
    shot(page, "controlnet-two-slots")
    # The desktop composer scrolls inside its column: the slots themselves, as they show there.
    page.locator(".controls-controlnet").screenshot(
        path=f"/tmp/controls-controlnet-slots-{page.viewport_size['width']}.png"
    )
    page.locator(".controlnet-slot").nth(1).get_by_role("button", name="Remove").click()
    expect(page.locator(".controlnet-slot")).to_have_count(1)
    page.fill("input[name=width]", "64")
    page.fill("input[name=height]", "64")
    page.fill("input[name=batch_size]", "1")
    shot(page, "controlnet-upload-form")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url(f"{live_server.url}/studio/*/")
    step = GenerationStep.objects.get()
    assert [(c["photo_id"], c["preprocessor"]) for c in step.parameters["controlnets"]] == [
        (str(uploaded.pk), "canny_edge_detection")
    ]
    follow(step.pk)
    processed = Photo.objects.exclude(pk=uploaded.pk).get(image_category="control")
    page.reload()
    after = page.locator('#step-panel img[alt="Control image 1 after canny_edge_detection"]')
    after.wait_for()
    assert str(processed.pk) in after.get_attribute("src")
    shot(page, "controlnet-processed")
    # The image's lightbox recipe shows the control image and what canny made of it, each a link to its photo.
    page.goto(f"{live_server.url}/photos/{step.alternatives.get().photo_id}/")
    page.locator(f'.recipe a[href="/photos/{processed.pk}/"] img').wait_for()
    shot(page, "controlnet-lightbox")


def test_an_outpaint_to_an_aspect_ratio_set_up_by_clicking(studio, outpaint_of, live_server, enqueued):
    page = studio
    photo = outpaint_of((160, 160))
    page.select_option("select[name=outpaint_aspect]", "16:9")
    # The ratio stands for the sides, which are then not to be typed in.
    expect(page.locator("input[name=outpaint_left]")).to_be_disabled()
    page.fill("input[name=batch_size]", "1")
    shot(page, "outpaint-ratio-form")
    page.locator('fieldset[data-mode-show="outpaint"]').screenshot(
        path=f"/tmp/controls-outpaint-ratio-{page.viewport_size['width']}.png"
    )
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url(f"{live_server.url}/studio/*/")
    step = GenerationStep.objects.get()
    assert step.parameters["init_photo_id"] == str(photo.pk)
    assert step.parameters["outpaint"] == {
        "left": 64,
        "right": 64,
        "top": 0,
        "bottom": 0,
        "infill": "tile",
        "aspect_ratio": "16:9",
    }
    assert (step.parameters["width"], step.parameters["height"]) == (288, 160)
    page.select_option("select[name=outpaint_aspect]", "")
    expect(page.locator("input[name=outpaint_left]")).to_be_enabled()


def test_an_upscale_set_up_by_clicking(studio, live_server, gallery_photo, enqueued, invokeai):
    invokeai.models = fake.every_type_models()
    models_cache.models_refresh()
    page = studio
    photo = gallery_photo(size=(120, 100))
    page.goto(f"{live_server.url}/studio/")
    page.get_by_text("Upscale", exact=True).click()
    # Nothing of a generation shows: no prompt, model, size or seed.
    expect(page.locator("textarea[name=prompt]")).to_be_hidden()
    expect(page.locator("#model-fields")).to_be_hidden()
    pick(page, "init", "Choose a photo…")
    shot(page, "upscale-form")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url(f"{live_server.url}/studio/*/")
    step = GenerationStep.objects.get()
    upscaler = CachedModel.objects.get(type="spandrel_image_to_image")
    assert (step.parameters["mode"], step.parameters["upscaler_key"]) == ("upscale", upscaler.key)
    assert step.parameters["init_photo_id"] == str(photo.pk)
    expect(page.locator("#step-panel .step-recipe")).to_contain_text("upscale of 120")
    shot(page, "upscale-session")


def test_the_infill_choices_follow_what_the_server_has(studio, outpaint_of, invokeai, enqueued):
    """PatchMatch is offered while InvokeAI says it has it; once it says it has none (or nothing), it is gone and
    the form falls back to tile."""
    page = studio
    outpaint_of((160, 160))
    infill = page.locator("select[name=infill]")
    expect(infill.locator("option")).to_have_text(
        ["tile", "color", "cv2", "patchmatch", "lama (downloads its model on first use: needs internet)"]
    )
    infill.select_option("patchmatch")
    shot(page, "infill-with-patchmatch")
    for said in (False, None):
        invokeai.patchmatch = said
        models_cache.models_refresh()
        outpaint_of((160, 160))
        expect(infill.locator("option")).to_have_text(
            ["tile", "color", "cv2", "lama (downloads its model on first use: needs internet)"]
        )
        assert infill.input_value() == "tile"
        expect(page.locator("[data-infill-note]")).to_have_count(1 if said is None else 0)
    shot(page, "infill-without-patchmatch")
