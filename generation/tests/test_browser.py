"""The studio in real Chromium against the fake InvokeAI: generate two alternatives, choose one, continue from it
with img2img, and see both steps in the history.

No django-q2 worker runs here: the test thread plays the follower, calling the real `step_poll` between moves
of the fake's clock, while the page polls the step panel as it would with a worker.
"""

from __future__ import annotations

import pytest

from conftest import ARTIFACTS
from generation import follower
from generation.models import GenerationStep

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"studio-{name}.png", full_page=True)


def run_follower(page, invokeai, step: GenerationStep, *, until_images: int) -> None:
    """Let InvokeAI make images one second at a time, the follower store them, and the page catch up each time."""
    for _ in range(20):
        invokeai.clock.advance(1)
        follower.step_poll(step_id=step.pk)
        stored = step.alternatives.filter(photo__retrieval_status="completed").count()
        page.wait_for_function(
            f"() => [...document.querySelectorAll('#step-panel .alternative img')].filter((i) => i.naturalWidth).length"
            f" >= {stored}"
        )
        if stored >= until_images:
            return
    raise AssertionError(f"the follower never stored {until_images} images")


def test_generate_choose_continue_and_see_the_history(logged_in_page, live_server, invokeai, enqueued):
    page = logged_in_page
    page.goto(f"{live_server.url}/studio/")
    page.get_by_role("link", name="Studio", exact=True).wait_for()
    assert page.locator("select[name=model_key] option").first.inner_text() == "tiny-sd1 · SD 1.x"
    assert page.locator("input[name=width]").input_value() == "512"
    shot(page, "empty")

    page.fill("textarea[name=prompt]", "a lighthouse at dusk, oil painting")
    page.fill("input[name=batch_size]", "2")
    page.fill("input[name=steps]", "8")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url(f"{live_server.url}/studio/*/")
    first = GenerationStep.objects.get()
    assert (first.batch_size, first.parameters["steps"], first.status) == (2, 8, "running")
    assert enqueued == [first.pk]
    page.locator("#step-panel .step-status", has_text="Running").wait_for()
    assert page.locator("#step-panel .alternative.placeholder").count() == 2
    shot(page, "running")

    run_follower(page, invokeai, first, until_images=1)
    page.locator("#step-panel progress.progress[value='50']").wait_for()
    shot(page, "first-alternative")
    run_follower(page, invokeai, first, until_images=2)
    page.locator("#step-panel .step-status", has_text="Completed").wait_for()
    # Finished: the panel no longer polls.
    assert page.locator("#step-panel[hx-trigger]").count() == 0
    shot(page, "alternatives")

    page.locator("#step-panel .alternative").nth(1).get_by_role("button", name="Choose").click()
    page.locator("#step-panel .alternative.selected").wait_for()
    chosen = page.locator("#step-panel .alternative.selected").get_attribute("data-photo-id")
    assert str(first.alternatives.get(selected=True).photo_id) == chosen

    page.locator("#step-panel form.continue input[name=strength]").fill("0.5")
    page.get_by_role("button", name="Continue from chosen").click()
    page.locator("#step-panel h2", has_text="Step 2").wait_for()
    second = GenerationStep.objects.get(position=2)
    assert second.parameters["mode"] == "img2img" and second.parameters["init_photo_id"] == chosen
    assert (second.parent_id, second.parameters["strength"]) == (first.pk, 0.5)
    run_follower(page, invokeai, second, until_images=2)
    page.locator("#step-panel .step-status", has_text="Completed").wait_for()

    history = page.locator("#history .history-step")
    history.nth(1).locator("img.history-thumb").wait_for()
    assert history.count() == 2
    assert "Step 2" in history.nth(0).inner_text() and "from step 1" in history.nth(0).inner_text()
    assert "Step 1" in history.nth(1).inner_text() and "a lighthouse at dusk" in history.nth(1).inner_text()
    page.wait_for_function("() => document.querySelector('#history .history-step img').naturalWidth > 0")
    shot(page, "history")

    # An earlier step can be brought back from the history.
    history.nth(1).locator("a").click()
    page.locator("#step-panel h2", has_text="Step 1").wait_for()
    assert page.locator("#step-panel .alternative.selected").get_attribute("data-photo-id") == chosen


