from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from photos import services
from testing.accounts import owner_account

from .images import image_bytes


@pytest.fixture
def upload():
    """Store an image through the real upload service and return the Photo."""

    def _upload(name: str = "holiday.jpg", data: bytes | None = None, **kwargs):
        data = image_bytes() if data is None else data
        kwargs.setdefault("owner", owner_account())
        return services.photo_create(file=io.BytesIO(data), filename=name, size=len(data), **kwargs).photo

    return _upload


def as_upload(name: str, data: bytes, content_type: str = "application/octet-stream") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)
