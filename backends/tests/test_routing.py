"""Routing between several InvokeAI backends: the pure choice, the candidates, and the API that adds them."""

from __future__ import annotations

import pytest

from backends import routing, services
from backends.models import Backend, BackendSettings
from backends.routing import Candidate

pytestmark = pytest.mark.django_db


def candidate(url: str, hashes=None) -> Candidate:
    return Candidate(url=url, name=url, backend_id=None, model_hashes=None if hashes is None else frozenset(hashes))


def test_the_shortest_queue_wins_and_ties_keep_the_order():
    a, b, c = candidate("http://a"), candidate("http://b"), candidate("http://c")
    assert routing.choose([a, b, c], load={"http://a": 2, "http://b": 1, "http://c": 1}) == b
    assert routing.choose([a, b, c], load={}) == a
    assert routing.choose([c, b, a], load={"http://a": 0, "http://b": 0, "http://c": 0}) == c


def test_an_unknown_model_list_is_taken_to_have_any_model():
    lora, vae = routing.Need("LoRA", "blake3:x", "ink"), routing.Need("VAE", "blake3:z", "fix")
    assert candidate("http://a").missing([lora, vae]) == []
    assert candidate("http://a", []).missing([lora]) == [lora]
    assert candidate("http://a", ["blake3:x", "blake3:y"]).missing([lora, vae]) == [vae]
    # A part whose hash is not known is looked up by name on the backend the step goes to.
    assert candidate("http://a", []).missing([routing.Need("LoRA", "", "ink")]) == []


def test_without_added_backends_the_in_use_invokeai_is_chosen_without_asking_anyone(use_fake_invokeai):
    assert routing.backend_choose(needs=["blake3:not-anywhere"]) == use_fake_invokeai.url
    assert use_fake_invokeai.requests == []


def test_disabled_and_silent_backends_are_not_candidates(use_fake_invokeai):
    Backend.objects.create(name="off", url="http://127.0.0.1:1", enabled=False, is_connected=True)
    Backend.objects.create(name="down", url="http://127.0.0.1:2", is_connected=False)
    on = Backend.objects.create(name="on", url="http://127.0.0.1:3", is_connected=True, model_hashes=["h"])
    found, problem = routing.candidates()
    assert problem is None
    assert [(c.url, c.backend_id, c.model_hashes) for c in found] == [
        (use_fake_invokeai.url, None, None),
        (on.url, on.pk, frozenset({"h"})),
    ]


def test_the_in_use_model_list_counts_only_for_the_url_it_was_read_from(use_fake_invokeai):
    Backend.objects.create(name="on", url="http://127.0.0.1:3", is_connected=True)
    BackendSettings.objects.create(pk=1, model_hashes=["h"], models_url="http://127.0.0.1:9")
    assert routing.candidates()[0][0].model_hashes is None
    BackendSettings.objects.filter(pk=1).update(models_url=use_fake_invokeai.url)
    assert routing.candidates()[0][0].model_hashes == frozenset({"h"})


# --- the API ---


def test_add_list_rename_disable_and_remove_through_the_api(api, use_fake_invokeai, fake_invokeai):
    from testing.fake_invokeai import FakeInvokeAI

    other = FakeInvokeAI().start()
    try:
        created = api.post("/api/backends/", {"name": "Studio PC", "url": other.url + "/"}, format="json")
        assert created.status_code == 201, created.json()
        body = created.json()
        assert body["url"] == other.url and body["enabled"] is True and body["models"] is None
        services.backends_check()
        listed = api.get("/api/backends/").json()
        assert [(b["name"], b["is_connected"], b["models"]) for b in listed] == [("Studio PC", True, 4)]
        status = api.get("/api/backend/status").json()
        assert [(b["kind"], b["url"], b["in_use"]) for b in status["backends"]] == [
            ("local", fake_invokeai.url, True),
            ("url", other.url, False),
        ]
        assert status["url"] == fake_invokeai.url  # the fields from before are all still there
        changed = api.patch(f"/api/backends/{body['id']}/", {"enabled": False, "name": "PC"}, format="json")
        assert (changed.status_code, changed.json()["enabled"], changed.json()["name"]) == (200, False, "PC")
        assert api.delete(f"/api/backends/{body['id']}/").status_code == 204
        assert api.get(f"/api/backends/{body['id']}/").status_code == 404
    finally:
        other.stop()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://127.0.0.1:9090", "http"),
        ("http://user:secret@127.0.0.1:9090", "password"),
        ("http://127.0.0.1:9090/?x=1", "query"),
        ("http://169.254.169.254/", "link-local"),
        ("x" * 600, "500"),
    ],
)
def test_a_url_the_app_would_not_call_is_refused_and_nothing_saved(api, url, expected):
    response = api.post("/api/backends/", {"name": "bad", "url": url}, format="json")
    assert response.status_code == 400
    assert expected.lower() in str(response.json()).lower()
    assert not Backend.objects.exists()


def test_the_same_url_twice_or_the_in_use_one_is_a_conflict(api, use_fake_invokeai):
    assert api.post("/api/backends/", {"name": "a", "url": "http://127.0.0.1:7"}, format="json").status_code == 201
    again = api.post("/api/backends/", {"name": "b", "url": "http://127.0.0.1:7/"}, format="json")
    in_use = api.post("/api/backends/", {"name": "c", "url": use_fake_invokeai.url}, format="json")
    assert (again.status_code, in_use.status_code) == (409, 409)
    assert Backend.objects.count() == 1


def test_only_staff_manage_backends(anon_api, client, django_user_model):
    from rest_framework.test import APIClient

    member = django_user_model.objects.create_user(username="member", password="x")
    member_api = APIClient()
    member_api.force_authenticate(member)
    assert member_api.get("/api/backends/").status_code == 403
    assert member_api.post("/api/backends/", {"name": "a", "url": "http://127.0.0.1:7"}).status_code == 403
    assert anon_api.get("/api/backends/").status_code in (401, 403)
    assert not Backend.objects.exists()


def test_a_backend_that_answers_nonsense_is_recorded_as_not_answering(api, use_fake_invokeai):
    from werkzeug.wrappers import Response

    from testing.fake_invokeai import FakeInvokeAI

    other = FakeInvokeAI().start()
    try:
        backend = services.backend_add(name="odd", url=other.url)
        other.rewrite_answers(r"/models/", lambda answer: Response('{"models": "many"}', mimetype="application/json"))
        checked = services.backend_check(backend_id=backend.pk)
        assert not checked.is_connected and checked.connection_error
    finally:
        other.stop()
