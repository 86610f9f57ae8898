"""Bad input answers 4xx in the project's error shape, never 500: deep JSON, offsets no database can hold, and
garbage in the query strings and forms of every page (the API as a whole is fuzzed in test_api_fuzz.py)."""

from __future__ import annotations

import json

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from gallery_project.errors import is_api_path

pytestmark = pytest.mark.django_db

HUGE = "100000000000000000000"


def error_shape(response) -> dict:
    body = response.json()
    assert set(body) == {"code", "message", "details"}, body
    return body


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/albums/"),
        ("post", "/api/generation/sessions/"),
        ("post", "/api/generate"),
        ("post", "/cyberimage/api/generate"),
        ("post", "/api/backend/mode"),
        ("patch", "/api/models/some-key/"),
        ("post", "/api/auth/token/"),
    ],
)
def test_json_nested_100000_deep_is_a_400(api, method, path):
    response = getattr(api, method)(path, data="[" * 100_000, content_type="application/json")
    assert response.status_code == 400
    assert error_shape(response)["code"] == "parse_error"


def test_json_just_too_deep_is_a_400_and_deep_enough_is_read(api):
    deep = {"name": "x", "nested": json.loads("[" * 40 + "]" * 40)}
    response = api.post("/api/albums/", data=json.dumps(deep), content_type="application/json")
    assert response.status_code == 400 and "nested more than 32 levels" in error_shape(response)["message"]
    fine = {"name": "Trip", "nested": json.loads("[" * 10 + "]" * 10)}
    assert api.post("/api/albums/", data=json.dumps(fine), content_type="application/json").status_code == 201


@pytest.mark.parametrize("path", ["/api/photos/", "/api/backend/pod-sessions/", "/api/generation/sessions/"])
@pytest.mark.parametrize("offset", [HUGE, str(2**63), str(2**63 - 1), "1000000001", "-1", "1e3", "x"])
def test_an_offset_no_database_can_hold_is_a_400(api, path, offset):
    response = api.get(path, {"offset": offset})
    assert response.status_code == 400
    body = error_shape(response)
    assert body["code"] == "invalid" and "offset" in body["details"]


@pytest.mark.parametrize("path", ["/api/photos/", "/api/backend/pod-sessions/", "/api/generation/sessions/"])
def test_the_largest_offset_answers_an_empty_page(api, path):
    response = api.get(path, {"offset": "1000000000"})
    body = response.json()
    assert response.status_code == 200
    # The sessions list is a bare list; the others are pages.
    assert (body if isinstance(body, list) else body["items"]) == []


# --- pages ---

# Each set mixes parameters different pages read; a page that refuses the first one it reads still answers 4xx.
GARBAGE = [
    {"cursor": "garbage", "photo": "not-a-uuid", "target": "elsewhere", "session": "x", "mode": "sideways"},
    {"cursor": "WzEsIDIsIDNd", "photo": "9" * 40, "seed": "reuse", "was": "running", "strength": "nan"},
    # A position past any integer (base64 of ["position", 99999999999999999999999, "00"]).
    {"cursor": "WyJwb3NpdGlvbiIsIDk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5LCAiMDAiXQ", "session": HUGE, "strength": "1e999"},
    {"model_key": "no-such-model", "vae_key": "x" * 1000, "all": HUGE},
    {"cursor": "\x00", "model_key": "\x00" * 3},
    {"sort": "sideways", "kind": "nothing"},
    {"sort": "oldest", "kind": ["uploaded", "generated"], "offset": HUGE, "limit": HUGE, "page": "-1"},
    {"width": HUGE, "height": "-8", "steps": "x", "batch_size": HUGE, "seed": HUGE, "model_key": "k", "prompt": "p"},
    {"local_backend_url": "http://[::1", "idle_timeout_minutes": HUGE, "monthly_budget": "1e999", "gpu_type": "\x00"},
]


