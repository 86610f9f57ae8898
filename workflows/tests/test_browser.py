"""A workflow in real Chromium against the fake InvokeAI: import its file, fill its form, run it, watch the step
finish on the session page. At 1440x900 and on a 390x844 phone; the screenshots are in test-artifacts/."""

from __future__ import annotations

import json

import pytest

from conftest import ARTIFACTS, log_in
from generation import follower
from generation import views as generation_views
from generation.models import CachedModel, GenerationStep
from workflows import services

from .conftest import SD15, SD15_LORA, exposed, resize_workflow, workflow_json

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SIZES = pytest.mark.parametrize(("width", "height", "label"), [(1440, 900, "desktop"), (390, 844, "phone")])


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"workflows-{name}.png", full_page=True)


def open_page(browser, live_server, client, user, width: int, height: int):
    """A signed-in page at this size, and the list its script errors go to."""
    context = browser.new_context(viewport={"width": width, "height": height})
    log_in(context, live_server, client, user)
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, errors


def finish(page, invokeai, step: GenerationStep, images: int) -> None:
    """Let the fake InvokeAI make the step's images, and wait for the session page to show them."""
    for _ in range(10):
        invokeai.clock.advance(1)
        follower.step_poll(step_id=step.pk)
    page.locator("#step-panel .step-status", has_text="Completed").wait_for()
    page.wait_for_function(
        "(n) => [...document.querySelectorAll('#step-panel .alternative img')].filter((i) => i.naturalWidth).length"
        " >= n",
        arg=images,
    )


@SIZES
def test_import_a_file_fill_the_form_and_run_it(
    browser, live_server, client, user, invokeai, enqueued, tmp_path, width, height, label
):
    context, page, errors = open_page(browser, live_server, client, user, width, height)
    path = tmp_path / "lora.json"
    path.write_text(json.dumps(workflow_json(SD15_LORA)))

    page.goto(f"{live_server.url}/studio/workflows/")
    page.set_input_files("input[name=file]", str(path))
    page.get_by_role("button", name="Import").click()
    page.locator("h1", has_text="Text to Image - SD1.5, LoRA").wait_for()
    shot(page, f"{label}-form")

    sd1 = CachedModel.objects.get(name="tiny-sd1")
    lora = CachedModel.objects.get(name="tiny-sd1-lora")
    page.select_option(f'select[name="{exposed(SD15_LORA, "model")}"]', sd1.key)
    page.select_option(f'select[name="{exposed(SD15_LORA, "lora")}"]', lora.key)
    page.fill(f'input[name="{exposed(SD15_LORA, "weight")}"]', "0.6")
    page.fill(f'textarea[name="{exposed(SD15_LORA, "prompt")}"]', "a snow leopard")
    page.fill(f'input[name="{exposed(SD15_LORA, "width")}"]', "64")
    page.fill(f'input[name="{exposed(SD15_LORA, "height")}"]', "64")
    page.fill("input[name=runs]", "2")
    page.keyboard.press("Tab")
    page.get_by_role("button", name="Run").click()

    page.wait_for_url(f"{live_server.url}/studio/*/")
    step = GenerationStep.objects.get()
    assert step.parameters["workflow"] == "Text to Image - SD1.5, LoRA" and step.batch_size == 2
    assert step.parameters["values"][exposed(SD15_LORA, "weight")] == 0.6
    page.locator("#step-panel .step-status", has_text="Running").wait_for()
    finish(page, invokeai, step, 2)
    shot(page, f"{label}-done")
    photo = step.alternatives.first().photo
    assert photo.generation_prompt == "a snow leopard"

    page.goto(f"{live_server.url}/photos/{photo.pk}/")
    page.get_by_role("link", name="Open in the studio").click()
    page.locator("h1", has_text="Text to Image - SD1.5, LoRA").wait_for()
    assert page.locator(f'textarea[name="{exposed(SD15_LORA, "prompt")}"]').input_value() == "a snow leopard"
    assert page.locator(f'select[name="{exposed(SD15_LORA, "lora")}"]').input_value() == lora.key
    context.close()
    assert not errors


