"""Walk every URL pattern: an anonymous request to anything not explicitly public is redirected or refused."""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

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


def _sample(inner: str) -> str:
    candidates = [str(uuid.uuid4()), "1", "abc", inner.split("|")[0]]
    for candidate in candidates:
        if re.fullmatch(inner, candidate):
            return candidate
    raise AssertionError(f"no sample value for group {inner!r}; extend the candidates")


def _unanchored(regex: str) -> str:
    return re.sub(r"(\$|\\Z)$", "", regex)


def sample_path(regex: str) -> str:
    """A concrete path that the (concatenated) URL regex matches."""
    out, index = "", 0
    while (start := regex.find("(?P<", index)) != -1:
        out += regex[index:start]
        end = _group_end(regex, start)
        inner = regex[regex.index(">", start) + 1 : end]
        out += _sample(inner)
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
