"""Installing and uninstalling models through the app, against the fake InvokeAI's install jobs and their real
failure shapes (EXTRAS.md section 8)."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
import requests
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient
from werkzeug.wrappers import Response

from backends.invokeai.errors import InvokeAIError
from generation import model_installs, models_cache, services, tasks
from generation.management.commands import install_model
from generation.models import CachedModel, GenerationStep, ModelInstall, Preset
from testing.accounts import other_account
from testing.fake_invokeai import NOT_A_MODEL, UNIDENTIFIED, every_type_models, tiny_model

pytestmark = pytest.mark.django_db

LORA_PATH = "/peer/models/models-test-lora.safetensors"


@pytest.fixture
def invokeai(use_fake_invokeai, settings, monkeypatch):
    settings.MODEL_DEFINITIONS = {}
    # The follow-up task is django-q2's to run; these tests poll themselves.
    monkeypatch.setattr(model_installs, "async_task", lambda *args: None)
    use_fake_invokeai.add_model_file(LORA_PATH, tiny_model("copied", model_type="lora", base="sd-1", format="lycoris"))
    models_cache.models_refresh()
    return use_fake_invokeai


def install(api, source: str, name: str = "", **extra):
    return api.post("/api/models/install/", {"source": source, "name": name, **extra}, format="json")


def installed(api, source: str, name: str = "") -> dict:
    """Start an install and read it once: InvokeAI answers the POST before its background thread takes the job."""
    started = install(api, source, name)
    assert started.status_code == 202, started.json()
    return api.get(f"/api/models/install/{started.json()['id']}/").json()


def test_install_from_a_path_is_listed_with_its_type_and_base(api, invokeai):
    invokeai.add_model_file(LORA_PATH, tiny_model("x", model_type="lora", base="sd-1", format="lycoris"), seconds=2)
    response = install(api, LORA_PATH, "models-lora")
    assert response.status_code == 202
    job = response.json()
    assert (job["status"], job["source"], job["name"]) == ("queued", LORA_PATH, "models-lora")
    assert ModelInstall.objects.get().job_id == 0
    assert api.get(f"/api/models/install/{job['id']}/").json()["status"] == "installing"

    invokeai.clock.advance(3)
    done = api.get(f"/api/models/install/{job['id']}/").json()
    assert (done["status"], done["percent"], done["model_type"], done["model_base"]) == ("ready", 100, "lora", "sd-1")
    cached = CachedModel.objects.get(key=done["model_key"])
    assert (cached.name, cached.type, cached.base, cached.available) == ("models-lora", "lora", "sd-1", True)
    listed = api.get("/api/models/?type=lora").json()
    assert [model["name"] for model in listed] == ["models-lora"]


def test_a_download_reports_its_bytes_until_ready(api, invokeai):
    url = "https://example.invalid/tiny.safetensors"
    invokeai.add_download(url, tiny_model("tiny-dl", model_type="embedding", base="sd-1"), seconds=10, size=4000)
    job = installed(api, url)
    assert (job["status"], job["bytes"], job["total_bytes"]) == ("downloading", 0, 4000)
    invokeai.clock.advance(5)
    half = api.get(f"/api/models/install/{job['id']}").json()
    assert (half["status"], half["bytes"], half["percent"]) == ("downloading", 2000, 50)
    invokeai.clock.advance(6)
    assert api.get(f"/api/models/install/{job['id']}").json()["status"] == "ready"
    assert CachedModel.objects.get(name="tiny-dl").type == "embedding"


def test_an_unidentified_file_is_an_error_and_its_record_is_removed(api, invokeai):
    invokeai.add_model_file("/peer/models/some-folder", UNIDENTIFIED)
    job = installed(api, "/peer/models/some-folder")
    assert job["status"] == "error"
    assert job["error_message"].startswith("InvokeAI could not identify this file as a model")
    assert not any(model["type"] == "unknown" for model in invokeai.models)
    assert not CachedModel.objects.filter(type="unknown").exists()
    # The file can be tried again (InvokeAI kept no record that would make it a duplicate).
    assert installed(api, "/peer/models/some-folder")["status"] == "error"


def test_a_missing_path_is_refused_and_nothing_recorded(api, invokeai):
    response = install(api, "/peer/models/does-not-exist")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "model_source_not_found"
    assert "nothing it can install at /peer/models/does-not-exist" in body["message"]
    assert "Unsupported model source" in body["message"]
    assert not ModelInstall.objects.exists()


def test_an_offline_hugging_face_id_is_refused_and_the_next_request_works(api, invokeai):
    response = install(api, "someone/some-model")
    assert response.status_code == 400
    assert response.json()["code"] == "model_source_unreachable"
    assert "could not reach the Hugging Face repo 'someone/some-model'" in response.json()["message"]
    assert not ModelInstall.objects.exists()
    assert install(api, LORA_PATH).status_code == 202


def test_a_non_model_file_ends_in_error_with_invokeais_reason(api, invokeai):
    invokeai.add_model_file("/peer/models/control.png", NOT_A_MODEL)
    job = install(api, "/peer/models/control.png").json()
    assert job["status"] == "error"
    assert "File extension .png is not a recognized model format" in job["error_message"]


def test_duplicates_are_refused_by_the_app_or_by_invokeai(api, invokeai):
    assert installed(api, LORA_PATH)["status"] == "ready"
    again = install(api, LORA_PATH)
    assert again.status_code == 409 and again.json()["code"] == "model_already_installed"
    assert "already installed in InvokeAI, as 'copied' (sd-1 lora)" in again.json()["message"]
    # Installed behind the app's back: the cache does not know it yet, InvokeAI refuses.
    CachedModel.objects.filter(source=LORA_PATH).delete()
    job = installed(api, LORA_PATH)
    assert job["status"] == "error"
    assert job["error_message"] == (
        f"This model is already installed in InvokeAI (A model with path '{LORA_PATH}' is already installed)."
    )


def test_bad_sources_and_non_staff(api, invokeai, user):
    assert install(api, "  ").status_code == 400
    assert install(api, "/a\x00b").status_code == 400
    guest = APIClient()
    guest.force_authenticate(other_account())
    assert install(guest, LORA_PATH).status_code == 403
    assert not ModelInstall.objects.exists()


def test_the_sweep_and_the_follow_up_task_finish_installs_nobody_watches(invokeai, user, monkeypatch):
    invokeai.add_model_file(LORA_PATH, tiny_model("x", model_type="lora", base="sd-1"), seconds=5)
    first = model_installs.install_start(owner=user, source=LORA_PATH, name="swept")
    assert tasks.poll_model_installs() == "0 model installs finished"
    invokeai.clock.advance(6)
    assert tasks.poll_model_installs() == "1 model installs finished"
    assert ModelInstall.objects.get(pk=first.pk).status == "ready"

    other = "/peer/models/other.safetensors"
    invokeai.add_model_file(other, tiny_model("y", model_type="lora", base="sd-1"), seconds=3)
    second = model_installs.install_start(owner=user, source=other)
    monkeypatch.setattr(model_installs, "_sleep", invokeai.clock.advance)
    assert tasks.model_install_follow(second.pk) == f"install {second.pk}: ready"
    assert CachedModel.objects.filter(source=other, available=True).exists()


def test_invokeai_restarting_mid_install(invokeai, user):
    invokeai.add_model_file(LORA_PATH, tiny_model("x", model_type="lora", base="sd-1"), seconds=5)
    lost = model_installs.install_start(owner=user, source=LORA_PATH)
    invokeai.restart()
    # Job 0 is now another install: the source tells them apart.
    invokeai.add_model_file("/peer/models/b.safetensors", tiny_model("b", model_type="lora", base="sd-1"))
    model_installs.install_start(owner=user, source="/peer/models/b.safetensors")
    polled = model_installs.install_poll(install_id=lost.pk)
    assert polled.status == "error" and "InvokeAI no longer knows this install" in polled.error_message


def test_invokeai_restarting_after_it_installed_the_model(invokeai, user):
    started = model_installs.install_start(owner=user, source=LORA_PATH, name="kept")
    # InvokeAI registered it, then restarted before anyone asked: the job is gone, the model is there.
    invokeai.clock.advance(1)
    invokeai.restart()
    polled = model_installs.install_poll(install_id=started.pk)
    assert (polled.status, polled.model_type) == ("ready", "lora")
    assert CachedModel.objects.get(key=polled.model_key).name == "kept"


def test_invokeai_refresh_failing_at_the_end_leaves_the_install_to_be_finished_again(invokeai, user):
    started = model_installs.install_start(owner=user, source=LORA_PATH)
    # The list's first answer and its three retries.
    invokeai.fail_requests(r"/api/v2/models/$", times=4)
    with pytest.raises(InvokeAIError):
        model_installs.install_poll(install_id=started.pk)
    assert ModelInstall.objects.get(pk=started.pk).status == "queued"
    assert model_installs.install_poll(install_id=started.pk).status == "ready"


def test_invokeai_down_leaves_the_install_to_be_asked_again(invokeai, user):
    invokeai.add_model_file(LORA_PATH, tiny_model("x", model_type="lora", base="sd-1"), seconds=5)
    started = model_installs.install_start(owner=user, source=LORA_PATH)
    invokeai.refuse_connections()
    assert model_installs.install_poll(install_id=started.pk).status == "queued"
    invokeai.accept_connections()
    invokeai.clock.advance(6)
    assert model_installs.install_poll(install_id=started.pk).status == "ready"


def test_a_hostile_install_answer_is_invokeais_fault(api, invokeai):
    for body, content_type in (('{"id": "zero", "status": 1}', "application/json"), ("<html>", "text/html")):
        invokeai.rewrite_answers(
            r"/install$", lambda real, b=body, t=content_type: Response(b, 201, content_type=t), method="POST"
        )
        response = install(api, LORA_PATH)
        assert response.status_code == 502 and response.json()["code"] == "invokeai_unexpected_answer"
    invokeai.rewrite_answers(
        r"/install$", lambda real: Response(status=302, headers={"Location": "http://x/"}), method="POST"
    )
    assert install(api, LORA_PATH).status_code == 400
    assert not ModelInstall.objects.exists()


# --- uninstall ---


def test_uninstall_removes_it_from_invokeai_and_the_cache(api, invokeai):
    key = invokeai.model("tiny-sd1-vae")["key"]
    assert api.delete(f"/api/models/{key}/").status_code == 204
    assert not any(model["key"] == key for model in invokeai.models)
    assert not CachedModel.objects.filter(key=key).exists()
    assert api.delete(f"/api/models/{key}/").status_code == 404


def test_the_fake_answers_500_to_gzip_on_204_endpoints_after_acting(invokeai):
    key = invokeai.model("tiny-sd1-vae")["key"]
    response = requests.delete(f"{invokeai.url}/api/v2/models/i/{key}", headers={"Accept-Encoding": "gzip"}, timeout=5)
    assert response.status_code == 500
    assert not any(model["key"] == key for model in invokeai.models)


def test_an_uninstall_invokeai_fails_is_checked_again(api, invokeai):
    key = invokeai.model("tiny-sd1-vae")["key"]
    invokeai.fail_requests(r"/models/i/", method="DELETE")
    response = api.delete(f"/api/models/{key}/")
    # The 500 did not uninstall it (InvokeAI still lists it): the app says so and keeps its row.
    assert response.status_code == 400 and response.json()["code"] == "model_install_failed"
    assert CachedModel.objects.filter(key=key).exists()


def test_uninstall_is_refused_while_a_preset_or_a_running_step_uses_it(api, invokeai, user):
    vae = CachedModel.objects.get(name="tiny-sd1-vae")
    sd1 = CachedModel.objects.get(name="tiny-sd1")
    Preset.objects.create(owner=user, name="Lighthouse", model_key=sd1.key, vae_key=vae.key)
    refused = api.delete(f"/api/models/{vae.key}/")
    assert refused.status_code == 409 and refused.json()["code"] == "model_in_use"
    assert "preset 'Lighthouse'" in refused.json()["message"]

    session = services.session_create(owner=user)
    GenerationStep.objects.create(
        session=session, position=1, prompt="x", model_key=sd1.key, batch_size=1, status="running"
    )
    Preset.objects.all().delete()
    refused = api.delete(f"/api/models/{sd1.key}/")
    assert refused.status_code == 409 and "running step 1 of session" in refused.json()["message"]
    assert any(model["key"] == sd1.key for model in invokeai.models)


def test_every_type_can_be_uninstalled(api, invokeai):
    invokeai.models = every_type_models()
    models_cache.models_refresh()
    lora = CachedModel.objects.get(name="tiny-sd1-lora")
    assert api.delete(f"/api/models/{lora.key}").status_code == 204
    guest = APIClient()
    guest.force_authenticate(other_account())
    assert guest.delete(f"/api/models/{CachedModel.objects.get(name='tiny-sd1-ti').key}").status_code == 403


# --- manage.py install_model ---


def test_the_command_installs_with_a_progress_bar(invokeai, user, monkeypatch):
    url = "https://example.invalid/big.safetensors"
    invokeai.add_download(url, tiny_model("big", model_type="lora", base="sdxl"), seconds=4, size=8000)
    monkeypatch.setattr(install_model, "time", SimpleNamespace(sleep=invokeai.clock.advance))
    out, err = io.StringIO(), io.StringIO()
    call_command("install_model", url, "--name", "models-big", stdout=out, stderr=err)
    assert "Installed sdxl lora model, key" in out.getvalue()
    assert "8.00k/8.00k" in err.getvalue() and "ready" in err.getvalue()
    assert CachedModel.objects.get(name="models-big").base == "sdxl"


def test_the_command_says_why_it_failed(invokeai, user):
    with pytest.raises(CommandError, match="nothing it can install at /nowhere"):
        call_command("install_model", "/nowhere", stdout=io.StringIO(), stderr=io.StringIO())
    invokeai.add_model_file("/peer/x.png", NOT_A_MODEL)
    with pytest.raises(CommandError, match=r"File extension \.png is not a recognized model format"):
        call_command("install_model", "/peer/x.png", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="no account named 'nobody'"):
        call_command("install_model", "/peer/x.png", "--owner", "nobody")


def test_an_install_is_followed_on_the_invokeai_it_started_on(invokeai, user, settings):
    invokeai.add_model_file(LORA_PATH, tiny_model("x", model_type="lora", base="sd-1"), seconds=5)
    started = model_installs.install_start(owner=user, source=LORA_PATH)
    assert started.backend_url == invokeai.url
    # The app switched InvokeAI (a pod stopped, say): the install is still asked about where it runs.
    settings.INVOKEAI_LOCAL_URL = "http://127.0.0.1:9"
    invokeai.clock.advance(6)
    assert model_installs.install_poll(install_id=started.pk).status == "ready"


def test_the_sweep_goes_on_past_an_install_invokeai_answers_nonsense_about(invokeai, user):
    for index in range(2):
        path = f"/peer/models/{index}.safetensors"
        invokeai.add_model_file(path, tiny_model(f"m{index}", model_type="lora", base="sd-1"), seconds=5)
        model_installs.install_start(owner=user, source=path)
    invokeai.clock.advance(6)
    invokeai.rewrite_answers(r"/install/0$", lambda real: Response('{"id": []}', content_type="application/json"))
    assert model_installs.installs_poll_unfinished() == 1
    invokeai.rewrite_answers(r"/install/0$", lambda real: Response("x" * (17 << 20), content_type="application/json"))
    assert model_installs.installs_poll_unfinished() == 0
    assert model_installs.installs_poll_unfinished() == 1
