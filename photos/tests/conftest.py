from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from conftest import log_in, watch_console, watch_csp
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


BROWSER_VIEWPORTS = [{"width": 1440, "height": 900}, {"width": 390, "height": 844}]


@pytest.fixture(params=BROWSER_VIEWPORTS, ids=["desktop", "phone"])
def sized_page(request, browser, live_server, user, client):
    """A signed-in page at a desktop's and at a phone's size (`page.viewport`); like `page`, the test fails on a
    JavaScript error or a Content-Security-Policy violation."""
    context = browser.new_context(viewport=request.param)
    violations = watch_csp(context)
    log_in(context, live_server, client, user)
    page = context.new_page()
    page.set_default_timeout(15_000)
    watch_console(page, violations)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.viewport = request.param
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert not violations, "Content-Security-Policy violations:\n" + "\n".join(violations)
