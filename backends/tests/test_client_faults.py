"""What the client does when InvokeAI misbehaves, and the fake's clock: faults only the fake can produce."""

from __future__ import annotations

import json

import pytest

from backends import manager
from backends.invokeai import graphs
from backends.invokeai.client import InvokeAIClient
from backends.invokeai.errors import GenerationError, InvokeAIConnectionError, InvokeAIError
from backends.invokeai.graphs import GenerationParameters
from testing import fake_invokeai as fake
from testing.fake_invokeai import FakeInvokeAI
from testing.refresh_fake_schema import SchemaError, refresh

VERSION_PATH = "/api/v1/app/version"


@pytest.fixture
def client(fake_invokeai):
    # A read timeout long enough for a loaded machine: only the timeout test needs a short one.
    client = InvokeAIClient(fake_invokeai.url, connect_timeout=1, read_timeout=5, retry_backoff=0)
    yield client
    client.close()


@pytest.fixture
def impatient_client(fake_invokeai):
    client = InvokeAIClient(fake_invokeai.url, connect_timeout=1, read_timeout=0.3, retry_backoff=0)
    yield client
    client.close()


def body(fake: FakeInvokeAI, *, batch_size: int = 1, name: str = "tiny-sd1") -> dict:
    model = fake.model(name)
    identifier = graphs.ModelIdentifier(**{key: model[key] for key in ("key", "hash", "name", "base", "type")})
    return graphs.build_batch(
        GenerationParameters(
            model=identifier, prompt="a cat", width=64, height=64, steps=2, seed=1, batch_size=batch_size
        )
    )


def statuses(client: InvokeAIClient, batch) -> list[str]:
    return [item.status for item in client.queue_items(batch.item_ids, output_node=graphs.OUTPUT_NODE)]


def test_a_refused_connection_says_who_is_not_answering(fake_invokeai, client):
    fake_invokeai.refuse_connections()
    with pytest.raises(InvokeAIConnectionError, match=f"InvokeAI at {fake_invokeai.url} is not answering") as caught:
        client.connect()
    assert (caught.value.status, caught.value.code) == (503, "invokeai_unreachable")
    fake_invokeai.accept_connections()
    assert client.connect() == "6.14.2"


def test_a_get_that_meets_a_500_is_tried_again(fake_invokeai, client):
    fake_invokeai.fail_requests(VERSION_PATH, status=500, times=2)
    assert client.connect() == "6.14.2"
    assert fake_invokeai.requests.count(("GET", VERSION_PATH)) == 3


def test_a_get_that_keeps_failing_reports_the_status(fake_invokeai, client):
    fake_invokeai.fail_requests(VERSION_PATH, status=503, times=10)
    with pytest.raises(InvokeAIError, match=r"refused GET /api/v1/app/version \(503\)") as caught:
        client.connect()
    assert caught.value.status == 502


def test_an_enqueue_is_never_repeated(fake_invokeai, client):
    fake_invokeai.fail_requests("enqueue_batch", status=500)
    with pytest.raises(GenerationError, match=r"\(500\)"):
        client.enqueue(body(fake_invokeai))
    assert fake_invokeai.requests.count(("POST", "/api/v1/queue/default/enqueue_batch")) == 1
    assert not fake_invokeai.items


def test_an_answer_slower_than_the_read_timeout(fake_invokeai, impatient_client):
    # One read retry for GETs: hanging twice exhausts it.
    fake_invokeai.hang_requests(VERSION_PATH, times=2)
    with pytest.raises(InvokeAIConnectionError, match=r"did not answer GET /api/v1/app/version within 0\.3 s"):
        impatient_client.connect()
    fake_invokeai.hang_requests(VERSION_PATH, times=1)
    assert impatient_client.connect() == "6.14.2"


def test_items_move_on_the_fakes_clock(fake_invokeai, client):
    batch = client.enqueue(body(fake_invokeai, batch_size=2))
    assert statuses(client, batch) == ["in_progress", "pending"]
    fake_invokeai.clock.advance(1)
    assert statuses(client, batch) == ["completed", "in_progress"]
    assert client.queue_status().is_processing is True
    fake_invokeai.clock.advance(1)
    assert statuses(client, batch) == ["completed", "completed"]
    assert client.batch_status(batch.batch_id).finished


