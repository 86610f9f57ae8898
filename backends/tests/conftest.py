"""Fixtures for the backend tests: a fake RunPod (in memory, or served as GraphQL for the SDK)."""

from __future__ import annotations

import pytest

from backends.runpod import RunPodSDK

from .fake_runpod import API_KEY, FakeRunPod


@pytest.fixture
def fake_runpod() -> FakeRunPod:
    return FakeRunPod()


@pytest.fixture
def runpod_server(monkeypatch):
    """The fake served as RunPod's GraphQL API on 127.0.0.1, where the SDK looks (RUNPOD_API_BASE_URL)."""
    server = FakeRunPod().serve()
    monkeypatch.setenv("RUNPOD_API_BASE_URL", server.url)
    yield server
    server.stop()


@pytest.fixture(params=["memory", "sdk"])
def account(request):
    """(fake, adapter): the fake itself as the adapter, and the SDK adapter talking to it over GraphQL."""
    if request.param == "memory":
        fake = request.getfixturevalue("fake_runpod")
        return fake, fake
    fake = request.getfixturevalue("runpod_server")
    return fake, RunPodSDK(API_KEY)
