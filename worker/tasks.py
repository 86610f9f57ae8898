"""The heartbeat: scheduled every minute (gallery_project/schedules.py), recorded by its result hook."""

from __future__ import annotations

from django_q.models import Task

from . import services


def heartbeat() -> str:
    """Nothing to do: the proof is that it ran and that its result was stored (see `heartbeat_saved`)."""
    return "alive"


def heartbeat_saved(task: Task) -> None:
    """The heartbeat's result hook, which django-q2 calls in the monitor process once it has stored the result.

    Recording the beat there, rather than in the task, makes one beat prove the whole cluster works: the
    sentinel's scheduler created the task, the pusher queued it, a worker ran it and the monitor stored it. A
    monitor killed while it waited for a result leaves a cluster whose workers still run tasks but whose results
    are never stored or acknowledged (so every task runs again and again): that must show too.
    """
    if task.success:
        services.heartbeat_record(at=task.stopped)