@pytest.mark.parametrize("viewport", [{"width": 1440, "height": 900}, {"width": 390, "height": 844}])
def test_the_running_step_shows_each_alternative_forming(
    logged_in_page, live_server, invokeai, enqueued, viewport, monkeypatch
):
    """InvokeAI's progress events (handed to the real handler here, as the listener would) make a preview and a
    progress bar per alternative, replaced in place twice a second; the real image takes the preview's place."""
    from generation import events

    monkeypatch.setattr(events, "PREVIEW_EVERY", 0)
    page = logged_in_page
    page.set_viewport_size(viewport)
    invokeai.seconds_per_item = 10
    page.goto(f"{live_server.url}/studio/")
    page.fill("textarea[name=prompt]", "a lighthouse at dusk, oil painting")
    page.fill("input[name=batch_size]", "2")
    page.fill("input[name=width]", "256")
    page.fill("input[name=height]", "256")
    page.fill("input[name=steps]", "4")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url(f"{live_server.url}/studio/*/")
    step = GenerationStep.objects.get()
    seen = 0

    def deliver(seconds: float) -> None:
        nonlocal seen
        invokeai.clock.advance(seconds)
        invokeai.pump()
        for name, payload in invokeai.events_sent[seen:]:
            events.event_handle(name=name, payload=payload)
        seen = len(invokeai.events_sent)

    preview = page.locator("#step-live .alternative.live img.preview")
    sources = []
    for percent in (25, 50, 75):
        deliver(2)
        page.locator(f"#step-live .alternative.live progress.item-progress[value='{percent}']").wait_for()
        page.wait_for_function("() => document.querySelector('#step-live img.preview')?.naturalWidth > 0")
        sources.append(preview.get_attribute("src"))
        if percent == 50:
            name = "wide" if viewport["width"] > 1000 else "phone"
            page.locator("#step-panel").scroll_into_view_if_needed()
            page.screenshot(path=f"/tmp/live-studio-{name}.png")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=ARTIFACTS / f"studio-live-{name}.png", full_page=True)
    # The preview replaced itself at each step, in the same slot, and the step's bar moved with it.
    assert len(set(sources)) == 3
    # The step's bar is a partial of its own, refreshed on its own beat: wait for it rather than read it at once
    # (read at once, it still said 25 on a loaded CI machine).
    page.locator("#step-progress progress.progress[value='37']").wait_for()
    assert page.locator("#step-live .alternative.placeholder").count() == 2

    deliver(6)
    page.wait_for_function(
        "() => [...document.querySelectorAll('#step-panel .alternative:not(.placeholder) img')]"
        ".filter((i) => i.naturalWidth).length >= 1"
    )
    # The first image is in; the second alternative is forming now.
    page.locator("#step-live .alternative.live progress.item-progress").wait_for()
    assert page.locator("#step-live .alternative.placeholder").count() == 1
    deliver(10)
    page.locator("#step-panel .step-status", has_text="Completed").wait_for()
    assert page.locator("img.preview").count() == 0
    assert page.locator("#step-live").count() == 0
    assert step.alternatives.count() == 2


@pytest.mark.parametrize("viewport", [{"width": 1440, "height": 900}, {"width": 390, "height": 844}])
def test_the_queue_page_cancels_pauses_and_resumes(logged_in_page, live_server, invokeai, enqueued, user, viewport):
    from generation import services
    from generation.models import CachedModel

    from .conftest import step_request

    sd1 = CachedModel.objects.get(name="tiny-sd1")
    session = services.session_create(owner=user, title="Queued")
    steps = [
        services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, batch_size=2))
        for _ in range(3)
    ]
    page = logged_in_page
    page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/studio/")
    # The top bar's indicator counts them, and leads to the queue page.
    page.locator("#queue-indicator .queue-count", has_text="3").wait_for()
    if viewport["width"] < 1000:
        assert page.locator("#queue-indicator").is_visible()
    page.locator("#queue-indicator").click()
    page.wait_for_url(f"{live_server.url}/queue/")
    assert page.locator(".queue-step").count() == 3
    page.locator(".queue-counts dd").first.wait_for()
    name = "wide" if viewport["width"] > 1000 else "phone"
    page.screenshot(path=f"/tmp/live-queue-{name}.png", full_page=True)

    page.locator(f".queue-step[data-step-id='{steps[0].pk}']").get_by_role("button", name="Cancel").click()
    page.locator(f".queue-step[data-step-id='{steps[0].pk}']").wait_for(state="detached")
    assert GenerationStep.objects.get(pk=steps[0].pk).status == "cancelled"

    page.get_by_role("button", name="Pause InvokeAI").click()
    page.locator(".processor-state", has_text="paused").wait_for()
    assert invokeai.paused
    page.get_by_role("button", name="Resume InvokeAI").click()
    page.locator(".processor-state", has_text="running").wait_for()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel all").click()
    page.locator(".queue-empty").wait_for()
    assert set(GenerationStep.objects.values_list("status", flat=True)) == {"cancelled"}
    page.locator("#queue-indicator:not(.busy)").wait_for(timeout=30_000)


