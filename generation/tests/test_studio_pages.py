"""The studio as a person uses it, in real Chromium against the fake InvokeAI: setting up img2img and inpainting
from the studio's own photo picker, the form following what was just done, placeholders that fit their column,
Generate disabled while a step is sent, and a studio that says there is nothing to generate on before one tries.

Every flow is clicked through at 1440x900 and at a 390x844 phone, with screenshots in test-artifacts/. No
django-q2 worker runs: the test plays the follower (see test_browser.py).
"""

from __future__ import annotations

import pytest
from django.db.models import F
from playwright.sync_api import expect

from backends.models import BackendSettings, PodSession
from conftest import ARTIFACTS
from generation import follower, services
from generation.models import GenerationSession, GenerationStep

from .conftest import step_request
from .test_browser import run_follower

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
SIZES = pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
# htmx reports a swap it could not make as an event, not as a JavaScript error: collect those too.
HTMX_ERRORS = """
window.htmxErrors = [];
for (const name of ["htmx:targetError", "htmx:swapError", "htmx:responseError", "htmx:oobErrorNoTarget"]) {
  document.addEventListener(name, (event) => window.htmxErrors.push(name));
}
"""


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    width = page.viewport_size["width"]
    page.screenshot(path=ARTIFACTS / f"studio-{name}-{width}.png", full_page=True)


def open_studio(page, url: str, viewport: dict) -> None:
    page.set_viewport_size(viewport)
    page.add_init_script(HTMX_ERRORS)
    page.goto(url)


def no_htmx_errors(page) -> None:
    assert page.evaluate("window.htmxErrors") == []


def fits_the_window(page) -> None:
    """Nothing of the studio reaches past the right edge of the window, and the page does not scroll sideways."""
    overflow = page.evaluate(
        """() => [...document.querySelectorAll('.studio *, dialog[open] *')]
            .filter((el) => el.getClientRects().length && el.getBoundingClientRect().right > window.innerWidth + 0.5)
            .map((el) => `${el.tagName}.${el.className} ${Math.round(el.getBoundingClientRect().right)}`)"""
    )
    assert overflow == []
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]


def pick(page, target: str, photo_id) -> None:
    """Open the picker for the start photo ("init") or the mask, and click the photo's tile."""
    page.locator(f'#step-form [data-action="pick-photo"][data-target="{target}"]').click()
    dialog = page.locator("#photo-picker")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#picker-title")).to_have_text(
        "Choose the start photo" if target == "init" else "Choose the mask"
    )
    tile = dialog.locator(f'.picker-tile[data-photo-id="{photo_id}"]')
    expect(tile).to_have_attribute("data-target", target)
    tile.click()
    expect(dialog).to_be_hidden()
    expect(page.locator(f'#step-form input[name="{target}_photo_id"]')).to_have_value(str(photo_id))
    expect(page.locator(f'#step-form img[data-preview="{target}"]')).to_be_visible()


def chosen(page, target: str) -> str:
    return page.locator(f'#step-form input[name="{target}_photo_id"]').input_value()


@pytest.fixture
def photos(gallery_photo):
    """Three start photos and two masks (white repaints), newest last."""
    starts = [gallery_photo(color=(40 * index, 120, 200)) for index in range(3)]
    masks = [gallery_photo(size=(640, 480), plain=True, color=(255, 255, 255)) for _ in range(2)]
    return starts, masks


@SIZES
def test_img2img_and_inpaint_set_up_from_the_picker_in_a_fresh_studio_and_in_a_session(
    logged_in_page, live_server, invokeai, enqueued, photos, viewport
):
    (first, second, third), (mask, other_mask) = photos
    page = logged_in_page
    open_studio(page, f"{live_server.url}/studio/", viewport)
    page.get_by_text("From a photo", exact=True).click()
    # Several times in a row: the picker keeps working, and each choice replaces the last.
    for photo in (first, second, third):
        pick(page, "init", photo.pk)
    expect(page.locator('[data-action="pick-photo"][data-target="init"]')).to_have_text("Change photo…")
    fits_the_window(page)
    page.get_by_text("Inpaint", exact=True).click()
    for photo in (mask, other_mask):
        pick(page, "mask", photo.pk)
    assert chosen(page, "init") == str(third.pk)
    page.locator('#step-form [data-action="pick-photo"][data-target="mask"]').click()
    expect(page.locator("#photo-picker .picker-tile").first).to_be_visible()
    shot(page, "picker-mask")
    fits_the_window(page)
    page.get_by_role("button", name="Close").click()

    page.fill("textarea[name=prompt]", "a red door")
    page.fill("input[name=batch_size]", "2")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url(f"{live_server.url}/studio/*/")
    step = GenerationStep.objects.get()
    assert step.parameters["mode"] == "inpaint"
    assert (step.parameters["init_photo_id"], step.parameters["mask_photo_id"]) == (str(third.pk), str(other_mask.pk))
    run_follower(page, invokeai, step, until_images=2)
    expect(page.locator("#step-panel .step-status")).to_have_text("Completed")
    shot(page, "inpainted")

    # Inside the session: the form starts from the last step, and the picker works the same, again and again.
    expect(page.locator("#step-form input[name=mode][value=inpaint]")).to_be_checked()
    assert (chosen(page, "init"), chosen(page, "mask")) == (str(third.pk), str(other_mask.pk))
    for photo in (first, second):
        pick(page, "init", photo.pk)
    pick(page, "mask", mask.pk)
    assert chosen(page, "init") == str(second.pk)
    page.get_by_role("button", name="Generate").click()
    page.locator("#step-panel h2", has_text="Step 2").wait_for()
    inpaint = GenerationStep.objects.get(position=2)
    assert (inpaint.parameters["init_photo_id"], inpaint.parameters["mask_photo_id"]) == (str(second.pk), str(mask.pk))
    run_follower(page, invokeai, inpaint, until_images=2)

    page.get_by_text("From a photo", exact=True).click()
    pick(page, "init", first.pk)
    page.get_by_role("button", name="Generate").click()
    page.locator("#step-panel h2", has_text="Step 3").wait_for()
    img2img = GenerationStep.objects.get(position=3)
    assert (img2img.parameters["mode"], img2img.parameters["init_photo_id"]) == ("img2img", str(first.pk))
    assert "mask_photo_id" not in img2img.parameters
    run_follower(page, invokeai, img2img, until_images=2)
    expect(page.locator("#step-panel .step-status")).to_have_text("Completed")
    shot(page, "img2img")
    fits_the_window(page)
    no_htmx_errors(page)


