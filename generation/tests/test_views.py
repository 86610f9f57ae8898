"""The studio's HTMX views with Django's test client: what each partial shows, and how errors reach the page."""

from __future__ import annotations

import json
import re

import pytest

from generation import services
from generation.models import CachedModel, GenerationSession, GenerationStep
from photos.models import Photo

from .conftest import PROMPT, step_request

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


def form_data(model: CachedModel, **overrides) -> dict:
    return {
        "model_key": model.key,
        "prompt": PROMPT,
        "mode": "txt2img",
        "width": 64,
        "height": 64,
        "steps": 2,
        "cfg_scale": 7.5,
        "scheduler": "euler",
        "seed_mode": "random",
        "batch_size": 2,
        "vae_key": "",
        **overrides,
    }


def test_the_studio_page_lists_models_with_their_base_favorites_first(owner_client, invokeai):
    CachedModel.objects.filter(name="tiny-sdxl").update(is_favorite=True)
    page = owner_client.get("/studio/").content.decode()
    assert page.index("★ tiny-sdxl · SDXL") < page.index("tiny-sd1 · SD 1.x")
    assert "tiny-sd1-vae" not in page.split('name="model_key"')[1].split("</select>")[0]
    assert 'data-size="1024x1024"' in page and 'name="steps" min="1" max="150" value="30"' in page


def test_without_models_the_page_says_what_to_do(owner_client, db, settings):
    page = owner_client.get("/studio/").content.decode()
    assert "INVOKEAI_LOCAL_URL" in page and "Refresh the models" in page
    assert 'class="button primary generate" disabled' in page


def test_refresh_models_from_the_page(owner_client, use_fake_invokeai, settings):
    settings.MODEL_DEFINITIONS = {}
    response = owner_client.post("/studio/refresh-models/", {"session": ""}, headers=HX)
    assert "tiny-sd1 · SD 1.x" in response.content.decode()
    use_fake_invokeai.refuse_connections()
    response = owner_client.post("/studio/refresh-models/", {"session": ""}, headers=HX)
    assert "is not answering" in response.content.decode()


def test_generate_from_a_gallery_photo(owner_client, invokeai, gallery_photo):
    photo = gallery_photo()
    page = owner_client.get(f"/studio/?photo={photo.pk}").content.decode()
    assert f'name="init_photo_id" value="{photo.pk}"' in page
    assert 'value="img2img" checked' in page
    lightbox = owner_client.get(f"/photos/{photo.pk}/", headers=HX).content.decode()
    assert f'href="/studio/?photo={photo.pk}"' in lightbox and "Generate from this photo" in lightbox


def test_a_new_session_starts_with_its_first_step(owner_client, invokeai, sd1, enqueued):
    response = owner_client.post("/studio/new/", form_data(sd1), headers=HX)
    session = GenerationSession.objects.get()
    assert response["HX-Redirect"] == f"/studio/{session.pk}/"
    step = session.steps.get()
    assert (step.status, step.batch_size, step.parameters["scheduler"]) == ("running", 2, "euler")
    page = owner_client.get(f"/studio/{session.pk}/").content.decode()
    assert 'hx-trigger="every 250ms"' in page and "0 of 2 images finished" in page
    # The composer remembers the model and steps for the next visit.
    assert 'name="steps" min="1" max="150" value="2"' in owner_client.get("/studio/").content.decode()


def test_an_invalid_form_shows_its_error_in_the_composer_and_records_nothing(owner_client, invokeai, sd1):
    response = owner_client.post("/studio/new/", form_data(sd1, width=100), headers=HX)
    assert response["HX-Retarget"] == "#composer-error" and response["HX-Reswap"] == "innerHTML"
    assert "width must be a multiple of 8" in response.content.decode()
    response = owner_client.post("/studio/new/", form_data(sd1, prompt=""), headers=HX)
    assert "Write a prompt" in response.content.decode()
    response = owner_client.post("/studio/new/", form_data(sd1, seed_mode="fixed"), headers=HX)
    assert "Enter the seed to use" in response.content.decode()
    assert not GenerationSession.objects.exists()


