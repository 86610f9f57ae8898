"""The settings row: the encrypted API key, switching mode, and which InvokeAI the rest of the app is given."""

from __future__ import annotations

import pytest

from backends import crypto, manager, services
from backends.models import BackendSettings, PodSession
from gallery_project.errors import InvalidInput, Unavailable
from testing.fake_runpod import API_KEY

pytestmark = pytest.mark.django_db


def test_the_key_is_stored_encrypted_with_a_key_derived_from_secret_key(settings):
    settings.RUNPOD_API_KEY = ""
    services.api_key_set(api_key=f"  {API_KEY}\n")
    stored = BackendSettings.objects.get().runpod_api_key_encrypted
    assert API_KEY not in stored
    assert crypto.decrypt(stored) == API_KEY
    assert services.api_key_get() == API_KEY
    assert services.api_key_state() == services.ApiKeyState(is_set=True, source="stored")


def test_a_key_entered_in_the_app_wins_over_the_environment(settings):
    settings.RUNPOD_API_KEY = "rpa_FROM_THE_ENVIRONMENT"
    assert services.api_key_state().source == "environment"
    services.api_key_set(api_key=API_KEY)
    assert services.api_key_get() == API_KEY
    services.api_key_clear()
    assert services.api_key_get() == "rpa_FROM_THE_ENVIRONMENT"


def test_a_new_secret_key_makes_the_stored_key_unreadable_not_wrong(settings):
    settings.RUNPOD_API_KEY = ""
    services.api_key_set(api_key=API_KEY)
    settings.SECRET_KEY = "another-secret-key"
    assert services.api_key_get() == ""
    state = services.api_key_state()
    assert (state.is_set, state.source) == (False, "")
    assert "cannot be decrypted" in state.problem


def test_a_key_with_spaces_inside_is_refused_without_echoing_it():
    with pytest.raises(InvalidInput, match="does not look like a RunPod API key") as caught:
        services.api_key_set(api_key="rpa_ABC DEF")
    assert "rpa_ABC" not in str(caught.value.as_dict())


def test_local_mode_uses_the_local_url_from_the_page_or_the_environment(settings):
    settings.INVOKEAI_LOCAL_URL = "http://127.0.0.1:9999"
    assert manager.current_backend_url() == "http://127.0.0.1:9999"
    services.backend_settings_update(local_backend_url="http://gpu-box:9090")
    assert manager.current_backend_url() == "http://gpu-box:9090"


def test_remote_mode_without_a_pod_says_how_to_start_one(settings):
    settings.RUNPOD_API_KEY = ""
    message = services.backend_mode_set(mode="remote")
    assert message == "Remote mode is on. To rent a GPU, enter your RunPod API key in the settings, then start a pod."
    settings.RUNPOD_API_KEY = API_KEY
    message = services.backend_mode_set(mode="remote")
    assert message == "Remote mode is on, but no RunPod pod is running yet: start one to generate."
    with pytest.raises(Unavailable, match="start one on the backend page") as caught:
        manager.current_backend_url()
    assert (caught.value.code, caught.value.status) == ("no_pod", 503)


def test_remote_mode_uses_the_ready_pods_proxy_url_and_never_a_stopping_one(settings):
    settings.RUNPOD_PROXY_URL_TEMPLATE = "https://{pod_id}-{port}.proxy.runpod.net"
    services.backend_mode_set(mode="remote")
    session = PodSession.objects.create(pod_id="abc123", gpu_type="g", state=PodSession.State.READY)
    assert manager.current_backend_url() == "https://abc123-9090.proxy.runpod.net"
    assert services.backend_mode_set(mode="remote") == "Using the RunPod pod."
    PodSession.objects.filter(pk=session.pk).update(state=PodSession.State.STOPPING)
    with pytest.raises(Unavailable):
        manager.current_backend_url()
    services.backend_settings_update(remote_backend_url="https://invoke.example.org")
    assert manager.current_backend_url() == "https://invoke.example.org"


def test_switching_mode_forgets_the_other_backends_connection():
    services.connection_record(connected=True, version="6.14.2")
    services.backend_mode_set(mode="remote")
    row = BackendSettings.objects.get()
    assert (row.is_connected, row.api_version) == (False, "")
    with pytest.raises(InvalidInput):
        services.backend_mode_set(mode="cloud")


def test_activity_is_recorded_at_most_every_30_seconds(clock):
    services.activity_record()
    assert BackendSettings.objects.get().last_activity_at == clock.now
    first = clock.now
    clock.advance(seconds=20)
    services.activity_record()
    assert BackendSettings.objects.get().last_activity_at == first
    clock.advance(seconds=11)
    services.activity_record()
    assert BackendSettings.objects.get().last_activity_at == clock.now


def test_only_the_pages_settings_can_be_changed():
    with pytest.raises(InvalidInput, match="lifetime_cost"):
        services.backend_settings_update(lifetime_cost=0)
