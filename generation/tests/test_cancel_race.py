"""A cancel racing the request that creates the step, at every point of that request.

Whatever the interleaving: the batch that reached InvokeAI is cancelled there (nothing of it stays pending or in
progress: on a pod that would be paid GPU time), the step ends cancelled, the cancel answers with the step marked
as being cancelled, and the creating request answers with the same step, cancelled, instead of an error.

The creating request runs in a thread of its own, as it would in the server; the fake InvokeAI holds it at the
point under test (`hold_requests`) while the test sends the cancel, then lets it go on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import requests
from django.db import connection
from django.utils import timezone

from backends.invokeai.errors import InvokeAIConnectionError
from gallery_project.errors import Conflict
from generation import follower, lifecycle, models_cache, services
from generation.models import GenerationStep

from .conftest import step_request

PASSWORD = "correct horse battery"

pytestmark = pytest.mark.django_db(transaction=True)

Status = GenerationStep.Status
ENQUEUE = r"/enqueue_batch$"


class Concurrent(threading.Thread):
    """A call made from another thread, as a second request to the server would be."""

    def __init__(self, call: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self._call = call
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._call()
        except BaseException as exc:  # handed to the test, which asserts on it
            self.error = exc
        finally:
            connection.close()

    def outcome(self) -> Any:
        self.join(timeout=30)
        assert not self.is_alive(), "the request never finished"
        if self.error is not None:
            raise self.error
        return self.result


def pending_step() -> GenerationStep:
    return GenerationStep.objects.get(status=Status.PENDING)


def left_running(invokeai, batch_id: str) -> list[str]:
    """What the fake InvokeAI still has to do of the batch."""
    return [
        item.status
        for item in invokeai.items.values()
        if item.batch["batch_id"] == batch_id and item.status in ("pending", "in_progress")
    ]


def batch_items(invokeai, batch_id: str) -> list[str]:
    return [item.status for item in invokeai.items.values() if item.batch["batch_id"] == batch_id]


@pytest.fixture
def create(invokeai, sd1, session, enqueued, user):
    def start(**overrides) -> Concurrent:
        thread = Concurrent(
            lambda: services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, **overrides))
        )
        thread.start()
        return thread

    return start


@pytest.mark.parametrize(
    "held",
    [r"^/api/v2/models/i/", r"^/api/v1/images/upload$"],
    ids=["while-checking-the-model", "while-uploading-the-init-photo"],
)
def test_a_cancel_before_the_batch_is_sent_sends_nothing(invokeai, create, gallery_photo, held, user):
    photo = gallery_photo()
    hold = invokeai.hold_requests(held)
    creating = create(mode="img2img", init_photo_id=photo.pk)
    hold.wait_reached()

    cancelling = services.step_cancel(owner=user, step_id=pending_step().pk)
    assert (cancelling.status, cancelling.cancel_requested_at is not None) == (Status.PENDING, True)
    hold.release()

    step = creating.outcome()
    assert (step.status, step.error_message, step.item_ids) == (Status.CANCELLED, lifecycle.CANCELLED_UNSENT, [])
    assert ("POST", "/api/v1/queue/default/enqueue_batch") not in invokeai.requests
    assert invokeai.items == {}


@pytest.mark.parametrize("after", [False, True], ids=["before-invokeai-takes-it", "before-its-answer-arrives"])
def test_a_cancel_while_the_batch_is_being_enqueued_cancels_it_on_invokeai(invokeai, create, after, user):
    hold = invokeai.hold_requests(ENQUEUE, after=after)
    creating = create()
    hold.wait_reached()

    cancelling = services.step_cancel(owner=user, step_id=pending_step().pk)
    assert (cancelling.status, cancelling.cancel_requested_at is not None) == (Status.PENDING, True)
    hold.release()

    step = creating.outcome()
    assert step.status == Status.CANCELLED and len(step.item_ids) == 4
    assert step.error_message == "Cancelled after 0 of 4 images."
    assert batch_items(invokeai, step.batch_id) == ["canceled"] * 4


def test_a_cancel_between_running_and_the_enqueuer_s_last_look(invokeai, create, monkeypatch, user):
    """The step is RUNNING already: the cancel cancels the batch itself; the enqueuer finds nothing left to do."""
    marked, go_on = threading.Event(), threading.Event()
    mark_used = models_cache.model_mark_used

    def held_after_running(*, key: str) -> None:
        mark_used(key=key)
        marked.set()
        go_on.wait(timeout=30)

    monkeypatch.setattr(models_cache, "model_mark_used", held_after_running)
    creating = create()
    assert marked.wait(timeout=30)

    running = GenerationStep.objects.get()
    assert running.status == Status.RUNNING
    assert services.step_cancel(owner=user, step_id=running.pk).status == Status.CANCELLED
    go_on.set()

    step = creating.outcome()
    assert step.status == Status.CANCELLED
    assert left_running(invokeai, step.batch_id) == []


def test_a_cancel_after_the_step_was_created(invokeai, sd1, session, enqueued, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    assert services.step_cancel(owner=user, step_id=step.pk).status == Status.CANCELLED
    assert left_running(invokeai, step.batch_id) == []


def test_a_cancel_while_invokeai_fails_to_answer_the_enqueue(invokeai, create, settings, user):
    """InvokeAI took the batch but answered too late: the batch is cancelled there and the step ends cancelled,
    because the cancel came first; the creating request answers with it rather than with the timeout."""
    settings.INVOKEAI_READ_TIMEOUT = 1
    hold = invokeai.hold_requests(ENQUEUE, after=True)
    creating = create()
    hold.wait_reached()
    services.step_cancel(owner=user, step_id=pending_step().pk)

    step = creating.outcome()
    hold.release()
    assert (step.status, step.error_message) == (Status.CANCELLED, lifecycle.CANCELLED_UNSENT)
    assert batch_items(invokeai, step.batch_id) == ["canceled"] * 4


def test_an_enqueue_answered_too_late_is_failed_and_its_batch_cancelled(invokeai, sd1, session, settings, user):
    """No cancel at all: the timeout is the answer, and the batch InvokeAI took anyway does not run unseen."""
    settings.INVOKEAI_READ_TIMEOUT = 1
    hold = invokeai.hold_requests(ENQUEUE, after=True)
    with pytest.raises(InvokeAIConnectionError, match="did not answer"):
        services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    hold.release()
    step = GenerationStep.objects.get()
    assert step.status == Status.FAILED and "did not answer" in step.error_message
    assert batch_items(invokeai, step.batch_id) == ["canceled"] * 4


def test_a_cancel_racing_the_sweep_of_interrupted_steps_keeps_cancelled(invokeai, sd1, session, enqueued, user):
    """A step left PENDING by a crash, with a cancel asked for, ends cancelled (not failed) when swept."""
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    GenerationStep.objects.filter(pk=step.pk).update(status=Status.PENDING, item_ids=[])
    services.step_cancel(owner=user, step_id=step.pk)
    assert follower.steps_resume(now=timezone.now() + timedelta(minutes=10)) == 1
    step.refresh_from_db()
    assert (step.status, step.error_message) == (Status.CANCELLED, lifecycle.CANCELLED_UNSENT)
    assert left_running(invokeai, step.batch_id) == []


def test_a_finished_step_has_nothing_to_cancel(invokeai, sd1, session, enqueued, user):
    step = services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    services.step_cancel(owner=user, step_id=step.pk)
    with pytest.raises(Conflict, match="nothing to cancel"):
        services.step_cancel(owner=user, step_id=step.pk)


# --- the same races as real concurrent HTTP requests to the running server ---


class Api:
    """The API of the live server, with a token, as a script would call it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        token = self.http.post(f"{url}/api/auth/token/", data={"username": "owner", "password": PASSWORD}).json()
        self.http.headers["Authorization"] = f"Token {token['token']}"

    def post(self, path: str, body: dict | None = None) -> requests.Response:
        return self.http.post(f"{self.url}{path}", json=body or {}, timeout=30)

    def get(self, path: str) -> requests.Response:
        return self.http.get(f"{self.url}{path}", timeout=30)

    def in_flight(self) -> list[dict]:
        return self.get("/api/queue").json()["jobs"]


