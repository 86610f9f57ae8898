"""Fixtures for the tests that walk the whole app (every page, every API operation)."""

from __future__ import annotations

import io

import pytest

from albums import services as album_services
from generation import follower, models_cache
from generation import services as generation_services
from generation.models import CachedModel
from photos import services as photo_services
from photos.tests.images import image_bytes


@pytest.fixture
def app_objects(user, use_fake_invokeai, settings, monkeypatch) -> dict:
    """One of each thing a URL can name: a photo in an album with a password-protected share link, a cached
    model, and a studio session with a finished step. Ids as the URLs carry them; `token` is the link's."""
    settings.MODEL_DEFINITIONS = {}
    models_cache.models_refresh()
    data = image_bytes("PNG", (120, 120))
    photo = photo_services.photo_create(owner=user, file=io.BytesIO(data), filename="a.png", size=len(data)).photo
    album = album_services.album_create(owner=user, name="Trip")
    album_services.album_add_photos(album_id=album.pk, owner=user, photo_ids=[photo.pk])
    share = album_services.share_link_create(owner=user, album_id=album.pk, password="hunter22")
    model = CachedModel.objects.get(name="tiny-sd1")
    session = generation_services.session_create(owner=user)
    request = generation_services.StepRequest(prompt="a cat", model_key=model.key, width=64, height=64, steps=2)
    step = generation_services.step_create(session_id=session.pk, owner=user, request=request)
    # The follower's pauses move the fake's clock, so the step finishes without waiting.
    monkeypatch.setattr(follower, "_sleep", use_fake_invokeai.clock.advance)
    follower.step_follow(step_id=step.pk, budget=120)
    return {
        "album": str(album.pk),
        "photo": str(photo.pk),
        "session": session.pk,
        "step": step.pk,
        "model": model.key,
        "share": share.link.pk,
        "token": share.token,
    }