def test_invokeai_down_shows_the_failed_step_and_what_to_do(owner_client, invokeai, sd1, session):
    invokeai.refuse_connections()
    response = owner_client.post(f"/studio/{session.pk}/generate/", form_data(sd1), headers=HX)
    page = response.content.decode()
    assert 'id="session-main"' in page and "Failed" in page
    assert f"InvokeAI at {invokeai.url} is not answering" in page
    assert "choose another InvokeAI on the backend page" in page


def test_the_step_panel_polls_until_the_step_is_done(owner_client, invokeai, sd1, session, follow, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    running = owner_client.get(f"/studio/steps/{step.pk}/?was=running", headers=HX)
    # While it runs, only the small live partial polls.
    assert 'id="step-live"' in running.content.decode() and 'hx-trigger="every 250ms"' in running.content.decode()
    assert "HX-Trigger" not in running
    follow(step.pk)
    done = owner_client.get(f"/studio/steps/{step.pk}/?was=running", headers=HX)
    assert "every 1s" not in done.content.decode() and "every 250ms" not in done.content.decode()
    assert json.loads(done["HX-Trigger"]) == {"step-finished": {}}
    assert done.content.decode().count('class="alternative"') == 4


def test_the_live_partial_shows_previews_then_hands_over_to_the_panel(
    owner_client, invokeai, sd1, session, enqueued, user, monkeypatch, django_capture_on_commit_callbacks
):
    from generation import events

    monkeypatch.setattr(events, "PREVIEW_EVERY", 0)
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, batch_size=2, steps=4))
    panel = owner_client.get(f"/studio/steps/{step.pk}/", headers=HX).content.decode()
    version, state = re.search(r'live/\?v=([^"&]+)&amp;s=([^"]+)"', panel).groups()
    # Nothing has changed: nothing to draw or swap.
    unchanged = owner_client.get(f"/studio/steps/{step.pk}/live/?v={version}&s={state}", headers=HX)
    assert (unchanged.status_code, unchanged.content) == (204, b"")

    def deliver(seconds):
        invokeai.clock.advance(seconds)
        invokeai.pump()
        with django_capture_on_commit_callbacks(execute=True):
            for name, payload in invokeai.events_sent[deliver.seen :]:
                events.event_handle(name=name, payload=payload)
        deliver.seen = len(invokeai.events_sent)

    deliver.seen = 0
    deliver(0.5)
    live = owner_client.get(f"/studio/steps/{step.pk}/live/?v={version}&s={state}", headers=HX)
    body = live.content.decode()
    assert live.status_code == 200 and "HX-Retarget" not in live
    new_state = re.search(r'live/\?v=[^"&]+&amp;s=([^"]+)"', body).group(1)
    assert new_state != state
    again = owner_client.get(f"/studio/steps/{step.pk}/live/?v={version}&s={new_state}", headers=HX)
    assert again.status_code == 204
    assert f'src="/api/generation/steps/{step.pk}/previews/{step.item_ids[0]}?v=' in body
    assert 'class="item-progress" max="100" value="50"' in body
    assert 'id="step-progress" hx-swap-oob="true"' in body and 'value="25"' in body
    assert "Waiting its turn" in body

    deliver(0.6)
    arrived = owner_client.get(f"/studio/steps/{step.pk}/live/?v={version}", headers=HX)
    assert (arrived["HX-Retarget"], arrived["HX-Reswap"]) == ("#step-panel", "outerHTML")
    page = arrived.content.decode()
    assert page.count('class="alternative"') == 1 and f"previews/{step.pk}/{step.item_ids[0]}" not in page
    assert 'id="step-live"' in page


@pytest.fixture
def done_step(invokeai, sd1, session, follow, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, batch_size=2, seed=5))
    follow(step.pk)
    return GenerationStep.objects.get(pk=step.pk)


