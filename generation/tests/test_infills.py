"""Outpaint infills offered only where InvokeAI has them: PatchMatch as the server says (`patchmatch_status`, read
with the models and kept per backend), in the studio form, the step body, the check endpoint and routing, against
the fake InvokeAI. LaMa is offered everywhere, saying it downloads its model on first use."""

from __future__ import annotations

import re

import pytest

from backends import routing
from backends import services as backend_services
from backends.models import Backend, BackendSettings
from generation import models_cache
from generation.models import CachedModel, GenerationStep
from testing.fake_invokeai import FakeInvokeAI

pytestmark = pytest.mark.django_db

EVERYWHERE = ("tile", "color", "cv2", "lama")


@pytest.fixture(autouse=True)
def _signed_in(invokeai, client, user):
    client.force_login(user)


def server_says(invokeai, patchmatch: bool | None) -> None:
    invokeai.patchmatch = patchmatch
    models_cache.models_refresh()


def body(photo, infill: str) -> dict:
    return {
        "prompt": "more of the coast",
        "model_key": CachedModel.objects.get(name="tiny-sd1").key,
        "width": 64,
        "height": 64,
        "steps": 2,
        "batch_size": 1,
        "mode": "outpaint",
        "init_photo_id": str(photo.pk),
        "outpaint": {"right": 64, "infill": infill},
    }


def offered(client) -> list[str]:
    html = client.get("/studio/").content.decode()
    select = re.search(r'<select name="infill">(.*?)</select>', html, re.S)
    assert select, "no infill choice on the studio page"
    return re.findall(r'<option value="([^"]+)"', select.group(1))


@pytest.mark.parametrize(
    ("patchmatch", "methods"),
    [(True, ("tile", "color", "cv2", "patchmatch", "lama")), (False, EVERYWHERE), (None, EVERYWHERE)],
)
def test_the_model_refresh_keeps_what_the_server_says_and_the_form_offers_only_that(
    invokeai, client, patchmatch, methods
):
    server_says(invokeai, patchmatch)
    row = BackendSettings.current()
    assert (row.patchmatch, row.models_url) == (patchmatch, invokeai.url)
    assert routing.infill_methods().names == methods
    assert tuple(offered(client)) == methods
    html = client.get("/studio/").content.decode()
    assert ("PatchMatch is not offered: InvokeAI did not say whether it has it." in html) is (patchmatch is None)
    assert "lama (downloads its model on first use: needs internet)" in html


def test_what_another_invokeai_said_is_not_taken_for_the_one_in_use(invokeai, settings):
    server_says(invokeai, True)
    BackendSettings.objects.filter(pk=BackendSettings.current().pk).update(models_url="http://127.0.0.1:1")
    assert routing.infill_methods() == routing.InfillMethods(names=EVERYWHERE, patchmatch_unknown=True)


@pytest.mark.parametrize(("patchmatch", "said"), [(False, "has no PatchMatch"), (None, "did not say whether")])
def test_a_patchmatch_step_where_the_server_lacks_it_is_a_400_and_records_nothing(
    api, invokeai, gallery_photo, patchmatch, said
):
    server_says(invokeai, patchmatch)
    photo = gallery_photo(size=(128, 128))
    session = api.post("/api/generation/sessions/", {}, format="json").json()["id"]
    for path in (f"/api/generation/sessions/{session}/steps/", "/api/generation/steps/check"):
        response = api.post(path, body(photo, "patchmatch"), format="json")
        assert response.status_code == 400, response.json()
        error = response.json()
        assert error["code"] == "infill_unavailable" and error["details"]["field"] == "outpaint.infill"
        assert said in error["message"] and "tile, color, cv2, lama" in error["message"]
    assert not GenerationStep.objects.exists() and not invokeai.items
    # The other infills go through.
    assert api.post("/api/generation/steps/check", body(photo, "cv2"), format="json").status_code == 200