@SIZES
def test_the_form_follows_continue_and_only_derived_steps_say_where_they_come_from(
    logged_in_page, live_server, invokeai, enqueued, viewport
):
    page = logged_in_page
    open_studio(page, f"{live_server.url}/studio/", viewport)
    page.fill("textarea[name=prompt]", "a lighthouse at dusk")
    page.fill("input[name=batch_size]", "2")
    page.fill("input[name=steps]", "3")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url(f"{live_server.url}/studio/*/")
    first = GenerationStep.objects.get()
    run_follower(page, invokeai, first, until_images=2)
    page.locator("#step-panel .alternative").nth(1).get_by_role("button", name="Choose").click()
    picked = page.locator("#step-panel .alternative.selected").get_attribute("data-photo-id")

    page.locator("#step-panel form.continue input[name=strength]").fill("0.5")
    page.get_by_role("button", name="Continue from chosen").click()
    page.locator("#step-panel h2", has_text="Step 2").wait_for()
    # The form now shows what Continue made: img2img from the chosen image, at its strength.
    form = page.locator("#step-form")
    expect(form.locator("input[name=mode][value=img2img]")).to_be_checked()
    expect(form.locator("input[name=init_photo_id]")).to_have_value(picked)
    expect(form.locator("img[data-preview=init]")).to_be_visible()
    expect(form.locator("input[name=strength]")).to_have_value("0.5")
    expect(form.locator("textarea[name=prompt]")).to_have_value("a lighthouse at dusk")
    shot(page, "after-continue")
    second = GenerationStep.objects.get(position=2)
    run_follower(page, invokeai, second, until_images=2)

    # An unrelated text-to-image step from the form is not "from" anything.
    page.get_by_text("Text to image", exact=True).click()
    page.fill("textarea[name=prompt]", "a forest in fog")
    page.get_by_role("button", name="Generate").click()
    page.locator("#step-panel h2", has_text="Step 3").wait_for()
    run_follower(page, invokeai, GenerationStep.objects.get(position=3), until_images=2)
    history = page.locator("#history .history-step")
    expect(history).to_have_count(3)
    expect(history.nth(1)).to_contain_text("from step 1")
    expect(history.nth(0)).not_to_contain_text("from step")
    expect(history.nth(2)).not_to_contain_text("from step")
    assert GenerationStep.objects.get(position=3).parent_id is None
    fits_the_window(page)
    no_htmx_errors(page)


@SIZES
def test_generate_from_a_generated_photo_starts_from_its_recipe(
    logged_in_page, live_server, invokeai, enqueued, sd1, viewport, user
):
    session = services.session_create(owner=user)
    request = step_request(sd1, width=96, height=64, steps=3, batch_size=1, cfg_scale=6.5, scheduler="euler")
    step = services.step_create(owner=user, session_id=session.pk, request=request)
    invokeai.clock.advance(2)
    follower.step_poll(step_id=step.pk)
    photo = step.alternatives.get().photo

    page = logged_in_page
    open_studio(page, f"{live_server.url}/photos/{photo.pk}/", viewport)
    page.get_by_role("link", name="Generate from this photo").click()
    page.wait_for_url(f"{live_server.url}/studio/?photo={photo.pk}")
    form = page.locator("#step-form")
    expect(form.locator("textarea[name=prompt]")).to_have_value(step.prompt)
    expect(form.locator("textarea[name=negative_prompt]")).to_have_value("blurry")
    expect(form.locator("input[name=mode][value=img2img]")).to_be_checked()
    expect(form.locator("input[name=init_photo_id]")).to_have_value(str(photo.pk))
    expect(form.locator("input[name=width]")).to_have_value("96")
    expect(form.locator("input[name=height]")).to_have_value("64")
    expect(form.locator("input[name=steps]")).to_have_value("3")
    expect(form.locator("input[name=cfg_scale]")).to_have_value("6.5")
    expect(form.locator("select[name=scheduler]")).to_have_value("euler")
    shot(page, "from-generated-photo")
    fits_the_window(page)

    page.get_by_role("button", name="Generate").click()
    page.wait_for_url(f"{live_server.url}/studio/*/")
    made = GenerationSession.objects.exclude(pk=session.pk).get().steps.get()
    assert (made.parameters["mode"], made.parameters["init_photo_id"]) == ("img2img", str(photo.pk))
    assert (made.parameters["width"], made.parameters["height"], made.prompt) == (96, 64, step.prompt)


