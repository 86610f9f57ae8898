"""The queue page: our steps in flight with their place in line, InvokeAI's own counts, cancel one or all,
pause and resume InvokeAI's processor; and the top bar's indicator."""

from __future__ import annotations

import pytest
from django.test import Client

from generation import services
from generation.models import GenerationStep
from testing.accounts import other_account

from .conftest import step_request

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
Status = GenerationStep.Status


@pytest.fixture
def steps(invokeai, sd1, session, enqueued, user):
    return [
        services.step_create(owner=user, session_id=session.pk, request=step_request(sd1, batch_size=2))
        for _ in range(3)
    ]


def test_the_page_lists_our_steps_in_line_and_invokeai_s_counts(owner_client, steps, invokeai, sd1):
    # Another account's step counts for the line but is not shown.
    guest = other_account()
    theirs = services.session_create(owner=guest)
    services.step_create(owner=guest, session_id=theirs.pk, request=step_request(sd1, prompt="their secret prompt"))
    page = owner_client.get("/queue/").content.decode()
    assert page.count('class="queue-step"') == 3
    assert [f'data-step-id="{step.pk}"' in page for step in steps] == [True] * 3
    assert "#1" in page and "#3" in page and "#4" not in page
    assert "their secret prompt" not in page
    # InvokeAI's own numbers: ten items (theirs too), one running, nine waiting.
    assert "<dt>Running</dt><dd>1</dd>" in page and "<dt>Waiting</dt><dd>9</dd>" in page
    assert "Pause InvokeAI" in page and 'hx-trigger="every 3s"' in page


def test_the_panel_costs_the_same_queries_for_one_step_or_many(owner_client, invokeai, sd1, session, enqueued, user):
    services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    owner_client.get("/queue/", headers=HX)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        owner_client.get("/queue/", headers=HX)
    for _ in range(4):
        services.step_create(owner=user, session_id=session.pk, request=step_request(sd1))
    with CaptureQueriesContext(connection) as five:
        body = owner_client.get("/queue/", headers=HX).content.decode()
    assert body.count('class="queue-step"') == 5
    assert len(five) == len(one)


def test_cancel_one_then_all(owner_client, steps, invokeai):
    one = owner_client.post(f"/queue/steps/{steps[0].pk}/cancel/", headers=HX).content.decode()
    assert one.count('class="queue-step"') == 2
    assert GenerationStep.objects.get(pk=steps[0].pk).status == Status.CANCELLED
    again = owner_client.post(f"/queue/steps/{steps[0].pk}/cancel/", headers=HX).content.decode()
    assert "there is nothing to cancel" in again
    rest = owner_client.post("/queue/cancel-all/", headers=HX).content.decode()
    assert "Nothing of yours is waiting or running." in rest
    assert set(GenerationStep.objects.values_list("status", flat=True)) == {Status.CANCELLED}
    assert {item.status for item in invokeai.items.values()} == {"canceled"}


def test_an_account_cannot_cancel_another_s_step(steps, invokeai):
    guest = Client()
    guest.force_login(other_account())
    guest.post(f"/queue/steps/{steps[0].pk}/cancel/", headers=HX)
    guest.post("/queue/cancel-all/", headers=HX)
    assert GenerationStep.objects.get(pk=steps[0].pk).status == Status.RUNNING


def test_pause_and_resume_invokeai(owner_client, steps, invokeai):
    paused = owner_client.post("/queue/processor/pause/", headers=HX).content.decode()
    assert invokeai.paused and "Resume InvokeAI" in paused and ">paused<" in paused
    invokeai.clock.advance(30)
    invokeai.pump()
    # The running item finished; nothing else started while paused.
    assert {item.status for item in invokeai.items.values()} == {"completed", "pending"}
    assert sum(item.status == "completed" for item in invokeai.items.values()) == 1
    resumed = owner_client.post("/queue/processor/resume/", headers=HX).content.decode()
    assert not invokeai.paused and "Pause InvokeAI" in resumed
    invokeai.clock.advance(1)
    invokeai.pump()
    assert any(item.status == "in_progress" for item in invokeai.items.values())


def test_only_staff_pause_invokeai(steps, invokeai):
    guest = Client()
    guest.force_login(other_account())
    assert guest.post("/queue/processor/pause/", headers=HX).status_code == 403
    assert "Pause InvokeAI" not in guest.get("/queue/").content.decode()
    assert not invokeai.paused


def test_the_page_says_so_when_invokeai_does_not_answer(owner_client, steps, invokeai):
    invokeai.refuse_connections()
    response = owner_client.get("/queue/")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('class="queue-step"') == 3 and "not answering" in page


def test_the_indicator_counts_our_steps_in_flight(owner_client, steps, user):
    busy = owner_client.get("/queue/indicator/", headers=HX).content.decode()
    assert '<span class="queue-count">3</span>' in busy and 'hx-trigger="every 3s"' in busy
    services.steps_cancel_all(owner=user)
    idle = owner_client.get("/queue/indicator/", headers=HX).content.decode()
    assert "queue-count" not in idle and 'hx-trigger="every 20s"' in idle
    assert 'id="queue-indicator"' in owner_client.get("/studio/").content.decode()