def _pages(patterns=None, prefix=""):
    """Every page URL pattern (not the admin's or the API's), as a route with <name> placeholders."""
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(entry.pattern).removeprefix("^").removesuffix("$")
        # Logging out would leave the rest of the walk to an anonymous visitor.
        if route.startswith(("admin/", "logout/")) or is_api_path(f"/{route}"):
            continue
        if isinstance(entry, URLResolver):
            yield from _pages(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route


def _urls(app_objects) -> list[str]:
    """Each page twice: with the ids of real app_objects, and with ids no row can have."""
    real = {
        "<uuid:album_id>": str(app_objects["album"]),
        "<uuid:photo_id>": str(app_objects["photo"]),
        "<uuid:pk>": str(app_objects["photo"]),
        "<str:token>": app_objects["token"],
        "(?P<token>[^/]+)": app_objects["token"],
        "(?P<photo_id>[0-9a-f-]{36})": str(app_objects["photo"]),
        "steps/<int:pk>": f"steps/{app_objects['step']}",
        "steps/(?P<pk>\\d+)": f"steps/{app_objects['step']}",
        "<int:pk>": str(app_objects["session"]),
        "(?P<pk>\\d+)": str(app_objects["session"]),
        "<str:key>": app_objects["model"],
        "<int:backend_id>": "1",
        "<int:session_id>": "1",
    }
    missing = {
        "<uuid:album_id>": "00000000-0000-0000-0000-000000000000",
        "<uuid:photo_id>": "00000000-0000-0000-0000-000000000000",
        "<uuid:pk>": "00000000-0000-0000-0000-000000000000",
        "<str:token>": "x" * 300,
        "(?P<token>[^/]+)": "x" * 300,
        "(?P<photo_id>[0-9a-f-]{36})": "00000000-0000-0000-0000-000000000000",
        "<int:pk>": HUGE,
        "(?P<pk>\\d+)": HUGE,
        "<str:key>": "no-such-model",
        "<int:backend_id>": HUGE,
        "<int:session_id>": HUGE,
    }
    choices = {
        "(?P<status>completed|abandoned)": "completed",
        "(?P<variation>remix|continue)": "remix",
        "(?P<variant>thumbnail|display|file)": "display",
        "(?P<rest>.*)": "no/such/share/path",
        "(?P<pod_id>[A-Za-z0-9]{1,64})": "abc123",
        "(?P<action>pause|resume)": "pause",
    }
    urls = set()
    for route in _pages():
        for values in (real, missing):
            url = route
            for marker, value in {**values, **choices}.items():
                url = url.replace(marker, value)
            assert "<" not in url and "(?P" not in url, f"a URL pattern this test cannot fill: {route}"
            urls.add("/" + url)
    return sorted(urls)


def test_every_page_answers_garbage_with_a_4xx_or_ignores_it(owner_client, app_objects):
    urls = _urls(app_objects)
    assert len(urls) > 30
    served = []
    for url in urls:
        for params in GARBAGE:
            for method, htmx in (("get", {}), ("get", {"HX-Request": "true"}), ("post", {"HX-Request": "true"})):
                response = getattr(owner_client, method)(url, params, headers=htmx)
                assert response.status_code < 500, (method, url, params, htmx, response.content[:300])
                served.append(response.status_code)
    # Many got through to the views rather than a 404 or 405 at the door.
    assert sum(status < 400 for status in served) > len(served) // 5


# --- found by the fuzzers on PostgreSQL ---


@pytest.mark.parametrize("url", ["/studio/model-fields/?model_key=%00", "/?kind=all&x%00=1", "/api/models/?base=%00"])
def test_a_nul_character_in_a_query_is_a_400(owner_client, url):
    # PostgreSQL text columns cannot hold NUL: it reached a filter and answered 500.
    headers = {"HX-Request": "true"} if url.startswith("/studio/") else {}
    response = owner_client.get(url, headers=headers)
    assert response.status_code == 400
    if url.startswith("/api/"):
        assert error_shape(response)["code"] == "invalid_character"
    else:
        assert "NUL character" in response.content.decode()


@pytest.mark.parametrize("limit", [10_450_203_641, 2**63, 1_000_001])
def test_a_share_limit_no_column_can_hold_is_a_400(api, app_objects, limit):
    response = api.post(f"/api/albums/{app_objects['album']}/shares/", {"max_views": limit}, format="json")
    assert response.status_code == 400
    assert error_shape(response)["code"] in ("invalid_limit", "invalid")