@SIZES
def test_several_prompts_make_one_image_each(
    browser, live_server, client, user, invokeai, enqueued, width, height, label
):
    context, page, errors = open_page(browser, live_server, client, user, width, height)
    workflow = services.workflow_import(owner=user, document=workflow_json(SD15))
    prompt = exposed(SD15, "prompt")

    page.goto(f"{live_server.url}/studio/workflows/{workflow.pk}/")
    page.select_option(f'select[name="{exposed(SD15, "model")}"]', CachedModel.objects.get(name="tiny-sd1").key)
    page.fill(f'input[name="{exposed(SD15, "width")}"]', "64")
    page.fill(f'input[name="{exposed(SD15, "height")}"]', "64")
    several = page.locator(".form-field", has=page.locator(f'textarea[name="{prompt}"]')).locator("summary")
    several.click()
    box = page.locator(f'textarea[name="batch:{prompt}"]')
    box.click()
    page.keyboard.type("a red fox")
    page.keyboard.press("Enter")
    page.keyboard.type("a grey wolf")
    shot(page, f"{label}-batch-form")
    page.get_by_role("button", name="Run").click()

    page.wait_for_url(f"{live_server.url}/studio/*/")
    step = GenerationStep.objects.get()
    assert step.batch_size == 2 and step.parameters["batch"] == {prompt: ["a red fox", "a grey wolf"]}
    finish(page, invokeai, step, 2)
    shot(page, f"{label}-batch-done")
    prompts = [alternative.photo.generation_prompt for alternative in step.alternatives.order_by("index")]
    assert prompts == ["a red fox", "a grey wolf"]
    context.close()
    assert not errors


@pytest.fixture
def three_photos(gallery_photo, monkeypatch):
    """Three gallery photos (newest last) and a picker that shows two at a time, so "More photos" brings the third."""
    monkeypatch.setattr(generation_views, "PICKER_SIZE", 2)
    return [gallery_photo(size=(200, 150), color=(60 * index, 90, 200 - 60 * index)) for index in range(3)]


def open_resize_page(browser, live_server, client, user, width: int, height: int):
    """The page of a workflow with an image field, at this size."""
    context, page, errors = open_page(browser, live_server, client, user, width, height)
    workflow = services.workflow_import(owner=user, document=resize_workflow())
    page.goto(f"{live_server.url}/studio/workflows/{workflow.pk}/")
    return context, page, errors


def open_picker(page, target: str):
    page.locator(f'[data-action="pick-photo"][data-target="{target}"]').click()
    dialog = page.locator("#photo-picker")
    dialog.locator(".picker-tile").first.wait_for()
    return dialog


def more_photos(dialog, photo) -> None:
    dialog.get_by_role("button", name="More photos").click()
    dialog.locator(f'.picker-tile[data-photo-id="{photo.pk}"]').wait_for()