@pytest.fixture
def api_live(live_server, user, invokeai, enqueued):
    api = Api(live_server.url)
    yield api
    # Before the live server stops: a kept-alive connection would outlive the test's database connection.
    api.http.close()


def step_body(sd1) -> dict:
    return {"prompt": "a lighthouse", "model_key": sd1.key, "width": 64, "height": 64, "steps": 2, "batch_size": 3}


def test_http_cancel_while_the_step_request_is_enqueueing(api_live, invokeai, sd1, session):
    hold = invokeai.hold_requests(ENQUEUE)
    creating = Concurrent(lambda: api_live.post(f"/api/generation/sessions/{session.pk}/steps/", step_body(sd1)))
    creating.start()
    hold.wait_reached()
    [job] = api_live.in_flight()
    assert job["status"] == "pending"

    cancel = api_live.post(f"/api/generation/steps/{job['job_id']}/cancel")
    assert cancel.status_code == 200, cancel.text
    assert (cancel.json()["status"], cancel.json()["cancel_requested"]) == ("pending", True)
    hold.release()

    created = creating.outcome()
    assert created.status_code == 202, created.text
    assert (created.json()["id"], created.json()["status"]) == (int(job["job_id"]), "cancelled")
    status = api_live.get(created.json()["status_url"]).json()
    assert (status["status"], status["cancel_requested"], len(status["item_ids"])) == ("cancelled", True, 3)
    assert left_running(invokeai, status["batch_id"]) == []


