"""The heartbeat and what reads it: its states, the alert on every page, the backend status API, `health`."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django_q.models import Schedule, Task

from gallery_project.schedules import SCHEDULES
from worker import selectors, services, tasks
from worker.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
HEARTBEAT = next(job for job in SCHEDULES if job.name == "worker.heartbeat")


@pytest.fixture(autouse=True)
def production_staleness(settings):
    """The suite's settings silence the alert (no worker runs beside it); these tests use the real default."""
    settings.WORKER_HEARTBEAT_STALE_AFTER = 180


def heartbeat_row(**fields) -> WorkerHeartbeat:
    fields.setdefault("created_at", NOW - timedelta(days=30))
    if "supervisor_started_at" in fields:
        fields.setdefault("supervisor_seen_at", NOW)
    row, _ = WorkerHeartbeat.objects.update_or_create(pk=1, defaults=fields)
    return row


def ago(**delta) -> datetime:
    return NOW - timedelta(**delta)


def text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


# --- the states ---


def test_a_heartbeat_within_three_minutes_is_healthy():
    heartbeat_row(beat_at=ago(seconds=179), supervisor_started_at=ago(hours=1))
    health = selectors.worker_health(now=NOW)
    assert (health.state, health.healthy, health.title) == ("ok", True, "")
    assert health.message == "The worker's last heartbeat was 179 seconds ago."
    assert health.seconds_since_beat == 179


def test_a_heartbeat_over_three_minutes_old_is_stale_and_says_what_stopped_and_what_to_do():
    heartbeat_row(beat_at=ago(seconds=181), supervisor_started_at=ago(hours=1))
    health = selectors.worker_health(now=NOW)
    assert (health.state, health.healthy, health.title) == ("stale", False, "Background work has stopped.")
    assert "last heartbeat was 181 seconds ago; it runs every minute" in health.message
    assert "pods are not stopped when idle, over budget or past the longest session" in health.message
    assert "steps are not followed" in health.message
    assert "restarts the worker by itself" in health.message and "manage.py health" in health.message


def test_a_fresh_install_whose_worker_never_ran_says_so_after_the_grace_period():
    heartbeat_row(created_at=ago(seconds=170))
    assert selectors.worker_health(now=NOW).state == "starting"
    heartbeat_row(created_at=ago(minutes=10))
    health = selectors.worker_health(now=NOW)
    assert (health.state, health.healthy) == ("never", False)
    assert health.title == "The background worker is not running."
    assert "since the app was installed 10\xa0minutes ago" in health.message
    assert "'make run' starts it" in health.message and "manage.py run_worker" in health.message


def test_a_supervisor_whose_cluster_never_beats_says_so():
    heartbeat_row(supervisor_started_at=ago(minutes=5), cluster_started_at=ago(minutes=5))
    health = selectors.worker_health(now=NOW)
    assert health.state == "never"
    assert "since it was started 5\xa0minutes ago" in health.message


def test_a_worker_started_after_a_long_downtime_gets_the_grace_period_not_an_alert():
    heartbeat_row(beat_at=ago(days=7), supervisor_started_at=ago(seconds=30), cluster_started_at=ago(seconds=30))
    assert selectors.worker_health(now=NOW).state == "starting"
    later = NOW + timedelta(minutes=3)
    assert selectors.worker_health(now=later).state == "stale"


def test_a_restart_keeps_the_alert_until_a_heartbeat_comes_but_gives_the_new_cluster_its_grace():
    heartbeat_row(beat_at=ago(minutes=4), supervisor_started_at=ago(hours=1), cluster_started_at=ago(hours=1))
    assert selectors.cluster_stale_reason(now=NOW) == "no heartbeat for 240 s"
    services.cluster_restart_record(reason="no heartbeat for 240 s", now=ago(seconds=5))
    health = selectors.worker_health(now=NOW)
    assert health.state == "stale"
    assert "restarted 1 time (last: no heartbeat for 240 s) and has not recovered" in health.message
    assert selectors.cluster_stale_reason(now=NOW) == ""
    assert selectors.cluster_stale_reason(now=NOW + timedelta(seconds=176)) == "no heartbeat for 181 s"
    services.heartbeat_record(at=NOW)
    assert selectors.worker_health(now=NOW).state == "ok"


def test_a_worker_whose_supervisor_stopped_checking_in_is_unsupervised():
    heartbeat_row(beat_at=ago(seconds=20), supervisor_started_at=ago(hours=1), supervisor_seen_at=ago(seconds=170))
    assert selectors.worker_health(now=NOW).state == "ok"
    heartbeat_row(supervisor_seen_at=ago(minutes=4))
    health = selectors.worker_health(now=NOW)
    assert (health.state, health.healthy) == ("unsupervised", False)
    assert health.title == "The background worker runs without its supervisor."
    assert "last checked on it 240 seconds ago: it was stopped or killed" in health.message
    heartbeat_row(beat_at=ago(minutes=5))
    assert selectors.worker_health(now=NOW).state == "stale"
    # A worker started without the supervisor (plain qcluster) never had one to lose.
    heartbeat_row(beat_at=ago(seconds=20), supervisor_started_at=None, supervisor_seen_at=None)
    assert selectors.worker_health(now=NOW).state == "ok"