@SIZES
def test_an_image_field_is_picked_in_the_gallery_picker_and_run(
    browser, live_server, client, user, invokeai, enqueued, three_photos, width, height, label
):
    oldest, middle, newest = three_photos
    context, page, errors = open_resize_page(browser, live_server, client, user, width, height)

    # Escape closes the dialog and sets nothing.
    dialog = open_picker(page, "resize.image")
    assert dialog.locator("#picker-title").text_content() == "Choose the photo for Photo"
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    assert page.locator('input[name="resize.image"]').input_value() == ""

    # The newest two first; "More photos" pages to the oldest, which a click picks.
    dialog = open_picker(page, "resize.image")
    assert [dialog.locator(".picker-tile").nth(index).get_attribute("data-photo-id") for index in range(2)] == [
        str(newest.pk),
        str(middle.pk),
    ]
    assert dialog.locator(".picker-tile").count() == 2
    shot(page, f"{label}-picker")
    more_photos(dialog, oldest)
    dialog.locator(f'.picker-tile[data-photo-id="{oldest.pk}"]').click()
    dialog.wait_for(state="hidden")
    assert page.locator('input[name="resize.image"]').input_value() == str(oldest.pk)
    page.wait_for_function("() => document.querySelector('img[data-preview=\"resize.image\"]').naturalWidth > 0")

    # Tiles are buttons: the keyboard changes the choice.
    dialog = open_picker(page, "resize.image")
    dialog.locator(f'.picker-tile[data-photo-id="{newest.pk}"]').focus()
    page.keyboard.press("Enter")
    dialog.wait_for(state="hidden")
    assert page.locator('input[name="resize.image"]').input_value() == str(newest.pk)
    assert (
        page.locator('[data-action="pick-photo"][data-target="resize.image"]').text_content().strip() == "Change photo…"
    )
    shot(page, f"{label}-picked")

    page.get_by_role("button", name="Run").click()
    page.wait_for_url(f"{live_server.url}/studio/*/")
    step = GenerationStep.objects.get()
    assert step.parameters["values"]["resize.image"] == str(newest.pk)
    finish(page, invokeai, step, 1)
    shot(page, f"{label}-picked-done")
    context.close()
    assert not errors


@SIZES
def test_several_photos_picked_in_the_gallery_picker_run_once_each(
    browser, live_server, client, user, invokeai, enqueued, three_photos, width, height, label
):
    oldest, middle, newest = three_photos
    context, page, errors = open_resize_page(browser, live_server, client, user, width, height)
    page.locator(".form-field", has=page.locator('input[name="resize.image"]')).locator("summary").click()

    # Each click adds a photo and the dialog stays open; a second click takes it off again; "More photos" keeps them.
    dialog = open_picker(page, "batch:resize.image")
    for photo in (newest, middle, newest):
        dialog.locator(f'.picker-tile[data-photo-id="{photo.pk}"]').click()
    assert dialog.locator('.picker-tile[aria-pressed="true"]').count() == 1
    more_photos(dialog, oldest)
    dialog.locator(f'.picker-tile[data-photo-id="{oldest.pk}"]').click()
    assert dialog.locator("[data-picker-count]").text_content() == "2 photos chosen"
    shot(page, f"{label}-several-picker")
    dialog.get_by_role("button", name="Done").click()
    dialog.wait_for(state="hidden")
    chosen = page.locator('input[name="batch:resize.image"]')
    assert [chosen.nth(index).input_value() for index in range(chosen.count())] == [str(middle.pk), str(oldest.pk)]

    # Reopened, the chosen ones show as pressed; Escape closes it; "Remove" takes one off the list.
    dialog = open_picker(page, "batch:resize.image")
    assert dialog.locator(f'.picker-tile[data-photo-id="{middle.pk}"]').get_attribute("aria-pressed") == "true"
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    dialog = open_picker(page, "batch:resize.image")
    dialog.locator(f'.picker-tile[data-photo-id="{newest.pk}"]').click()
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Remove").nth(1).click()
    assert [chosen.nth(index).input_value() for index in range(chosen.count())] == [str(middle.pk), str(newest.pk)]
    shot(page, f"{label}-several-form")

    page.get_by_role("button", name="Run").click()
    page.wait_for_url(f"{live_server.url}/studio/*/")
    step = GenerationStep.objects.get()
    assert step.batch_size == 2 and step.parameters["batch"] == {"resize.image": [str(middle.pk), str(newest.pk)]}
    finish(page, invokeai, step, 2)
    shot(page, f"{label}-several-done")
    made = [
        alternative.photo.generation_params["values"]["resize.image"]
        for alternative in step.alternatives.order_by("index")
    ]
    assert made == [str(middle.pk), str(newest.pk)]
    context.close()
    assert not errors