def test_http_cancel_while_cyberimage_generate_is_enqueueing(api_live, invokeai, sd1):
    hold = invokeai.hold_requests(ENQUEUE, after=True)
    body = {"prompt": "a lighthouse", "model": "tiny-sd1", "settings": {"num_images": 2, "width": 64, "height": 64}}
    creating = Concurrent(lambda: api_live.post("/api/generate", body))
    creating.start()
    hold.wait_reached()
    [job] = api_live.in_flight()
    assert api_live.post(f"/api/generation/steps/{job['job_id']}/cancel").status_code == 200
    hold.release()

    created = creating.outcome()
    assert created.status_code == 202, created.text
    # CyberImage's clients know only completed and failed as ends: a cancelled job is failed, saying so.
    assert (created.json()["job_id"], created.json()["status"]) == (job["job_id"], "failed")
    assert GenerationStep.objects.get().status == GenerationStep.Status.CANCELLED
    status = api_live.get(created.json()["status_url"]).json()
    assert status["status"] == "failed" and "cancel" in status["error_message"].lower()
    assert left_running(invokeai, GenerationStep.objects.get().batch_id) == []


def test_http_cancel_sent_as_soon_as_the_step_shows_whatever_the_timing(api_live, invokeai, sd1, session):
    """Nothing held: the two requests race as they come, ten times; every round ends the same way."""
    for _ in range(10):
        creating = Concurrent(lambda: api_live.post(f"/api/generation/sessions/{session.pk}/steps/", step_body(sd1)))
        creating.start()
        jobs: list[dict] = []
        while not jobs and creating.is_alive():
            jobs = api_live.in_flight()
        created = creating.outcome()
        assert created.status_code == 202, created.text
        step_id = int(jobs[0]["job_id"]) if jobs else created.json()["id"]
        cancel = api_live.post(f"/api/generation/steps/{step_id}/cancel")
        assert cancel.status_code == 200, cancel.text
        assert cancel.json()["cancel_requested"] is True
        step = GenerationStep.objects.get(pk=step_id)
        assert step.status == Status.CANCELLED
        assert left_running(invokeai, step.batch_id) == []