def test_items_that_fail_carry_the_error(fake_invokeai, client):
    fake_invokeai.fail_items(1, error_type="OutOfMemoryError", error_message="CUDA out of memory")
    batch = client.enqueue(body(fake_invokeai, batch_size=2))
    fake_invokeai.clock.advance(2)
    failed, completed = client.queue_items(batch.item_ids, output_node=graphs.OUTPUT_NODE)
    assert (failed.status, failed.error_type, failed.error_message) == (
        "failed",
        "OutOfMemoryError",
        "CUDA out of memory",
    )
    assert failed.image_name is None
    assert completed.status == "completed" and completed.image_name


def test_items_that_vanish_are_lost(fake_invokeai, client):
    batch = client.enqueue(body(fake_invokeai, batch_size=2))
    fake_invokeai.vanish([batch.item_ids[0]])
    progress = client.batch_progress(batch, output_node=graphs.OUTPUT_NODE)
    assert [item.status for item in progress.items] == ["lost", "in_progress"]
    assert progress.status.total == 1


def test_a_restart_cancels_the_item_in_progress(fake_invokeai, client):
    batch = client.enqueue(body(fake_invokeai, batch_size=2))
    fake_invokeai.clock.advance(0.5)
    fake_invokeai.restart()
    assert statuses(client, batch) == ["canceled", "in_progress"]
    fake_invokeai.clock.advance(1)
    assert statuses(client, batch) == ["canceled", "completed"]


def test_a_full_queue_takes_part_of_a_batch_or_none(fake_invokeai, client):
    fake_invokeai.max_queue_size = 2
    batch = client.enqueue(body(fake_invokeai, batch_size=4))
    assert (batch.requested, batch.enqueued, len(batch.item_ids)) == (4, 2, 2)
    fake_invokeai.max_queue_size = 0
    with pytest.raises(GenerationError, match="queue is full") as caught:
        client.enqueue(body(fake_invokeai))
    assert caught.value.code == "invokeai_queue_full"


@pytest.fixture
def multiuser(fake_invokeai):
    fake_invokeai.multiuser = True
    fake_invokeai.add_user("studio@example.com", "hunter22")
    return fake_invokeai


def logins(fake: FakeInvokeAI) -> int:
    return fake.requests.count(("POST", "/api/v1/auth/login"))


def test_multiuser_without_credentials_says_what_to_set(multiuser, client):
    with pytest.raises(InvokeAIError, match="INVOKEAI_EMAIL and INVOKEAI_PASSWORD") as caught:
        client.list_models()
    assert caught.value.code == "invokeai_login_required"


def test_multiuser_logs_in_follows_refreshed_tokens_and_logs_in_again(multiuser):
    client = InvokeAIClient(
        multiuser.url, connect_timeout=1, read_timeout=2, email="studio@example.com", password="hunter22"
    )
    assert client.connect() == "6.14.2"
    assert logins(multiuser) == 1
    batch = client.enqueue(body(multiuser))
    # Only the token the enqueue's answer handed back still works: the client must have switched to it.
    multiuser.expire_tokens(keep_refreshed=True)
    assert client.batch_status(batch.batch_id).total == 1
    assert logins(multiuser) == 1
    multiuser.expire_tokens()
    assert client.list_models()
    assert logins(multiuser) == 2


def test_multiuser_with_a_wrong_password(multiuser):
    client = InvokeAIClient(multiuser.url, connect_timeout=1, read_timeout=2, email="studio@example.com", password="x")
    with pytest.raises(InvokeAIError, match=r"refused the login of studio@example\.com") as caught:
        client.list_models()
    assert caught.value.code == "invokeai_login_refused"


def test_single_user_mode_ignores_credentials(fake_invokeai):
    client = InvokeAIClient(fake_invokeai.url, connect_timeout=1, read_timeout=2, email="a@b.c", password="x")
    assert client.connect() == "6.14.2"
    assert client.list_models()


@pytest.mark.django_db
def test_the_manager_follows_settings(use_fake_invokeai, settings):
    client = manager.invokeai_client()
    assert client.base_url == use_fake_invokeai.url
    assert client.timeout == (2, 2)
    assert manager.invokeai_client() is client
    settings.INVOKEAI_READ_TIMEOUT = 9
    assert manager.invokeai_client().timeout == (2, 9)


def test_the_schema_command_rebuilds_the_fakes_schema(fake_invokeai, tmp_path):
    # The fake serves its own schema as /openapi.json, so rebuilding from it must give the same file back.
    output = tmp_path / "schema.json"
    refresh(url=fake_invokeai.url, output=output)
    assert json.loads(output.read_text()) == json.loads(fake.SCHEMA_PATH.read_text())
    with pytest.raises(SchemaError, match=r"InvokeAI 6\.14\.2 has no node type 'no_such_node'"):
        refresh(url=fake_invokeai.url, output=output, add_types=["no_such_node"])
