"""A workflow in real Chromium against the fake InvokeAI: import its file, fill its form, run it, watch the step
finish on the session page. At 1440x900 and on a 390x844 phone; the screenshots are in test-artifacts/."""

from __future__ import annotations

import json

import pytest

from conftest import ARTIFACTS, log_in
from generation import follower
from generation.models import CachedModel, GenerationStep
from workflows import services

from .conftest import SD15, SD15_LORA, exposed, workflow_json

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


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


@pytest.mark.parametrize(("width", "height", "label"), [(1440, 900, "desktop"), (390, 844, "phone")])
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


@pytest.mark.parametrize(("width", "height", "label"), [(1440, 900, "desktop"), (390, 844, "phone")])
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
