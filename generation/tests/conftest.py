"""Fixtures for the studio's tests: the fake InvokeAI with its models cached, sessions, and a follower whose
waiting moves the fake's clock instead of the wall clock."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from backends import manager
from generation import follower, models_cache, services
from generation.models import CachedModel, GenerationStep
from photos import services as photo_services
from photos.tests.images import image_bytes
from testing.real_invokeai import REAL_URL

PROMPT = "a lighthouse at dusk, oil painting"


@pytest.fixture
def invokeai(use_fake_invokeai, settings):
    settings.MODEL_DEFINITIONS = {}
    models_cache.models_refresh()
    return use_fake_invokeai


@pytest.fixture
def sd1(invokeai) -> CachedModel:
    return CachedModel.objects.get(name="tiny-sd1")


@pytest.fixture
def session(user):
    return services.session_create(owner=user)


@pytest.fixture
def enqueued(monkeypatch) -> list[int]:
    """Steps handed to django-q2 for following (recorded instead of queued)."""
    handed: list[int] = []
    monkeypatch.setattr(follower, "step_follow_enqueue", lambda *, step_id, token="": handed.append(step_id))
    return handed


@pytest.fixture
def follow(invokeai, monkeypatch, enqueued):
    """Run the real follower; its pauses between polls advance the fake InvokeAI's clock. Its budget is the wall
    clock's, so a loaded machine would hand over mid-test: it follows to the end unless told otherwise."""
    monkeypatch.setattr(follower, "_sleep", invokeai.clock.advance)

    def run(step_id: int, **kwargs) -> str:
        kwargs.setdefault("budget", 120)
        return follower.step_follow(step_id=step_id, **kwargs)

    return run


def step_request(model: CachedModel, **overrides) -> services.StepRequest:
    values = {
        "prompt": PROMPT,
        "negative_prompt": "blurry",
        "model_key": model.key,
        "width": 64,
        "height": 64,
        "steps": 2,
        "batch_size": 4,
    }
    return services.StepRequest(**(values | overrides))


@pytest.fixture
def gallery_photo(user):
    def make(size=(640, 480), fmt="PNG", color=(30, 140, 60), plain=False):
        if plain:
            buffer = io.BytesIO()
            Image.new("RGB", size, color).save(buffer, fmt)
            data = buffer.getvalue()
        else:
            data = image_bytes(fmt, size, color=color)
        name = f"source.{'png' if fmt == 'PNG' else 'jpg'}"
        return photo_services.photo_create(owner=user, file=io.BytesIO(data), filename=name, size=len(data)).photo

    return make


@pytest.fixture
def real(settings, enqueued):
    """The real InvokeAI in use (tests marked `invokeai`); our own batches are cancelled there afterwards."""
    settings.INVOKEAI_LOCAL_URL = REAL_URL
    settings.INVOKEAI_READ_TIMEOUT = 60
    settings.MODEL_DEFINITIONS = {}
    models_cache.models_refresh()
    yield
    ours = list(GenerationStep.objects.exclude(batch_id="").values_list("batch_id", flat=True))
    if ours:
        manager.invokeai_client(REAL_URL).cancel_batches(ours)
