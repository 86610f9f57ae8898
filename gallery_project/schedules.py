"""Every recurring background job, in one place. `manage.py setup_schedules` converges the database to it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    name: str
    func: str
    minutes: int
    description: str


SCHEDULES: list[Job] = [
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
]
