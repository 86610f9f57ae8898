"""Whether the background worker works, read from its heartbeat row: for every page, the API and `health`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.timesince import timesince

from .models import WorkerHeartbeat

OK, STARTING, STALE, NEVER, UNSUPERVISED = "ok", "starting", "stale", "never", "unsupervised"

_STOPPED_WORK = (
    "Until it runs, RunPod pods are not stopped when idle, over budget or past the longest session, running "
    "generation steps are not followed, failed downloads are not retried and the trash is not purged."
)


@dataclass(frozen=True)
class WorkerHealth:
    state: str
    # Empty while healthy; what the alert says otherwise.
    title: str
    message: str
    beat_at: datetime | None
    seconds_since_beat: int | None
    stale_after: int
    cluster_started_at: datetime | None
    restarts: int
    restart_reason: str

    @property
    def healthy(self) -> bool:
        return self.state in (OK, STARTING)


def _stale_after() -> timedelta:
    return timedelta(seconds=settings.WORKER_HEARTBEAT_STALE_AFTER)


def worker_health(*, now: datetime | None = None) -> WorkerHealth:
    """ok: a heartbeat within WORKER_HEARTBEAT_STALE_AFTER; starting: none yet, but the supervisor started (or
    the app was installed) less than that ago; stale: the last heartbeat is older; never: none ever came;
    unsupervised: the worker beats, but the supervisor that started it has not checked in for that long (it was
    killed), so nothing would restart a stalled worker.

    A restart by the supervisor does not start a new grace period: the alert stays until a heartbeat comes.
    """
    now = now or timezone.now()
    row = WorkerHeartbeat.current()
    started = row.supervisor_started_at
    since_beat = None if row.beat_at is None else int((now - row.beat_at).total_seconds())
    if row.beat_at is not None and (started is None or row.beat_at >= started):
        state = OK if now - row.beat_at <= _stale_after() else STALE
    elif now - (started or row.created_at) <= _stale_after():
        state = STARTING
    else:
        state = STALE if row.beat_at is not None else NEVER
    seen = row.supervisor_seen_at or started
    if state in (OK, STARTING) and seen is not None and now - seen > _stale_after():
        state = UNSUPERVISED
    title, message = _explain(state, row, now=now)
    return WorkerHealth(
        state=state,
        title=title,
        message=message,
        beat_at=row.beat_at,
        seconds_since_beat=since_beat,
        stale_after=settings.WORKER_HEARTBEAT_STALE_AFTER,
        cluster_started_at=row.cluster_started_at,
        restarts=row.restarts,
        restart_reason=row.restart_reason,
    )


def _ago(moment: datetime, now: datetime) -> str:
    seconds = int((now - moment).total_seconds())
    return f"{seconds} seconds" if seconds < 300 else timesince(moment, now)


def _explain(state: str, row: WorkerHeartbeat, *, now: datetime) -> tuple[str, str]:
    if state == STARTING:
        return "", "The worker has started; its first heartbeat is due within a minute."
    if row.beat_at is not None and state == OK:
        return "", f"The worker's last heartbeat was {_ago(row.beat_at, now)} ago."
    if state == UNSUPERVISED and row.supervisor_seen_at is not None:
        return "The background worker runs without its supervisor.", (
            f"Its supervisor (manage.py run_worker, which 'make run' starts) last checked on it "
            f"{_ago(row.supervisor_seen_at, now)} ago: it was stopped or killed. Background work goes on, but "
            "nothing restarts the worker if it stalls. Restart 'make run' (or manage.py run_worker)."
        )
    restarted = ""
    if row.restarts:
        restarted = (
            f" It has been restarted {row.restarts} time{'s' if row.restarts > 1 else ''} "
            f"(last: {row.restart_reason}) and has not recovered."
        )
    if row.beat_at is not None:
        return "Background work has stopped.", (
            f"The worker's last heartbeat was {_ago(row.beat_at, now)} ago; it runs every minute. "
            f"{_STOPPED_WORK}{restarted} The supervisor restarts the worker by itself within a few minutes: if "
            "this alert stays, read the worker's output (the worker lines of 'make run') and run "
            "manage.py health."
        )
    since = (
        f"it was started {_ago(row.supervisor_started_at, now)} ago"
        if row.supervisor_started_at is not None
        else f"the app was installed {_ago(row.created_at, now)} ago"
    )
    return "The background worker is not running.", (
        f"It has not run once since {since}. {_STOPPED_WORK}{restarted} 'make run' starts it beside the web "
        "server (or run .venv/bin/python manage.py run_worker); its output says why it does not start."
    )


def cluster_stale_reason(*, now: datetime | None = None) -> str:
    """Why the supervisor should restart the running cluster, or "": no heartbeat for longer than
    WORKER_HEARTBEAT_STALE_AFTER, counted from the last one or from the cluster's start, whichever is later."""
    now = now or timezone.now()
    row = WorkerHeartbeat.current()
    last = max((moment for moment in (row.beat_at, row.cluster_started_at) if moment is not None), default=None)
    if last is None or now - last <= _stale_after():
        return ""
    return f"no heartbeat for {int((now - last).total_seconds())} s"
