"""The Models page in real Chromium against the fake InvokeAI: install a model by URL and watch its progress bar
reach ready, then find it in the list; make a preset with it and choose that preset in the studio. At 1440x900
and on a 390x844 phone.

No django-q2 worker runs: the page's own polling of the install is what moves it on, while the test moves the
fake InvokeAI's clock.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from generation import model_installs, models_cache
from generation.models import CachedModel, Preset
from testing.fake_invokeai import tiny_model

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = pytest.mark.parametrize(
    "viewport", [{"width": 1440, "height": 900}, {"width": 390, "height": 844}], ids=["desktop", "phone"]
)
URL = "https://example.invalid/models-browser-lora.safetensors"


def shot(page, name: str) -> None:
    page.screenshot(path=f"/tmp/models-{name}-{page.viewport_size['width']}.png", full_page=True)


@pytest.fixture
def invokeai(use_fake_invokeai, settings, monkeypatch):
    settings.MODEL_DEFINITIONS = {}
    monkeypatch.setattr(model_installs, "async_task", lambda *args: None)
    lora = tiny_model("downloaded-lora", model_type="lora", base="sd-1", format="lycoris")
    use_fake_invokeai.add_download(URL, lora, seconds=10, size=40 << 20)
    models_cache.models_refresh()
    return use_fake_invokeai


@SIZES
def test_install_from_the_models_page_and_use_it_in_a_preset(logged_in_page, live_server, invokeai, viewport):
    page = logged_in_page
    page.set_viewport_size(viewport)
    page.goto(f"{live_server.url}/studio/")
    page.get_by_role("link", name="Models", exact=True).click()
    expect(page.locator("h1")).to_have_text("Models")
    expect(page.locator("#model-list .model-row")).to_have_count(4)

    page.fill("input[name=source]", URL)
    page.fill("input[name=name]", "models-browser-lora")
    page.get_by_role("button", name="Install", exact=True).click()
    install = page.locator("#installs .install").first
    expect(install).to_have_attribute("data-status", "downloading")
    invokeai.clock.advance(4)
    expect(install.locator("progress")).to_have_attribute("value", "40")
    expect(install).to_contain_text("16.0 MB of 40.0 MB")
    shot(page, "install-downloading")
    invokeai.clock.advance(7)
    expect(install).to_have_attribute("data-status", "ready")
    expect(install.locator("progress")).to_have_attribute("value", "100")
    expect(install).to_contain_text("installed as a sd-1 lora")
    # The end of the install reloads the list, which now has the LoRA.
    expect(page.locator("#model-list .model-row")).to_have_count(5)
    expect(page.locator("#model-list")).to_contain_text("models-browser-lora")
    shot(page, "install-ready")

    page.select_option("select[name=type]", "lora")
    expect(page.locator("#model-list .model-row")).to_have_count(1)
    page.locator("#model-list .favorite").click()
    expect(page.locator("#model-list .favorite")).to_have_attribute("aria-pressed", "true")
    shot(page, "filtered")

    page.get_by_role("link", name="Presets", exact=True).first.click()
    page.fill("input[name=name]", "Tiny with LoRA")
    page.get_by_label("models-browser-lora").check()
    page.fill("input[name=steps]", "3")
    page.fill("input[name=width]", "128")
    page.fill("input[name=height]", "128")
    page.get_by_role("button", name="Create preset").click()
    expect(page.locator(".preset")).to_contain_text("Tiny with LoRA")
    preset = Preset.objects.get()
    assert preset.loras == [{"key": CachedModel.objects.get(name="models-browser-lora").key, "weight": 1.0}]
    shot(page, "presets")

    page.get_by_role("link", name="Studio", exact=True).first.click()
    page.fill("textarea[name=prompt]", "a lighthouse")
    page.select_option("select[name=preset_id]", str(preset.pk))
    expect(page.locator("input[name=width]")).to_have_value("128")
    expect(page.locator("input[name=steps]")).to_have_value("3")
    expect(page.locator("textarea[name=prompt]")).to_have_value("a lighthouse")
    shot(page, "studio-preset")
