"""Walk every URL pattern: an anonymous request to anything not explicitly public is redirected or refused, and
another account, not staff, can neither read nor change anything of the owner's."""

from __future__ import annotations

import re
import uuid

import pytest
from django.db.models import F
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from albums import services as album_services
from albums.models import Album, AlbumPhoto, ShareLink
from backends.models import BackendSettings, PodSession
from backends.services import backend_settings_get
from generation import models_cache
from generation import services as generation_services
from generation.models import CachedModel, GenerationSession, GenerationStep, Preset, StepAlternative
from photos.models import Photo
from photos.tests.conftest import upload  # noqa: F401  (the fixture)
from photos.tests.factories import PhotoFactory
from testing.accounts import other_account

pytestmark = pytest.mark.django_db

# Views anyone may open. Adding a name here is a security decision: say why beside it.
PUBLIC = {
    "login",  # the login form
    "logout",  # logging out needs no login
    "setup",  # first-run account creation; it refuses once an account exists
    "api-token",  # trades a username and password for an API token
    "admin:login",
    "admin:logout",
    # Share links: the token in the path is the credential. Unknown, revoked, expired or used-up tokens
    # answer 404, and a valid one shows only what it shares (albums/tests/test_share_security.py).
    "albums:share",
    "albums:share-photo",
    "albums:share-photo-file",
    # Every other URL under /s/: always the visitor's not-found page, nothing else (test_share_security.py).
    "albums:share-not-found",
}


def _group_end(regex: str, start: int) -> int:
    depth = 0
    for index in range(start, len(regex)):
        if regex[index] == "\\":
            continue
        if regex[index] == "(" and (index == 0 or regex[index - 1] != "\\"):
            depth += 1
        elif regex[index] == ")" and regex[index - 1] != "\\":
            depth -= 1
            if depth == 0:
                return index
    raise ValueError(regex)


def _sample(inner: str, preferred: str | None = None) -> str:
    candidates = [str(uuid.uuid4()), "1", "abc", inner.split("|")[0]]
    for candidate in [preferred, *candidates] if preferred else candidates:
        if re.fullmatch(inner, candidate):
            return candidate
    raise AssertionError(f"no sample value for group {inner!r}; extend the candidates")


def _unanchored(regex: str) -> str:
    return re.sub(r"(\$|\\Z)$", "", regex)


def sample_path(regex: str, values: dict[str, str] | None = None) -> str:
    """A concrete path that the (concatenated) URL regex matches, with `values` for the named groups."""
    out, index = "", 0
    while (start := regex.find("(?P<", index)) != -1:
        out += regex[index:start]
        end = _group_end(regex, start)
        name = regex[start + 4 : regex.index(">", start)]
        inner = regex[regex.index(">", start) + 1 : end]
        out += _sample(inner, (values or {}).get(name))
        index = end + 1
    out += regex[index:]
    path = "/" + _unanchored(out).replace("/?", "/").replace("\\", "")
    assert re.fullmatch(_unanchored(regex), path[1:]), (regex, path)
    return path


def walk(patterns, prefix="", namespace=""):
    for entry in patterns:
        regex = prefix + entry.pattern.regex.pattern.lstrip("^")
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from walk(entry.url_patterns, regex.rstrip("$"), ns)
        elif isinstance(entry, URLPattern):
            yield f"{namespace}{entry.name}" if entry.name else regex, regex


ALL = sorted(set(walk(get_resolver().url_patterns)))
PRIVATE = [pytest.param(sample_path(regex), id=name) for name, regex in ALL if name not in PUBLIC]


def test_the_walk_sees_the_whole_site():
    names = {name for name, _ in ALL}
    assert {"photos:gallery", "photo-list", "photo-file", "api-schema", "admin:index"} <= names
    assert names >= PUBLIC, f"public names that no longer exist: {PUBLIC - names}"


@pytest.mark.parametrize("path", PRIVATE)
@pytest.mark.parametrize("method", ["get", "post"])
def test_anonymous_request_is_redirected_or_refused(client, path, method):
    response = getattr(client, method)(path)
    if response.status_code in (301, 302):
        assert "login" in response["Location"], response["Location"]
    else:
        assert response.status_code in (401, 403), (path, response.status_code)


