"""Every recurring background job, in one place. `manage.py setup_schedules` converges the database to it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    name: str
    func: str
    minutes: int
    description: str
    # Called by django-q2 in the monitor process once the task's result is stored.
    hook: str = ""


SCHEDULES: list[Job] = [
    Job(
        name="worker.heartbeat",
        func="worker.tasks.heartbeat",
        hook="worker.tasks.heartbeat_saved",
        minutes=1,
        description="Record that the background worker works; the alert, `manage.py health` and the supervisor "
        "read it.",
    ),
    Job(
        name="photos.purge_expired_trash",
        func="photos.tasks.purge_expired_trash",
        minutes=60,
        description="Delete photos that have been in the trash for longer than TRASH_DAYS.",
    ),
    Job(
        name="generation.refresh_models",
        func="generation.tasks.refresh_models",
        minutes=15,
        description="Refresh the model cache from InvokeAI; models it no longer lists become unavailable.",
    ),
    Job(
        name="albums.boards_sync",
        func="albums.tasks.boards_sync",
        minutes=15,
        description="Import the new images of InvokeAI boards whose albums are kept in sync (import_boards --sync).",
    ),
    Job(
        name="generation.poll_model_installs",
        func="generation.tasks.poll_model_installs",
        minutes=1,
        description="Bring unfinished model installs up to date from InvokeAI; refresh the model cache as they end.",
    ),
    Job(
        name="generation.resume_steps",
        func="generation.tasks.resume_steps",
        minutes=1,
        description="Give running generation steps whose follower died (a worker restart) a new one.",
    ),
    Job(
        name="generation.retry_retrievals",
        func="generation.tasks.retry_retrievals",
        minutes=1,
        description="Download again the generated images whose download failed, once their backoff has passed.",
    ),
    Job(
        name="backends.pods_idle_check",
        func="backends.tasks.pods_idle_check",
        minutes=1,
        description="Stop the RunPod pod when idle, past the longest session or over budget; check the backend.",
    ),
    Job(
        name="backends.backends_check",
        func="backends.tasks.backends_check",
        minutes=1,
        description="Read the status, queue and model list of every added InvokeAI backend, for routing and the "
        "backend page.",
    ),
    Job(
        name="backends.pods_deadman_ping",
        func="backends.tasks.pods_deadman_ping",
        minutes=1,
        description="Ping the dead-man switch of each starting or ready pod, which stops its pod when the pings "
        "stop for RUNPOD_DEADMAN_MINUTES.",
    ),
    Job(
        name="backends.pods_advance",
        func="backends.tasks.pods_advance",
        minutes=1,
        description="Walk starting pods to ready (RUNNING, container up, InvokeAI answering) or time them out.",
    ),
    Job(
        name="backends.pods_verify_stopping",
        func="backends.tasks.pods_verify_stopping",
        minutes=1,
        description="Retry pod stops until RunPod reports the pod stopped; alert when it will not.",
    ),
    Job(
        name="backends.pods_reconcile",
        func="backends.tasks.pods_reconcile",
        minutes=5,
        description="Stop pods of this app running without an active session; notice pods stopped elsewhere.",
    ),
]
