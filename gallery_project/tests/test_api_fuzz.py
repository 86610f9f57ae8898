"""The API fuzzed from its own OpenAPI schema (`/api/schema/`) with schemathesis, through a live server.

Every operation gets valid and invalid requests (schemathesis' positive and negative modes), with the ids of
real objects and with random ones. Whatever comes in, the answer is never a 500, and an error is in the
project's shape. Bounded and derandomized (the same examples every run), so it runs in CI on both databases;
502 and 503 are the project's answers for an InvokeAI or RunPod that fails, not crashes.
"""

from __future__ import annotations

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from knox.models import AuthToken
from schemathesis import GenerationMode

from backends import pods
from testing.fake_runpod import FakeRunPod

EXAMPLES = 12
# Path parameters that name an object, by the start of the path: which of the fixture's objects to use.
REAL_IDS = {
    "/api/albums/{id}": "album",
    "/api/photos/{photo_id}": "photo",
    "/api/photos/{id}": "photo",
    "/api/photos/thumbnail/{id}": "photo",
    "/api/generation/sessions/{id}": "session",
    "/api/generation/steps/{id}": "step",
    "/api/image/{image_id}": "photo",
    "/api/get_image/{image_id}": "photo",
    "/api/status/{job_id}": "step",
    "/api/models/{key}": "model",
    "/api/shares/{id}": "share",
}


# The schema, read once per live server (it lives as long as the test session).
_schemas: dict[str, schemathesis.BaseSchema] = {}


def _operations() -> list[tuple[str, str]]:
    spec = SchemaGenerator().get_schema(request=None, public=True)
    return [(path, method.upper()) for path, operations in spec["paths"].items() for method in operations]


@pytest.fixture
def fuzzed(live_server, user, app_objects, monkeypatch):
    """The schema as the live server serves it, and the headers to call it with."""
    monkeypatch.setattr(pods.common, "runpod_adapter", FakeRunPod)
    headers = {"Authorization": f"Token {AuthToken.objects.create(user)[1]}"}
    url = f"{live_server.url}/api/schema/"
    if url not in _schemas:
        _schemas[url] = schemathesis.openapi.from_url(url, headers=headers)
    return _schemas[url], headers


def _strategy(operation, path: str, objects: dict):
    modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    strategies = [operation.as_strategy(mode) for mode in modes]
    for prefix, name in REAL_IDS.items():
        if path.startswith(prefix):
            parameter = prefix.rsplit("{", 1)[1].rstrip("}")
            strategies += [operation.as_strategy(mode, path_parameters={parameter: objects[name]}) for mode in modes]
    return st.one_of(strategies)


@pytest.mark.parametrize(("path", "method"), _operations())
def test_no_request_makes_the_api_fail(fuzzed, app_objects, path, method):
    schema, headers = fuzzed
    operation = schema[path][method]
    failures: list[str] = []

    @given(case=_strategy(operation, path, app_objects))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def call(case) -> None:
        response = case.call(headers=headers)
        request = f"{case.method} {response.request.url} {str(case.body)[:200]}"
        if response.status_code == 500 or response.status_code > 503:
            failures.append(f"{request} -> {response.status_code} {response.text[:300]}")
        elif response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            if not (isinstance(body, dict) and {"code", "message", "details"} <= set(body)):
                failures.append(f"{request} -> {response.status_code} not in the error shape: {response.text[:300]}")

    call()
    assert not failures, "\n".join(failures[:5])
