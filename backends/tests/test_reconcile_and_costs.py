"""Reconciliation with the account's pods (orphans, a create whose answer was lost, pods stopped elsewhere) and
the cost figures: per second, lifetime, per image, this month, and the storage of stopped pods."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from backends import costs, signals
from backends.models import BackendSettings, PodSession
from backends.services import backend_mode_set, backend_settings_get

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_sleep")]

State = PodSession.State


# --- reconciliation ---


def test_an_orphan_pod_is_found_stopped_and_recorded(pod_env):
    orphan = pod_env.runpod.add_pod("photo-studio-999")
    stranger = pod_env.runpod.add_pod("my-own-training-run")
    result = pod_env.reconcile()
    assert result.orphans == [orphan.id]
    assert orphan.desired_status == "EXITED"
    # Pods without the app's prefix are none of its business.
    assert stranger.desired_status == "RUNNING"
    session = PodSession.objects.get(pod_id=orphan.id)
    assert (session.state, session.stop_reason, session.cost_per_hour) == (State.STOPPED, "orphan", Decimal("0.69"))
    assert "without an active session here" in session.message
    assert [pod["id"] for pod in backend_settings_get().stopped_pods] == [orphan.id]


def test_a_pod_running_while_the_database_says_stopped_is_an_orphan(pod_env):
    session = pod_env.ready()
    pod_env.stop()
    # Resumed in RunPod's console, or a resume whose answer was lost.
    pod_env.runpod.resume_pod(session.pod_id)
    result = pod_env.reconcile()
    assert result.orphans == [session.pod_id]
    assert pod_env.runpod.running() == []
    assert PodSession.objects.filter(pod_id=session.pod_id, stop_reason="orphan", state=State.STOPPED).count() == 1


def test_a_crash_between_create_and_save_is_recovered_by_reconcile(pod_env):
    # The start request died after RunPod created the pod and before its id was saved.
    pod_env.runpod.lose_answer("create")
    session = pod_env.start()
    assert (session.state, session.pod_id) == (State.CREATING, "")
    [pod] = pod_env.runpod.pods.values()
    result = pod_env.reconcile()
    assert (result.adopted, result.orphans) == ([pod.id], [])
    session.refresh_from_db()
    assert (session.state, session.pod_id) == (State.STARTING, pod.id)
    pod_env.runpod.boot(pod.id)
    assert pod_env.advance(session).state == State.READY


def test_a_lost_create_is_also_found_by_the_readiness_walker(pod_env):
    pod_env.runpod.lose_answer("create")
    session = pod_env.start()
    assert pod_env.advance(session).state == State.CREATING
    pod_env.clock.advance(minutes=2)
    assert pod_env.advance(session).state == State.STARTING


def test_a_create_that_never_happened_fails_after_the_grace(pod_env):
    pod_env.runpod.fail("create", kind="transport")
    session = pod_env.start()
    pod_env.clock.advance(minutes=2)
    session = pod_env.advance(session)
    assert session.state == State.FAILED
    assert f"no pod named photo-studio-{session.pk}" in session.message


def test_a_pod_stopped_or_deleted_outside_the_app_ends_its_session(pod_env):
    session = pod_env.ready()
    pod_env.clock.advance(minutes=5)
    pod_env.runpod.stop_pod(session.pod_id)
    result = pod_env.reconcile()
    session.refresh_from_db()
    assert result.ended == [session.pk]
    assert (session.state, session.stop_reason) == (State.STOPPED, "error")
    assert "stopped outside the app" in session.message
    assert session.estimated_cost == Decimal("0.0575")
    pod_env.runpod.terminate_pod(session.pod_id)
    pod_env.reconcile()
    assert backend_settings_get().stopped_pods == []


def test_reconcile_leaves_a_healthy_pod_alone(pod_env):
    session = pod_env.ready()
    pod_env.clock.advance(minutes=5)
    assert pod_env.reconcile() == type(pod_env.reconcile())()
    session.refresh_from_db()
    assert session.state == State.READY


# --- costs ---


def test_live_cost_is_per_second_from_runpods_price(pod_env):
    session = pod_env.ready()
    assert costs.session_cost(session, now=pod_env.clock.now + timedelta(seconds=1)) == Decimal("0.0002")
    assert costs.session_cost(session, now=pod_env.clock.now + timedelta(hours=2)) == Decimal("1.3800")
    # A failed start that never had a pod costs nothing.
    assert costs.session_cost(PodSession(gpu_type="x", cost_per_hour=Decimal("1")), now=pod_env.clock.now) == 0


def test_the_pods_own_price_replaces_the_gpu_list_price(pod_env):
    session = pod_env.start()
    pod_env.runpod.pods[session.pod_id].cost_per_hour = Decimal("0.74")
    pod_env.runpod.boot(session.pod_id)
    assert pod_env.advance(session).cost_per_hour == Decimal("0.74")


def test_lifetime_totals_and_cost_per_image(pod_env):
    backend_mode_set(mode="remote")
    session = pod_env.ready()
    signals.images_generated.send(sender=None, count=3)
    signals.images_generated.send(sender=None, count=1)
    pod_env.clock.advance(hours=1)
    pod_env.stop()
    session.refresh_from_db()
    assert (session.images_generated, session.estimated_cost) == (4, Decimal("0.6900"))
    assert costs.cost_per_image(session.estimated_cost, session.images_generated) == Decimal("0.1725")
    pod_env.clock.advance(hours=1)
    pod_env.ready()
    pod_env.clock.advance(minutes=30)
    pod_env.stop()
    row = BackendSettings.objects.get()
    assert (row.lifetime_cost, row.lifetime_images) == (Decimal("1.0350"), 4)
    assert row.lifetime_usage_hours == pytest.approx(1.5)
    assert costs.month_spend(now=pod_env.clock.now) == Decimal("1.0350")


def test_images_made_locally_are_not_counted_on_the_pod(pod_env):
    session = pod_env.ready()
    backend_mode_set(mode="local")
    signals.images_generated.send(sender=None, count=2)
    session.refresh_from_db()
    assert session.images_generated == 0


def test_month_spend_counts_running_pods_up_to_now(pod_env):
    pod_env.ready()
    pod_env.clock.advance(minutes=30)
    assert costs.month_spend(now=pod_env.clock.now) == Decimal("0.3450")


def test_stopped_pods_storage_is_a_separate_charge(pod_env):
    pod_env.ready()
    pod_env.stop()
    charge = costs.storage_charge(backend_settings_get())
    # 50 GB at RunPod's $0.20 per GB and month for a stopped pod's volume.
    assert (charge.stopped_volume_gb, charge.stopped_volume_per_month) == (50, Decimal("10.00"))
    # It is not part of the pods' cost.
    assert costs.month_spend(now=pod_env.clock.now) == Decimal("0")
