"""Fixtures for the backend tests: a fake RunPod (in memory, or served as GraphQL for the SDK) and a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from backends import manager, pods
from backends.models import BackendSettings, PodSession
from backends.runpod import RunPodSDK
from backends.services import backend_settings_get
from testing.fake_runpod import API_KEY, FakeRunPod


class Clock:
    """The time it is for the code under test; tests move it, nothing sleeps."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def advance(self, *, minutes: float = 0, seconds: float = 0, hours: float = 0) -> datetime:
        self.now += timedelta(minutes=minutes, seconds=seconds, hours=hours)
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """Also what `timezone.now()` answers, for code that is not handed `now` (signal receivers, views)."""
    # Mid-month, so a month boundary never falls inside a test.
    clock = Clock(datetime(2026, 3, 14, 12, 0, tzinfo=UTC))
    monkeypatch.setattr(timezone, "now", lambda: clock.now)
    return clock


@pytest.fixture
def fake_runpod() -> FakeRunPod:
    return FakeRunPod()


@pytest.fixture
def runpod_server(monkeypatch):
    """The fake served as RunPod's GraphQL API on 127.0.0.1, where the SDK looks (RUNPOD_API_BASE_URL)."""
    server = FakeRunPod().serve()
    monkeypatch.setenv("RUNPOD_API_BASE_URL", server.url)
    yield server
    server.stop()


@pytest.fixture(params=["memory", "sdk"])
def account(request):
    """(fake, adapter): the fake itself as the adapter, and the SDK adapter talking to it over GraphQL."""
    if request.param == "memory":
        fake = request.getfixturevalue("fake_runpod")
        return fake, fake
    fake = request.getfixturevalue("runpod_server")
    return fake, RunPodSDK(API_KEY)


@pytest.fixture
def no_sleep(monkeypatch):
    """Fail the test if the code under test sleeps: the pod logic runs on the clock it is given."""

    def refuse(seconds):
        raise AssertionError(f"time.sleep({seconds}) called")

    monkeypatch.setattr("time.sleep", refuse)


@pytest.fixture
def runpod_key(settings):
    settings.RUNPOD_API_KEY = API_KEY
    return API_KEY


class Pods:
    """The pod services on a fake RunPod whose pods' InvokeAI is a fake InvokeAI, on a clock the test moves."""

    def __init__(self, runpod: FakeRunPod, clock: Clock, invokeai) -> None:
        self.runpod = runpod
        self.clock = clock
        self.invokeai = invokeai

    def start(self, **kwargs) -> PodSession:
        return pods.pod_start(now=self.clock.now, adapter=self.runpod, **kwargs)

    def advance(self, session: PodSession) -> PodSession:
        return pods.pod_advance(session_id=session.pk, now=self.clock.now, adapter=self.runpod)

    def ready(self, **kwargs) -> PodSession:
        session = self.start(**kwargs)
        self.runpod.boot(session.pod_id)
        session = self.advance(session)
        assert session.state == PodSession.State.READY, session.message
        return session

    def stop(self, **kwargs) -> PodSession:
        return pods.pod_stop(now=self.clock.now, adapter=self.runpod, **kwargs)

    def verify(self, session: PodSession) -> PodSession:
        return pods.pod_verify_stop(session_id=session.pk, now=self.clock.now, adapter=self.runpod)

    def idle_check(self) -> pods.IdleCheck:
        return pods.pod_idle_check(now=self.clock.now, adapter=self.runpod)

    def reconcile(self) -> pods.Reconciliation:
        return pods.pods_reconcile(now=self.clock.now, adapter=self.runpod)

    def every_minute(self, minutes: int) -> list[pods.IdleCheck]:
        """Run the idle check once a minute for `minutes` minutes, as the schedule does."""
        checks = []
        for _ in range(minutes):
            self.clock.advance(minutes=1)
            checks.append(self.idle_check())
        return checks


@pytest.fixture
def pod_env(db, runpod_key, fake_runpod, clock, fake_invokeai, settings) -> Pods:
    """Remote mode with a key, on the fake RunPod; every pod's InvokeAI is the fake InvokeAI."""
    settings.RUNPOD_PROXY_URL_TEMPLATE = fake_invokeai.url
    settings.INVOKEAI_CONNECTION_TIMEOUT = 2
    settings.INVOKEAI_READ_TIMEOUT = 2
    BackendSettings.objects.filter(pk=backend_settings_get().pk).update(backend_mode="remote")
    yield Pods(fake_runpod, clock, fake_invokeai)
    # Clients are kept per thread and URL; the next test's fake listens on another port.
    manager._clients.__dict__.clear()


@pytest.fixture
def app_runpod(monkeypatch, runpod_key, fake_runpod, fake_invokeai, settings):
    """Views, API and tasks (which build their own adapter) on the fake RunPod; pods' InvokeAI is the fake."""
    settings.RUNPOD_PROXY_URL_TEMPLATE = fake_invokeai.url
    monkeypatch.setattr(pods.common, "runpod_adapter", lambda: fake_runpod)
    yield fake_runpod
    manager._clients.__dict__.clear()
