"""For the process tests: enqueue a heartbeat every few seconds, as the minute schedule does once a minute.

`python -m worker.tests.heartbeat_probe SECONDS`, with the environment of the stack under test. With beats
seconds apart, the tests can set WORKER_HEARTBEAT_STALE_AFTER to seconds and see a stall, and the supervisor's
answer to it, without waiting minutes. The probes take the schedule's path from the pusher on (same task, same
result hook); that the schedule itself beats is checked separately. Each probe is named after the time it was
queued, so a test can read how long tasks wait in the queue (`queue_waits`).
"""

from __future__ import annotations

import os
import sys
import time

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gallery_project.settings")
    django.setup()
    from django_q.tasks import async_task

    from gallery_project.schedules import SCHEDULES

    job = next(job for job in SCHEDULES if job.name == "worker.heartbeat")
    every = float(sys.argv[1])
    while True:
        async_task(job.func, hook=job.hook, group="probe", task_name=f"probe-{time.time():.3f}")
        time.sleep(every)


if __name__ == "__main__":
    main()
