"""CyberImage's page, call by call in the order its `main.js` makes them: models -> generate -> status every 2 s
until completed or failed -> gallery -> get_image, with a token as its client is given one. Against the fake
InvokeAI, and against the real one (`-m invokeai`, INVOKEAI_TEST_URL) on its tiny SD1 model."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import pytest
from knox.models import AuthToken
from PIL import Image
from rest_framework.test import APIClient

from generation import follower
from testing.real_invokeai import needs_real

pytestmark = pytest.mark.django_db

POLLS = 150


def cyberimage_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user)[1]}")
    return client


def run_the_page(client: APIClient, base: str, *, size: int, steps: int, between_polls: Callable[[int], None]):
    """What CyberImage's page does for one image job, its calls under `base`; `between_polls(job)` is the 2 s
    the page waits (in which the app's worker follows the job). The model list is always read under the prefix:
    `/api/models` is the app's own."""
    # initializeModels(): the model list, the default model and its step_config for the steps slider.
    models = client.get("/cyberimage/api/models").json()
    assert "tiny-sd1" in models["models"] and models["default"] in models["models"]
    chosen = models["models"]["tiny-sd1"]
    assert chosen["type"] == "image"
    config = chosen["step_config"]
    low = config["steps"]["min"] if "steps" in config else config["fixed_steps"]
    guidance = config["guidance"]["default"]

    # The form's submit: CyberImage only checks response.ok and data.job_id.
    generate = client.post(
        f"{base}/generate",
        {
            "model_id": "tiny-sd1",
            "prompt": "a neon city in the rain",
            "negative_prompt": "blurry",
            "settings": {
                "num_images": 2,
                "num_inference_steps": max(low, steps),
                "guidance_scale": guidance,
                "height": size,
                "width": size,
                "type": "image",
            },
        },
        format="json",
    )
    assert 200 <= generate.status_code < 300, generate.json()
    job = generate.json()["job_id"]

    # pollGenerationStatus(): until completed or failed, reading status_message, progress and queue_position.
    seen = []
    for _ in range(POLLS):
        status = client.get(f"{base}/status/{job}")
        assert status.status_code == 200
        data = status.json()
        assert data["status"] in ("pending", "processing", "completed", "failed")
        assert isinstance(data["progress"], int) and 0 <= data["progress"] <= 100 and data["status_message"]
        seen.append((data["status"], data["progress"]))
        if data["status"] in ("completed", "failed"):
            break
        between_polls(int(job))
    assert data["status"] == "completed", data["error_message"]
    assert [progress for _, progress in seen] == sorted(progress for _, progress in seen)
    assert seen[-1] == ("completed", 100)

    # refreshRecentGenerationsSection(): the newest images, then each one's thumbnail and file.
    gallery = client.get(f"{base}/gallery?page=1&per_page=4").json()
    ours = [image for image in gallery["images"] if image["job_id"] == job]
    assert len(ours) == 2 and {image["id"] for image in ours} == {image["id"] for image in data["images"]}
    for image in ours:
        assert image["prompt"] == "a neon city in the rain" and image["model_id"] == "tiny-sd1"
        thumbnail = client.get(image["thumbnail_url"])
        assert (thumbnail.status_code, thumbnail["Content-Type"]) == (200, "image/webp")
        b"".join(thumbnail.streaming_content)
        original = client.get(f"{base}/get_image/{image['id']}")
        assert (original.status_code, original["Content-Type"]) == (200, "image/png")
        with Image.open(io.BytesIO(b"".join(original.streaming_content))) as png:
            assert png.size == (size, size)
        metadata = client.get(f"{base}/image/{image['id']}/metadata").json()
        assert metadata["settings"]["num_images"] == 2 and metadata["total_images"] == 2
    return seen


@pytest.mark.parametrize("prefix", ["/api", "/cyberimage/api"])
def test_the_page_against_the_fake_invokeai(user, invokeai, sd1, enqueued, prefix):
    # An image every 3 s, so the page's 2 s polls see the job at work.
    invokeai.seconds_per_item = 3.0

    def worker_for_two_seconds(job: int) -> None:
        invokeai.clock.advance(2)
        follower.step_poll(step_id=job)

    seen = run_the_page(cyberimage_client(user), prefix, size=64, steps=2, between_polls=worker_for_two_seconds)
    assert seen[:2] == [("processing", 0), ("processing", 0)]
    assert ("processing", 50) in seen


@pytest.mark.invokeai
@needs_real
def test_the_page_against_the_real_invokeai(user, real):
    def worker_for_two_seconds(job: int) -> None:
        time.sleep(2)
        follower.step_poll(step_id=job)

    seen = run_the_page(
        cyberimage_client(user), "/cyberimage/api", size=128, steps=3, between_polls=worker_for_two_seconds
    )
    assert seen[0][0] in ("pending", "processing")