def live_poll_answered(page, event: str) -> None:
    """Wait (5 s at most) for the next `event` of the running step's live partial."""
    page.evaluate(
        """(event) => new Promise((done, fail) => {
             setTimeout(() => fail(new Error(`no ${event} of the live partial within 5 s`)), 5000);
             document.addEventListener(event, (e) => { if (e.detail.elt.id === "step-live") done(); });
           })""",
        event,
    )


@SIZES
def test_placeholders_fit_their_column_and_generate_is_disabled_while_sending(
    logged_in_page, live_server, invokeai, enqueued, sd1, viewport, user
):
    session = services.session_create(owner=user)
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, batch_size=4))
    invokeai.clock.advance(1.2)
    follower.step_poll(step_id=step.pk)

    page = logged_in_page
    open_studio(page, f"{live_server.url}/studio/{session.pk}/", viewport)
    expect(page.locator("#step-panel .alternative.placeholder")).to_have_count(3)

    def squares_fit() -> None:
        sizes = page.evaluate(
            """() => [...document.querySelectorAll('#step-panel .alternative')].map((figure) =>
                 [figure.getBoundingClientRect().width, figure.firstElementChild.getBoundingClientRect().width])"""
        )
        assert sizes and all(inner <= outer + 0.5 for outer, inner in sizes), sizes

    squares_fit()
    shot(page, "generating")

    # While a step is sent (InvokeAI holds the enqueue), Generate cannot be pressed again: not after the running
    # step's live partial has polled unchanged (204), nor after it has moved on and been drawn again meanwhile.
    hold = invokeai.hold_requests(r"/enqueue_batch$")
    generate = page.get_by_role("button", name="Generate")
    generate.click()
    hold.wait_reached()
    live_poll_answered(page, "htmx:afterRequest")
    expect(generate).to_be_disabled()
    GenerationStep.objects.filter(pk=step.pk).update(progress=F("progress") + 5)
    live_poll_answered(page, "htmx:afterSettle")
    expect(generate).to_be_disabled()
    page.locator("input[name=width]").press("Enter")
    hold.release()
    page.locator("#step-panel h2", has_text="Step 2").wait_for()
    expect(generate).to_be_enabled()
    assert session.steps.count() == 2

    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#step-panel .step-status")).to_have_text("Cancelled")
    expect(page.locator("#step-panel .alt-pending", has_text="Cancelled")).to_have_count(4)
    squares_fit()
    fits_the_window(page)
    shot(page, "cancelled")

    # Remix sends a step too: neither it nor Generate can be pressed meanwhile.
    hold = invokeai.hold_requests(r"/enqueue_batch$")
    remix = page.get_by_role("button", name="Remix")
    remix.click()
    hold.wait_reached()
    expect(remix).to_be_disabled()
    expect(generate).to_be_disabled()
    hold.release()
    page.locator("#step-panel h2", has_text="Step 3").wait_for()
    assert session.steps.count() == 3
    no_htmx_errors(page)


@SIZES
def test_without_a_pod_in_remote_mode_the_studio_says_so_before_generate(
    logged_in_page, live_server, invokeai, enqueued, viewport
):
    BackendSettings.objects.update_or_create(pk=1, defaults={"backend_mode": BackendSettings.Mode.REMOTE})
    page = logged_in_page
    open_studio(page, f"{live_server.url}/studio/", viewport)
    notice = page.locator("#backend-notice")
    expect(notice).to_contain_text("No RunPod pod is running")
    expect(notice.get_by_role("link", name="Open the backend page")).to_be_visible()
    generate = page.get_by_role("button", name="Generate")
    expect(generate).to_be_disabled()
    page.fill("textarea[name=prompt]", "a lighthouse")
    page.locator("input[name=width]").press("Enter")
    shot(page, "no-pod")
    fits_the_window(page)

    # The pod gets ready while the page is open: the notice goes, Generate comes back.
    PodSession.objects.create(pod_id="pod1", gpu_type="NVIDIA GeForce RTX 4090", state=PodSession.State.READY)
    expect(notice).to_be_hidden(timeout=15_000)
    expect(generate).to_be_enabled()
    assert not GenerationSession.objects.exists()
    no_htmx_errors(page)