def test_a_patchmatch_step_where_the_server_has_it_builds_the_patchmatch_node(api, invokeai, gallery_photo, enqueued):
    server_says(invokeai, True)
    photo = gallery_photo(size=(128, 128))
    session = api.post("/api/generation/sessions/", {}, format="json").json()["id"]
    response = api.post(f"/api/generation/sessions/{session}/steps/", body(photo, "patchmatch"), format="json")
    assert response.status_code == 202, response.json()
    step = GenerationStep.objects.get()
    graph = invokeai.items[step.item_ids[0]].batch["graph"]
    assert [node["type"] for node in graph["nodes"].values() if node["type"].startswith("infill")] == [
        "infill_patchmatch"
    ]


def test_the_studio_form_refuses_patchmatch_the_server_lacks_and_its_composer_falls_back_to_tile(
    client, invokeai, gallery_photo, enqueued
):
    server_says(invokeai, True)
    photo = gallery_photo(size=(128, 128))
    fields = {
        "model_key": CachedModel.objects.get(name="tiny-sd1").key,
        "prompt": "more of the coast",
        "mode": "outpaint",
        "seed_mode": "random",
        "batch_size": 1,
        "width": 64,
        "height": 64,
        "steps": 2,
        "init_photo_id": str(photo.pk),
        "outpaint_right": "64",
        "infill": "patchmatch",
    }
    assert client.post("/studio/new/", fields).status_code == 302
    step = GenerationStep.objects.get()
    assert step.parameters["outpaint"]["infill"] == "patchmatch"
    # The server's PatchMatch went away (another build): the step's composer offers what there is, tile chosen.
    server_says(invokeai, False)
    html = client.get(f"/studio/steps/{step.pk}/composer/").content.decode()
    assert 'value="patchmatch"' not in html and '<option value="tile" selected>' in html
    refused = client.post("/studio/new/", fields)
    assert "InvokeAI has no PatchMatch" in refused.content.decode()
    assert GenerationStep.objects.count() == 1


@pytest.fixture
def second():
    server = FakeInvokeAI().start()
    yield server
    server.stop()


def test_with_two_backends_a_patchmatch_step_goes_to_the_one_that_has_it(
    invokeai, second, api, gallery_photo, enqueued, django_capture_on_commit_callbacks
):
    invokeai.patchmatch = False
    with django_capture_on_commit_callbacks():
        backend = backend_services.backend_add(name="second", url=second.url)
    backend_services.backend_check(backend_id=backend.pk)
    models_cache.models_refresh()
    assert Backend.objects.get().patchmatch is True and BackendSettings.current().patchmatch is False
    assert "patchmatch" in routing.infill_methods().names
    photo = gallery_photo(size=(128, 128))
    session = api.post("/api/generation/sessions/", {}, format="json").json()["id"]
    for _ in range(2):
        response = api.post(f"/api/generation/sessions/{session}/steps/", body(photo, "patchmatch"), format="json")
        assert response.status_code == 202, response.json()
    # Both go to the second even though its queue grows: the one in use has no PatchMatch.
    assert set(GenerationStep.objects.values_list("backend_url", flat=True)) == {second.url}
    # Once the second says it has none either, PatchMatch is refused before anything is recorded.
    second.patchmatch = False
    backend_services.backend_check(backend_id=backend.pk)
    response = api.post(f"/api/generation/sessions/{session}/steps/", body(photo, "patchmatch"), format="json")
    assert response.status_code == 400 and response.json()["code"] == "infill_unavailable"
    assert GenerationStep.objects.count() == 2


def test_routing_refuses_patchmatch_if_no_backend_has_it_any_more(invokeai):
    server_says(invokeai, True)
    assert routing.backend_choose(patchmatch=True) == invokeai.url
    BackendSettings.objects.filter(pk=BackendSettings.current().pk).update(patchmatch=False)
    with pytest.raises(routing.InvalidInput) as refused:
        routing.backend_choose(patchmatch=True)
    assert refused.value.code == "infill_unavailable"
    assert routing.backend_choose() == invokeai.url
