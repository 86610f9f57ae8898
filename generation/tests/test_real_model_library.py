"""The model library against a real InvokeAI: `INVOKEAI_TEST_URL=http://127.0.0.1:9090 make test`.

The server is the shared peer on this machine (it reads files where the tests write them). A test installs a
copy of the peer's tiny LoRA under a new name (`models-<random>`), finds it listed with its type and base, uses
it in a preset, and uninstalls it; the error cases are the real server's. Whatever a test installed is removed
at the end, whatever happened.
"""

from __future__ import annotations

import json
import shutil
import struct
import time
import uuid
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from backends import manager
from generation import model_installs, models_cache, presets
from generation.models import CachedModel, ModelInstall
from testing.real_invokeai import MODULE_MARKS, REAL_URL

pytestmark = MODULE_MARKS


@pytest.fixture
def real(settings, monkeypatch, tmp_path_factory):
    settings.INVOKEAI_LOCAL_URL = REAL_URL
    settings.INVOKEAI_READ_TIMEOUT = 60
    settings.MODEL_DEFINITIONS = {}
    monkeypatch.setattr(model_installs, "async_task", lambda *args: None)
    models_cache.models_refresh()
    # Outside the test's DATA_DIR, and one folder per test: InvokeAI registers these files in place.
    folder = Path(tmp_path_factory.mktemp("models-peer"))
    yield folder
    client = manager.invokeai_client(REAL_URL)
    for model in client.list_models():
        if model.source.startswith(str(folder)):
            client.delete_model(model.key)


@pytest.fixture
def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def lora_copy(folder: Path) -> Path:
    """A copy of the peer's tiny LoRA under a name of its own (the peer's list says where its file is)."""
    peer_lora = CachedModel.objects.filter(name="tiny-sd1-lora", type="lora").first()
    if peer_lora is None or not Path(peer_lora.source).is_file():
        pytest.skip("the peer InvokeAI has no tiny-sd1-lora file on this machine (run its setup-extras.sh)")
    copy = folder / f"models-{uuid.uuid4().hex[:10]}.safetensors"
    shutil.copyfile(peer_lora.source, copy)
    return copy


def wait_finished(api, job: dict, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while job["status"] not in ("ready", "error"):
        assert time.monotonic() < deadline, f"the install did not finish in time: {job}"
        time.sleep(0.3)
        job = api.get(f"/api/models/install/{job['id']}/").json()
    return job


def test_install_a_copied_lora_use_it_in_a_preset_and_uninstall_it(real, api, user):
    source = lora_copy(real)
    name = source.stem
    started = api.post("/api/models/install/", {"source": str(source), "name": name}, format="json")
    assert started.status_code == 202, started.json()
    job = wait_finished(api, started.json())
    assert (job["status"], job["model_type"], job["model_base"], job["percent"]) == ("ready", "lora", "sd-1", 100)

    listed = {model["name"]: model for model in api.get("/api/models/?type=lora&base=sd-1").json()}
    assert (listed[name]["type"], listed[name]["base"], listed[name]["format"]) == ("lora", "sd-1", "lycoris")
    assert listed[name]["key"] == job["model_key"]
    assert listed[name]["default_settings"] == {"weight": None, "weight_min": None, "weight_max": None}
    sd1 = CachedModel.objects.get(name="tiny-sd1", type="main")
    components = api.get(f"/api/models/{sd1.key}/components/").json()
    assert name in [model["name"] for model in components["lora"]]

    preset = api.post(
        "/api/presets/",
        {"name": f"{name} preset", "model_key": sd1.key, "loras": [{"key": job["model_key"], "weight": 0.7}]},
        format="json",
    )
    assert preset.status_code == 201 and preset.json()["problems"] == []
    refused = api.delete(f"/api/models/{job['model_key']}/")
    assert refused.status_code == 409 and f"preset '{name} preset'" in refused.json()["message"]

    api.delete(f"/api/presets/{preset.json()['id']}/")
    assert api.delete(f"/api/models/{job['model_key']}/").status_code == 204
    assert manager.invokeai_client(REAL_URL).get_model(job["model_key"]) is None
    assert not CachedModel.objects.filter(key=job["model_key"]).exists()
    # InvokeAI deletes no file outside its own models folder.
    assert source.exists()


def test_a_preset_whose_lora_was_uninstalled_elsewhere_says_so(real, api, user):
    source = lora_copy(real)
    job = wait_finished(api, api.post("/api/models/install/", {"source": str(source)}, format="json").json())
    sd1 = CachedModel.objects.get(name="tiny-sd1", type="main")
    preset = presets.preset_create(owner=user, name="models-gone", model_key=sd1.key, loras=[{"key": job["model_key"]}])
    manager.invokeai_client(REAL_URL).delete_model(job["model_key"])
    models_cache.models_refresh()
    lora_name = CachedModel.objects.get(key=job["model_key"]).name
    assert presets.preset_problems(preset) == [f"LoRA '{lora_name}' is not installed in InvokeAI."]


def test_a_missing_path(real, api):
    response = api.post("/api/models/install/", {"source": str(real / "models-nothing-here")}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "model_source_not_found"
    assert "Unsupported model source" in response.json()["message"]
    assert not ModelInstall.objects.exists()


def test_a_non_model_file(real, api):
    image = real / "models-not-a-model.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    job = wait_finished(api, api.post("/api/models/install/", {"source": str(image)}, format="json").json())
    assert job["status"] == "error"
    assert "File extension .png is not a recognized model format" in job["error_message"]


def test_a_duplicate(real, api):
    source = lora_copy(real)
    assert (
        wait_finished(api, api.post("/api/models/install/", {"source": str(source)}, format="json").json())["status"]
        == "ready"
    )
    again = api.post("/api/models/install/", {"source": str(source)}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "model_already_installed"
    # Behind the app's back (the cache does not know it): InvokeAI's own refusal, in words.
    CachedModel.objects.filter(source=str(source)).delete()
    job = wait_finished(api, api.post("/api/models/install/", {"source": str(source)}, format="json").json())
    assert job["status"] == "error"
    assert job["error_message"].startswith("This model is already installed in InvokeAI (A model with path")


def test_an_unidentified_folder_is_an_error_and_leaves_no_record(real, api):
    folder = real / "models-unknown-folder"
    folder.mkdir()
    header = json.dumps({"foo": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    (folder / "weights.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    (folder / "config.json").write_text('{"_class_name": "NothingKnown"}')
    job = wait_finished(api, api.post("/api/models/install/", {"source": str(folder)}, format="json").json())
    assert job["status"] == "error"
    assert job["error_message"].startswith("InvokeAI could not identify this file as a model")
    assert not [m for m in manager.invokeai_client(REAL_URL).list_models() if m.source == str(folder)]
    assert not CachedModel.objects.filter(type="unknown").exists()


def test_an_offline_hugging_face_id_and_the_next_request(real, api):
    response = api.post("/api/models/install/", {"source": f"models-test/{uuid.uuid4().hex}"}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "model_source_unreachable"
    # The 500 may have left the connection to be reset: the next request goes out on a fresh one.
    assert api.post("/api/models/install/", {"source": str(real / "nothing")}, format="json").status_code == 400
    assert api.get("/api/models/?type=main").status_code == 200
