"""Several InvokeAI backends at once, on two fake InvokeAI servers: the local one (in use) and an added URL.

A step goes to a backend that has its model and the shortest queue, stays there for everything that follows,
and one backend going down fails only its own steps.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from backends import routing
from backends import services as backend_services
from backends.models import Backend
from gallery_project.errors import Unavailable
from generation import follower, models_cache, services
from generation.models import CachedModel, GenerationStep
from testing.fake_invokeai import FakeInvokeAI, lora_models, tiny_model

from .conftest import step_request

pytestmark = pytest.mark.django_db
Status = GenerationStep.Status


@pytest.fixture
def second():
    server = FakeInvokeAI().start()
    yield server
    server.stop()


@pytest.fixture
def two(invokeai, second, django_capture_on_commit_callbacks):
    """The local fake in use plus `second` added as a backend, checked and with its models in the cache."""
    with django_capture_on_commit_callbacks():  # the check it queues is run here, below
        backend = backend_services.backend_add(name="second", url=second.url)
    backend_services.backend_check(backend_id=backend.pk)
    models_cache.models_refresh()
    return invokeai, second


@pytest.fixture
def follow_both(two, monkeypatch, enqueued):
    """Follow a step to its end; the follower's pauses move both fakes' clocks."""
    first, second = two

    def both(seconds: float) -> None:
        first.clock.advance(seconds)
        second.clock.advance(seconds)

    monkeypatch.setattr(follower, "_sleep", both)
    return lambda step_id: follower.step_follow(step_id=step_id, budget=120)


def create(user, session, model, **overrides) -> GenerationStep:
    return services.step_create(owner=user, session_id=session.pk, request=step_request(model, **overrides))


def enqueues(server: FakeInvokeAI) -> int:
    return sum(1 for method, path in server.requests if path.endswith("/enqueue_batch"))


def test_steps_go_to_the_shorter_queue_and_stay_there(two, follow_both, sd1, session, user):
    first, second = two
    steps = [create(user, session, sd1, batch_size=1) for _ in range(4)]
    # Ties go to the InvokeAI in use; then each new step finds the other queue shorter.
    assert [step.backend_url for step in steps] == [first.url, second.url, first.url, second.url]
    assert (enqueues(first), enqueues(second)) == (2, 2)
    for step in steps:
        assert follow_both(step.pk) == "finished"
        step.refresh_from_db()
        assert step.status == Status.COMPLETED and step.images_retrieved == 1
    # Each step's batch, its polls and its images were on its own backend only.
    for step in steps:
        server, other = (first, second) if step.backend_url == first.url else (second, first)
        assert any(step.batch_id in path for _, path in server.requests)
        assert not any(step.batch_id in path for _, path in other.requests)
        names = {alternative.photo.invoke_id for alternative in step.alternatives.select_related("photo")}
        assert names <= set(server.images) and not names & set(other.images)


def test_a_step_goes_to_the_backend_that_has_its_model(two, follow_both, session, user):
    first, second = two
    second.install_models([tiny_model("only-on-second", model_type="main", base="sd-1")])
    models_cache.models_refresh()
    backend_services.backend_check(backend_id=Backend.objects.get().pk)
    only = CachedModel.objects.get(name="only-on-second")
    # The in-use one's queue is empty and the second's is not: the model decides, not the queue.
    second_step = create(user, session, CachedModel.objects.get(name="tiny-sd1"), batch_size=1)
    assert second_step.backend_url == first.url
    steps = [create(user, session, only, batch_size=1) for _ in range(2)]
    assert {step.backend_url for step in steps} == {second.url}
    for step in steps:
        assert follow_both(step.pk) == "finished"
        step.refresh_from_db()
        assert step.status == Status.COMPLETED


def test_a_model_under_another_key_on_the_added_backend_is_sent_with_that_key(two, follow_both, sd1, session, user):
    """The same file installed on two InvokeAIs has two keys: each batch names its backend's, the cache keeps
    the in-use one's."""
    _, second = two
    other_key = second.reinstall_model("tiny-sd1")["key"]
    steps = [create(user, session, sd1, batch_size=1) for _ in range(2)]
    assert steps[1].backend_url == second.url
    for step in steps:
        assert follow_both(step.pk) == "finished"
        step.refresh_from_db()
        assert step.status == Status.COMPLETED, step.error_message
        assert step.model_key == sd1.key
    sd1.refresh_from_db()
    assert sd1.key != other_key and CachedModel.objects.filter(key=other_key).count() == 0


