"""Writes to the worker's heartbeat row: by the heartbeat's result hook and by the supervisor."""

from __future__ import annotations

from datetime import datetime

from django.db.models import F, Q

from .models import WorkerHeartbeat

_ROW = 1


def heartbeat_record(*, at: datetime) -> None:
    """Note a heartbeat that finished at `at`; one delivered late, older than the last, changes nothing."""
    newer = Q(beat_at__isnull=True) | Q(beat_at__lt=at)
    if not WorkerHeartbeat.objects.filter(newer, pk=_ROW).update(beat_at=at):
        WorkerHeartbeat.objects.get_or_create(pk=_ROW, defaults={"beat_at": at})


def supervisor_start_record(*, now: datetime) -> None:
    """The supervisor started (with it, the cluster): the grace period for a first heartbeat begins."""
    WorkerHeartbeat.objects.update_or_create(
        pk=_ROW,
        defaults={
            "supervisor_started_at": now,
            "supervisor_seen_at": now,
            "cluster_started_at": now,
            "restarts": 0,
            "restart_reason": "",
        },
    )


def supervisor_seen_record(*, now: datetime) -> None:
    """The supervisor is still there (at each of its checks)."""
    WorkerHeartbeat.objects.filter(pk=_ROW).update(supervisor_seen_at=now)


def cluster_restart_record(*, reason: str, now: datetime) -> None:
    """The supervisor restarted the cluster. The alert stays until a heartbeat comes: a restart is no proof."""
    fields = {"cluster_started_at": now, "restart_reason": reason[:300]}
    if not WorkerHeartbeat.objects.filter(pk=_ROW).update(restarts=F("restarts") + 1, **fields):
        WorkerHeartbeat.objects.get_or_create(pk=_ROW, defaults={"restarts": 1, **fields})
