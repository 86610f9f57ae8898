"""The worker alert in real Chromium, on a wide screen and a phone."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from worker.models import WorkerHeartbeat

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = {"wide": {"width": 1440, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.mark.parametrize("size", SIZES)
def test_a_stale_heartbeat_shows_on_every_page_and_a_fresh_one_does_not(logged_in_page, live_server, settings, size):
    settings.WORKER_HEARTBEAT_STALE_AFTER = 180
    page = logged_in_page
    page.set_viewport_size(SIZES[size])
    WorkerHeartbeat.objects.update_or_create(pk=1, defaults={"beat_at": timezone.now() - timedelta(minutes=7)})
    for path in ("/", "/studio/"):
        page.goto(f"{live_server.url}{path}")
        alert = page.locator("#worker-alert")
        expect(alert).to_be_visible()
        expect(alert).to_contain_text("Background work has stopped. The worker's last heartbeat was 7")
        expect(alert).to_contain_text("RunPod pods are not stopped when idle")
        box = alert.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= SIZES[size]["width"], box
        page.screenshot(path=f"/tmp/worker-alert-{size}{path.strip('/').replace('/', '-') or '-gallery'}.png")
    WorkerHeartbeat.objects.filter(pk=1).update(beat_at=timezone.now())
    page.goto(f"{live_server.url}/")
    expect(page.locator("#worker-alert")).to_be_hidden()