def test_a_backend_going_down_fails_only_its_own_steps(two, follow_both, sd1, session, user):
    first, second = two
    steps = [create(user, session, sd1, batch_size=1) for _ in range(4)]
    on_second = [step for step in steps if step.backend_url == second.url]
    second.refuse_connections()
    for step in steps:
        if step in on_second:
            continue
        assert follow_both(step.pk) == "finished"
        step.refresh_from_db()
        assert step.status == Status.COMPLETED
    for step in on_second:
        assert not follower.step_poll(step_id=step.pk).finished
        step.refresh_from_db()
        assert step.status == Status.RUNNING and "Waiting for InvokeAI" in step.error_message
        GenerationStep.objects.filter(pk=step.pk).update(last_contact_at=timezone.now() - timedelta(minutes=16))
        assert follower.step_poll(step_id=step.pk).finished
        step.refresh_from_db()
        assert step.status == Status.FAILED
        assert f"The InvokeAI at {second.url} stopped answering for more than 15 minutes" in step.error_message
    # The minute check marks it down: new steps go to the one that answers.
    assert backend_services.backends_check() == 0
    assert {create(user, session, sd1, batch_size=1).backend_url for _ in range(2)} == {first.url}


def test_a_backend_that_stops_answering_between_checks_is_passed_over(two, sd1, session, user):
    first, second = two
    create(user, session, sd1, batch_size=1)  # the in-use queue is now the longer one
    second.refuse_connections()
    assert create(user, session, sd1, batch_size=1).backend_url == first.url
    backend = Backend.objects.get()
    assert not backend.is_connected and backend.connection_error


def test_a_disabled_backend_gets_no_new_steps_but_finishes_its_own(two, follow_both, sd1, session, user):
    first, second = two
    steps = [create(user, session, sd1, batch_size=1) for _ in range(2)]
    backend_services.backend_update(backend_id=Backend.objects.get().pk, enabled=False)
    assert {create(user, session, sd1, batch_size=1).backend_url for _ in range(2)} == {first.url}
    assert follow_both(steps[1].pk) == "finished"
    steps[1].refresh_from_db()
    assert steps[1].backend_url == second.url and steps[1].status == Status.COMPLETED


def test_cancel_goes_to_the_steps_own_backend(two, sd1, session, user, enqueued):
    first, second = two
    steps = [create(user, session, sd1, batch_size=2) for _ in range(2)]
    assert steps[1].backend_url == second.url
    services.step_cancel(step_id=steps[1].pk, owner=user)
    assert any(path.endswith("cancel_by_batch_ids") for _, path in second.requests)
    assert not any(path.endswith("cancel_by_batch_ids") for _, path in first.requests)


def test_no_backend_with_the_model_is_refused_before_anything_is_recorded(two, session, user):
    _, second = two
    second.install_models([tiny_model("gone-everywhere", model_type="main", base="sd-1")])
    models_cache.models_refresh()
    model = CachedModel.objects.get(name="gone-everywhere")
    second.uninstall_model("gone-everywhere")
    backend_services.backend_check(backend_id=Backend.objects.get().pk)
    with pytest.raises(Unavailable, match="has this step's model"):
        create(user, session, model)
    assert not GenerationStep.objects.exists()


def test_the_pending_steps_of_ours_count_in_the_queue(two, sd1, session, user):
    """A step recorded but not yet enqueued is in no InvokeAI's count: routing adds it."""
    first, second = two
    step = create(user, session, sd1, batch_size=3)
    GenerationStep.objects.filter(pk=step.pk).update(status=Status.PENDING)
    first.vanish(step.item_ids)  # as if its batch had not reached InvokeAI yet
    assert routing.backend_choose(needs=[sd1.hash], pending=services._pending_images) == second.url


def recheck() -> None:
    """What the minute check and the model refresh would learn after the fakes' models changed."""
    backend_services.backend_check(backend_id=Backend.objects.get().pk)
    models_cache.models_refresh()