def test_choose_remix_and_continue_in_one_click(owner_client, done_step, enqueued):
    continued = owner_client.post(f"/studio/steps/{done_step.pk}/continue/", {"strength": "0.4"}, headers=HX)
    assert "Choose one of this step&#x27;s images first" in continued.content.decode()

    photo_id = done_step.alternatives.last().photo_id
    chosen = owner_client.post(f"/studio/steps/{done_step.pk}/select/{photo_id}/", headers=HX).content.decode()
    assert "✓ Chosen" in chosen and 'alt="Chosen image of step 1"' in chosen

    remixed = owner_client.post(f"/studio/steps/{done_step.pk}/remix/", headers=HX).content.decode()
    assert "Step 2" in remixed
    continued = owner_client.post(f"/studio/steps/{done_step.pk}/continue/", {"strength": "0.4"}, headers=HX)
    assert "Step 3" in continued.content.decode()
    third = GenerationStep.objects.get(position=3)
    assert (third.parameters["mode"], third.parameters["init_photo_id"]) == ("img2img", str(photo_id))


def test_reuse_seed_fills_the_composer(owner_client, done_step):
    composer = owner_client.get(f"/studio/steps/{done_step.pk}/composer/?seed=reuse", headers=HX).content.decode()
    assert 'value="fixed" checked' in composer and 'name="seed" value="5"' in composer
    assert PROMPT in composer


def test_cancel_and_retry_from_the_panel(owner_client, invokeai, sd1, session, user):
    invokeai.fail_requests(r"^/api/v1/images/i/.+/full$", status=404, times=1)
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    invokeai.clock.advance(1.5)
    cancelled = owner_client.post(f"/studio/steps/{step.pk}/cancel/", headers=HX).content.decode()
    assert "Cancelled after 1 of 4 images." in cancelled and "Download failed" in cancelled
    assert "Retry download" in cancelled and "Tried 1 time; next try" in cancelled
    retried = owner_client.post(f"/studio/steps/{step.pk}/retry/", headers=HX).content.decode()
    assert "Download failed" not in retried and Photo.objects.get().is_available


def test_a_model_with_fixed_steps_disables_the_slider(owner_client, invokeai, sd1):
    CachedModel.objects.filter(pk=sd1.pk).update(options={"fixed_steps": 4})
    fields = owner_client.get(f"/studio/model-fields/?model_key={sd1.key}", headers=HX).content.decode()
    assert 'value="4" disabled' in fields and '<input type="hidden" name="steps" value="4">' in fields
    assert "always runs 4 steps" in fields


def test_the_photo_picker_offers_downloaded_photos(owner_client, user, invokeai, gallery_photo):
    photo = gallery_photo()
    Photo.objects.create(owner=user, is_generated=True, retrieval_status="pending", invoke_id="x.png")
    picker = owner_client.get("/studio/photo-picker/?target=mask", headers=HX).content.decode()
    assert picker.count('data-action="picked"') == 1 and str(photo.pk) in picker


def test_history_and_closing_the_session(owner_client, done_step):
    history = owner_client.get(f"/studio/{done_step.session_id}/history/", headers=HX).content.decode()
    assert "Step 1" in history and "none chosen" in history
    shown = owner_client.get(f"/studio/steps/{done_step.pk}/show/", headers=HX).content.decode()
    assert 'id="session-main"' in shown
    closed = owner_client.post(f"/studio/{done_step.session_id}/completed/", headers=HX)
    assert closed["HX-Redirect"] == "/studio/"
    page = owner_client.get(f"/studio/{done_step.session_id}/").content.decode()
    assert "Completed" in page and "Remix" not in page


def test_a_failed_download_offers_retry_in_the_lightbox(owner_client, user):
    photo = Photo.objects.create(
        owner=user,
        is_generated=True,
        retrieval_status="failed",
        retrieval_attempts=2,
        retrieval_error="boom",
        invoke_id="y.png",
    )
    lightbox = owner_client.get(f"/photos/{photo.pk}/", headers=HX).content.decode()
    assert "Download from InvokeAI failed (2 attempts): boom" in lightbox
    assert 'data-action="retry-download"' in lightbox and "Generate from this photo" not in lightbox


def test_the_admin_shows_sessions_and_steps_read_only(owner_client, done_step):
    for path in (
        "/admin/generation/generationsession/",
        f"/admin/generation/generationsession/{done_step.session_id}/change/",
        "/admin/generation/generationstep/",
        f"/admin/generation/generationstep/{done_step.pk}/change/",
        "/admin/generation/studiopreference/",
    ):
        assert owner_client.get(path).status_code == 200, path
    assert owner_client.get("/admin/generation/generationstep/add/").status_code == 403