def test_without_its_row_the_worker_counts_as_just_started():
    WorkerHeartbeat.objects.all().delete()
    assert selectors.worker_health().state == "starting"
    assert selectors.cluster_stale_reason() == ""


# --- the writes ---


def test_a_heartbeat_delivered_late_never_moves_the_beat_back():
    services.heartbeat_record(at=NOW)
    services.heartbeat_record(at=ago(minutes=12))
    assert WorkerHeartbeat.objects.get().beat_at == NOW


def test_the_supervisor_start_resets_the_restart_count():
    services.supervisor_start_record(now=ago(hours=2))
    services.cluster_restart_record(reason="its monitor process (123) died", now=ago(hours=1))
    services.cluster_restart_record(reason="no heartbeat for 181 s", now=ago(minutes=1))
    row = WorkerHeartbeat.objects.get()
    assert (row.restarts, row.restart_reason, row.cluster_started_at) == (2, "no heartbeat for 181 s", ago(minutes=1))
    services.supervisor_start_record(now=NOW)
    row = WorkerHeartbeat.objects.get()
    assert (row.restarts, row.restart_reason, row.supervisor_started_at, row.cluster_started_at) == (0, "", NOW, NOW)


def test_the_heartbeat_is_recorded_by_its_result_hook_once_django_q_stores_the_result():
    """The hook by its dotted name, called the way the monitor calls it: when it saves the task's result."""
    assert tasks.heartbeat() == "alive"

    def stored(success: bool, stopped: datetime) -> None:
        Task.objects.create(
            id=uuid.uuid4().hex,
            name=f"heartbeat-{uuid.uuid4().hex[:8]}",
            func=HEARTBEAT.func,
            hook=HEARTBEAT.hook,
            started=stopped - timedelta(seconds=1),
            stopped=stopped,
            success=success,
            result="alive",
        )

    stored(True, ago(seconds=20))
    assert WorkerHeartbeat.objects.get().beat_at == ago(seconds=20)
    stored(False, NOW)
    assert WorkerHeartbeat.objects.get().beat_at == ago(seconds=20)


def test_setup_schedules_makes_the_heartbeat_a_minute_schedule_with_its_hook():
    call_command("setup_schedules", stdout=StringIO())
    schedule = Schedule.objects.get(name="worker.heartbeat")
    assert (schedule.func, schedule.hook, schedule.minutes) == (
        "worker.tasks.heartbeat",
        "worker.tasks.heartbeat_saved",
        1,
    )
    assert Schedule.objects.get(name="photos.purge_expired_trash").hook is None


# --- where it shows ---


def test_health_exits_zero_when_healthy_and_non_zero_saying_why_when_stale(settings):
    heartbeat_row(beat_at=datetime.now(UTC) - timedelta(seconds=30))
    out = StringIO()
    call_command("health", stdout=out)
    assert out.getvalue().startswith("ok: The worker's last heartbeat was 30 seconds ago.")
    heartbeat_row(beat_at=datetime.now(UTC) - timedelta(minutes=5))
    with pytest.raises(CommandError, match=r"^stale: Background work has stopped\. The worker's last heartbeat"):
        call_command("health")


def test_every_page_shows_the_alert_while_the_heartbeat_is_stale(owner_client):
    heartbeat_row(beat_at=datetime.now(UTC) - timedelta(minutes=5))
    for path in ("/", "/studio/", "/albums/", "/shares/", "/backend/", "/trash/", "/worker/alert/"):
        page = text(owner_client.get(path))
        assert re.search(r'<div id="worker-alert" class="notice alert worker-alert" role="status" hx-get', page), path
        assert "<strong>Background work has stopped.</strong> The worker&#x27;s last heartbeat was 5 minutes" in page


def test_a_healthy_worker_leaves_a_hidden_alert_that_polls(owner_client):
    heartbeat_row(beat_at=datetime.now(UTC))
    page = text(owner_client.get("/"))
    assert re.search(r'id="worker-alert"[^>]* hidden hx-get="/worker/alert/" hx-trigger="every 30s"', page)
    assert "Background work" not in page


def test_visitors_never_see_the_alert(client):
    heartbeat_row(beat_at=datetime.now(UTC) - timedelta(minutes=5))
    assert "worker-alert" not in text(client.get("/login/"))


def test_backend_status_reports_the_worker(api):
    heartbeat_row(beat_at=datetime.now(UTC) - timedelta(minutes=5), restarts=2, restart_reason="its pusher died")
    worker = api.get("/api/backend/status").json()["worker"]
    assert worker["state"] == "stale" and worker["healthy"] is False
    assert worker["title"] == "Background work has stopped."
    assert "restarted 2 times (last: its pusher died)" in worker["message"]
    assert 299 <= worker["seconds_since_beat"] <= 330
    assert (worker["stale_after"], worker["restarts"]) == (180, 2)