def test_anonymous_api_answers_401_not_a_redirect(client):
    response = client.get("/api/photos/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_htmx_request_gets_a_client_redirect(client):
    response = client.get("/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response["HX-Redirect"].startswith("/login/")


# --- Another account, not staff, walks every route with the owner's ids ---

# Staff-only: the backend (its page and forms, every write of its API, pods, the RunPod key, InvokeAI URLs)
# the model cache's refresh and edits, and pausing InvokeAI's processor (everyone's work stops). Non-staff get 403
# (405 for a method the view has no use for).
STAFF_ONLY = {
    "queue:processor",
    "backends:page",
    "backends:mode",
    "backends:start",
    "backends:stop",
    "backends:stop-session",
    "backends:terminate",
    "backends:settings",
    "backends:api-key",
    "backends:backend-add",
    "backends:backend-update",
    "backends:backend-remove",
    "backend-list",
    "backend-detail",
    "backend-mode",
    "backend-pod-start",
    "backend-pod-stop",
    "backend-pod-session-stop",
    "backend-pod-sessions",
    "model-refresh",
    "studio:refresh-models",
    # Installing and uninstalling models, and the Models page with its favorites and step options.
    "model-install-list",
    "model-install-detail",
    "studio:models",
    "studio:install",
    "studio:install-status",
    "studio:model-favorite",
    "studio:model-options",
    "studio:model-uninstall",
}
# Staff-only for some methods: the model list, detail and components are read by everyone, changed by staff.
STAFF_TO_CHANGE = {"model-detail", "model-components"}
METHODS = ["get", "post", "put", "patch", "delete"]
SECRET_NAME = "Owner's secret album"
SECRET_PROMPT = "an owner's secret prompt about a lighthouse"
SECRET_FILENAME = "owner-secret-holiday.jpg"


def _kind(name: str) -> str | None:
    """Which of the owner's objects a route's `pk` names."""
    prefixes = {
        "photo-share": None,
        "photo": "photo",
        "photos:": "photo",
        "album": "album",
        "albums:detail": "album",
        "share-": "share",
        "generation-session": "session",
        "studio:session": "session",
        "studio:generate": "session",
        "studio:history": "session",
        "studio:close": "session",
        "generation-step": "step",
        "studio:step": "step",
        "preset-": "preset",
        "studio:preset-delete": "preset",
    }
    return next((kind for prefix, kind in prefixes.items() if name.startswith(prefix)), None)


def _values(name: str, ids: dict[str, str]) -> dict[str, str]:
    values = {
        "photo_id": ids["generated"] if name.startswith("studio:") else ids["photo"],
        "album_id": ids["album"],
        "image_id": ids["generated"],
        "job_id": ids["step"],
        "backend_id": "1",
        "key": ids["model"],
    }
    if kind := _kind(name):
        values["pk"] = ids[kind]
    return values


def _references(ids: dict[str, str]) -> dict:
    """A body naming the owner's objects in every field any view reads, for every write."""
    return {
        "photo_ids": [ids["photo"], ids["generated"]],
        "photo_id": ids["photo"],
        "image_id": ids["generated"],
        "source_image_id": ids["photo"],
        "init_photo_id": ids["photo"],
        "mask_photo_id": ids["photo"],
        "cover_photo_id": ids["photo"],
        "album_id": ids["album"],
        "from_album_id": ids["album"],
        "to_album_id": ids["album"],
        "parent_id": ids["step"],
        "session": ids["session"],
        # Unique, so that the second walk's album is not refused for the name the first one took.
        "name": f"A guest's album {uuid.uuid4()}",
        "title": "A guest's session",
        "prompt": "a guest's prompt",
        "model_key": ids["model"],
        "model": ids["model"],
        "mode": "img2img",
        "batch_size": 1,
        "width": 64,
        "height": 64,
        "steps": 2,
        "seed_mode": "random",
        "status": "abandoned",
        "is_favorite": True,
        "is_archived": True,
        "expires_in": "7d",
        "allow_download": True,
        "gpu_type": "NVIDIA GeForce RTX 4090",
        "api_key": "a-guest-s-key",
        "remove": "on",
        "local_backend_url": "http://127.0.0.1:1",
        "remote_backend_url": "http://127.0.0.1:1",
    }


def _query(ids: dict[str, str]) -> dict:
    """Query parameters naming the owner's objects, for the views that read ids from the query string."""
    return {"album": ids["album"], "photo": ids["photo"], "from": ids["album"], "album_id": ids["album"]}


def _body_text(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode("utf-8", "replace")


@pytest.fixture
def owners_things(user, upload, use_fake_invokeai, settings):  # noqa: F811
    """One of each of the owner's objects, with names that must never show up in another account's answers."""
    settings.MODEL_DEFINITIONS = {}
    models_cache.models_refresh()
    backend_settings_get()  # the row exists: another account's requests may not change it
    photo = upload(SECRET_FILENAME)
    # Never named in a request: their ids showing up in an answer can only be a leak.
    hidden = PhotoFactory(owner=user, filename="owner-hidden.jpg")
    trashed = PhotoFactory(owner=user, deleted_at=timezone.now())
    album = album_services.album_create(owner=user, name=SECRET_NAME)
    album_services.album_add_photos(album_id=album.pk, owner=user, photo_ids=[photo.pk, hidden.pk])
    hidden_album = album_services.album_create(owner=user, name="Owner's hidden album")
    album_link = album_services.share_link_create(owner=user, album_id=album.pk)
    photo_link = album_services.share_link_create(owner=user, photo_id=photo.pk)
    session = generation_services.session_create(owner=user, source_photo_id=photo.pk, title="Owner's session")
    model = CachedModel.objects.get(name="tiny-sd1")
    step = GenerationStep.objects.create(
        session=session,
        position=1,
        prompt=SECRET_PROMPT,
        parameters={"mode": "txt2img", "width": 64, "height": 64, "steps": 2, "seed": 7},
        model_key=model.key,
        model_hash=model.hash,
        model_name=model.name,
        batch_size=1,
        status=GenerationStep.Status.COMPLETED,
    )
    generated = PhotoFactory(
        owner=user,
        is_generated=True,
        generation_prompt=SECRET_PROMPT,
        retrieval_status="failed",
        retrieval_error="an owner's download error",
        invoke_id="owners-image.png",
    )
    StepAlternative.objects.create(step=step, photo=generated, item_id=1, index=0)
    preset = Preset.objects.create(owner=user, name="Owner's secret preset", model_key=model.key)
    ids = {
        "photo": str(photo.pk),
        "trashed": str(trashed.pk),
        "generated": str(generated.pk),
        "album": str(album.pk),
        "share": str(album_link.link.pk),
        "photo_share": str(photo_link.link.pk),
        "session": str(session.pk),
        "step": str(step.pk),
        "model": model.key,
        "preset": str(preset.pk),
    }
    secrets = [str(hidden.pk), str(trashed.pk), str(hidden_album.pk), str(photo_link.link.pk)]
    secrets += [SECRET_NAME, SECRET_PROMPT, SECRET_FILENAME, "Owner's session", album_link.token, photo_link.token]
    secrets += ["Owner's hidden album", "owner-hidden.jpg", "an owner's download error", "Owner's secret preset"]
    return {"ids": ids, "secrets": secrets, "user": user}


def owner_state(owner) -> list:
    """Everything of the owner's that another account must not change, and the backend's settings."""

    return [
        list(Photo.objects.filter(owner=owner).order_by("pk").values()),
        list(Album.objects.filter(owner=owner).order_by("pk").values()),
        list(AlbumPhoto.objects.filter(album__owner=owner).order_by("pk").values()),
        list(ShareLink.objects.filter(owner=owner).order_by("pk").values()),
        list(GenerationSession.objects.filter(owner=owner).order_by("pk").values()),
        list(GenerationStep.objects.filter(session__owner=owner).order_by("pk").values()),
        list(StepAlternative.objects.filter(step__session__owner=owner).order_by("pk").values()),
        list(CachedModel.objects.order_by("pk").values("key", "is_favorite", "options", "available")),
        list(Preset.objects.filter(owner=owner).order_by("pk").values()),
        list(PodSession.objects.order_by("pk").values()),
        # Activity and connection state may move with another account's use; what staff set may not.
        [
            {key: value for key, value in row.items() if key not in _BACKEND_STATE}
            for row in BackendSettings.objects.values()
        ],
    ]


_BACKEND_STATE = {"is_connected", "api_version", "last_connected_at", "connection_error", "last_activity_at"}


def assert_no_cross_owner_references() -> None:
    """Nothing of one account refers to another account's photos or albums."""

    assert not AlbumPhoto.objects.exclude(album__owner=F("photo__owner")).exists()
    assert not Album.objects.exclude(cover_photo=None).exclude(cover_photo__owner=F("owner")).exists()
    assert not ShareLink.objects.exclude(album=None).exclude(album__owner=F("owner")).exists()
    assert not ShareLink.objects.exclude(photo=None).exclude(photo__owner=F("owner")).exists()
    assert not GenerationSession.objects.exclude(source_image=None).exclude(source_image__owner=F("owner")).exists()
    for step in GenerationStep.objects.select_related("session"):
        for field in ("init_photo_id", "mask_photo_id"):
            if photo_id := step.parameters.get(field):
                assert Photo.objects.get(pk=photo_id).owner_id == step.session.owner_id, (step, field)


def _walk_as_guest(client, name: str, regex: str, ids: dict[str, str]) -> dict[str, tuple[int, str, str]]:
    """Each method's (status, body, Location) for the route with the given ids in path, query and body."""
    path = sample_path(regex, _values(name, ids))
    answers = {}
    for method in METHODS:
        if method == "get":
            response = client.get(path, _query(ids))
        elif path.startswith("/api/"):
            response = getattr(client, method)(path, _references(ids), content_type="application/json")
        elif method == "post":
            response = client.post(path, _references(ids))
        else:
            response = getattr(client, method)(path)
        answers[method] = (response.status_code, _body_text(response), response.get("Location", ""))
    return answers


GUEST_ROUTES = [pytest.param(name, regex, id=name) for name, regex in ALL if name not in PUBLIC]


@pytest.mark.parametrize(("name", "regex"), GUEST_ROUTES)
def test_another_account_cannot_read_or_change_the_owners_things(client, owners_things, name, regex):

    guest = other_account()
    client.force_login(guest)
    owner = owners_things["user"]
    before = owner_state(owner)
    answers = _walk_as_guest(client, name, regex, owners_things["ids"])
    # The same route with ids of nothing: another account's object must look exactly like a missing one.
    unknown = {key: str(uuid.uuid4()) for key in owners_things["ids"]}
    unknown |= {"session": "987654", "step": "987655", "preset": "987656"}
    unknown["model"] = owners_things["ids"]["model"]  # the model cache is shared by everyone
    missing = _walk_as_guest(client, name, regex, unknown)

    assert owner_state(owner) == before, f"{name} changed the owner's data"
    assert_no_cross_owner_references()
    for method, (status, body, location) in answers.items():
        where = f"{method.upper()} {name}"
        assert status < 500, (where, status, body[:300])
        leaked = [secret for secret in owners_things["secrets"] if secret in body or secret in location]
        assert not leaked, (where, leaked)
        if name.startswith("admin:") or name.startswith("admin/"):
            assert status == 302 and "/admin/login/" in location, (where, status)
        elif name in STAFF_ONLY or (name in STAFF_TO_CHANGE and method != "get"):
            assert status in (403, 405), (where, status)
        elif "(?P<" in regex and name not in STAFF_TO_CHANGE:
            assert status in (404, 405), (where, status, body[:300])
        assert status == missing[method][0], (where, "answers differently for the owner's ids", status, missing)
    if name in STAFF_ONLY:
        assert any(status == 403 for status, _, _ in answers.values()), name