@pytest.mark.parametrize("viewport", [{"width": 1440, "height": 900}, {"width": 390, "height": 844}])
def test_paint_a_mask_inpaint_and_reuse_it(
    logged_in_page, live_server, invokeai, enqueued, gallery_photo, viewport, monkeypatch
):
    from generation import events
    from photos.models import Photo

    monkeypatch.setattr(events, "PREVIEW_EVERY", 0)
    photo = gallery_photo(size=(640, 480))
    page = logged_in_page
    page.set_viewport_size(viewport)
    name = "wide" if viewport["width"] > 1000 else "phone"
    page.goto(f"{live_server.url}/studio/")
    page.get_by_text("Inpaint", exact=True).click()
    page.get_by_role("button", name="Choose a photo…").click()
    page.locator(f"#photo-picker [data-photo-id='{photo.pk}']").click()
    page.get_by_role("button", name="Paint mask…").click()
    canvas = page.locator("#mask-painter canvas.mask-canvas")
    page.locator("#mask-painter [data-mask-status]", has_text="Paint where").wait_for()
    assert canvas.evaluate("(c) => [c.width, c.height]") == [640, 480]

    painted = (
        "(c) => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; "
        "for (let i = 3; i < d.length; i += 4) n += d[i] > 127; return n / (c.width * c.height); }"
    )
    box = canvas.bounding_box()
    # A mouse stroke across the middle...
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.5, steps=12)
    page.mouse.up()
    stroke = canvas.evaluate(painted)
    assert 0.02 < stroke < 0.5
    # ...and a finger's, as pointer events of type touch (what a phone's browser sends).
    canvas.evaluate(
        """(c) => { const r = c.getBoundingClientRect(); const at = (f, y) => ({pointerId: 7, pointerType: 'touch',
        bubbles: true, clientX: r.left + r.width * f, clientY: r.top + r.height * y});
        c.dispatchEvent(new PointerEvent('pointerdown', at(0.5, 0.1)));
        for (let y = 0.1; y <= 0.9; y += 0.1) c.dispatchEvent(new PointerEvent('pointermove', at(0.5, y)));
        c.dispatchEvent(new PointerEvent('pointerup', at(0.5, 0.9))); }"""
    )
    both = canvas.evaluate(painted)
    assert both > stroke
    page.get_by_role("button", name="Invert").click()
    assert abs(canvas.evaluate(painted) - (1 - both)) < 0.01
    page.get_by_role("button", name="Undo").click()
    assert abs(canvas.evaluate(painted) - both) < 0.001
    page.locator("#mask-painter").get_by_text("Eraser", exact=True).click()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5, steps=6)
    page.mouse.up()
    assert canvas.evaluate(painted) < both
    page.get_by_role("button", name="Zoom in").click()
    page.locator("[data-mask-zoom-label]", has_text="150%").wait_for()
    page.screenshot(path=f"/tmp/live-mask-{name}.png")
    page.get_by_role("button", name="Use this mask").click()
    page.locator("#mask-painter").wait_for(state="hidden")

    mask = Photo.objects.get(image_category="mask")
    assert (mask.width, mask.height) == (640, 480)
    assert page.locator("input[name=mask_photo_id]").input_value() == str(mask.pk)
    page.wait_for_function("() => document.querySelector('img[data-preview=mask]').naturalWidth > 0")

    page.fill("textarea[name=prompt]", "a red door")
    page.fill("input[name=batch_size]", "1")
    page.fill("input[name=steps]", "4")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_url(f"{live_server.url}/studio/*/")
    step = GenerationStep.objects.get()
    assert (step.parameters["mode"], step.parameters["mask_photo_id"]) == ("inpaint", str(mask.pk))
    seen = 0
    sources = []
    for _ in range(2):
        invokeai.clock.advance(0.3)
        invokeai.pump()
        for event_name, payload in invokeai.events_sent[seen:]:
            events.event_handle(name=event_name, payload=payload)
        seen = len(invokeai.events_sent)
        page.wait_for_function(
            "(seen) => { const i = document.querySelector('#step-live img.preview'); "
            "return i && i.naturalWidth > 0 && !seen.includes(i.getAttribute('src')); }",
            arg=sources,
        )
        sources.append(page.locator("#step-live img.preview").get_attribute("src"))
    assert len(set(sources)) == 2
    invokeai.clock.advance(5)
    follower.step_poll(step_id=step.pk)
    page.locator("#step-panel .step-status", has_text="Completed").wait_for()

    # Reuse puts the painted mask back in the form.
    page.get_by_role("button", name="Reuse seed").click()
    page.wait_for_function(
        f"() => document.querySelector('input[name=mask_photo_id]').value === '{mask.pk}'"
        " && document.querySelector('img[data-preview=mask]').naturalWidth > 0"
    )