def batch_text(server: FakeInvokeAI, step: GenerationStep) -> str:
    return json.dumps(server.items[step.item_ids[0]].batch)


def test_a_steps_lora_and_vae_go_under_each_backends_own_key(two, sd1, session, user):
    first, second = two
    first.install_models(lora_models())
    second.install_models(lora_models())
    # The same files installed again on the second server: same hashes, keys of its own.
    second_keys = {name: second.reinstall_model(name)["key"] for name in ("tiny-sd1-lora", "tiny-sd1-vae")}
    recheck()
    lora, vae = (CachedModel.objects.get(name=name) for name in ("tiny-sd1-lora", "tiny-sd1-vae"))
    assert {lora.key, vae.key}.isdisjoint(second_keys.values())
    steps = [
        create(user, session, sd1, batch_size=1, loras=({"key": lora.key, "weight": 0.5},), vae_key=vae.key)
        for _ in range(2)
    ]
    assert [step.backend_url for step in steps] == [first.url, second.url]
    assert all(step.status == Status.RUNNING for step in steps)
    on_first, on_second = batch_text(first, steps[0]), batch_text(second, steps[1])
    assert lora.key in on_first and vae.key in on_first
    assert all(key in on_second for key in second_keys.values())
    assert lora.key not in on_second and vae.key not in on_second
    # What the step records stays in the cache's keys (a remix finds them there).
    assert steps[1].parameters["loras"][0]["key"] == lora.key


def test_a_backend_lacking_a_lora_gets_none_of_the_steps_using_it(two, sd1, session, user):
    first, second = two
    first.install_models(lora_models())
    recheck()
    lora = CachedModel.objects.get(name="tiny-sd1-lora")
    with_lora = [create(user, session, sd1, batch_size=1, loras=({"key": lora.key, "weight": 0.5},)) for _ in range(3)]
    # The second queue is the shorter from the second step on; it has not the LoRA.
    assert {step.backend_url for step in with_lora} == {first.url}
    assert create(user, session, sd1, batch_size=1).backend_url == second.url


def test_a_part_without_a_hash_is_found_by_name_base_and_type(two, sd1, session, user):
    _, second = two
    for server in two:
        server.install_models(lora_models())
    second.reinstall_model("tiny-sd1-lora")
    recheck()
    CachedModel.objects.filter(name="tiny-sd1-lora").update(hash="")
    lora = CachedModel.objects.get(name="tiny-sd1-lora")
    steps = [create(user, session, sd1, batch_size=1, loras=({"key": lora.key, "weight": 0.5},)) for _ in range(2)]
    assert steps[1].backend_url == second.url and steps[1].status == Status.RUNNING
    assert second.model("tiny-sd1-lora")["key"] in batch_text(second, steps[1])


def test_when_no_backend_has_every_part_the_refusal_says_what_is_missing_where(two, sd1, session, user):
    first, second = two
    second.install_models(lora_models())
    first.install_models([tiny_model("odd-vae", model_type="vae", base="sd-1")])
    recheck()
    lora, vae = (CachedModel.objects.get(name=name) for name in ("tiny-sd1-lora", "odd-vae"))
    with pytest.raises(Unavailable) as refused:
        create(user, session, sd1, loras=({"key": lora.key, "weight": 0.5},), vae_key=vae.key)
    message = refused.value.message
    assert "InvokeAI in use lacks LoRA 'tiny-sd1-lora'" in message
    assert "second lacks VAE 'odd-vae'" in message
    assert refused.value.code == "model_not_on_any_backend"
    assert refused.value.details["missing"] == {first.url: ["LoRA 'tiny-sd1-lora'"], second.url: ["VAE 'odd-vae'"]}
    assert not GenerationStep.objects.exists()


def test_an_embedding_in_the_prompt_is_needed_too(two, sd1, session, user):
    first, _ = two
    first.install_models([tiny_model("tiny-sd1-ti", model_type="embedding", base="sd-1")])
    recheck()
    steps = [create(user, session, sd1, batch_size=1, prompt="a cat, <tiny-sd1-ti>") for _ in range(2)]
    assert {step.backend_url for step in steps} == {first.url}
