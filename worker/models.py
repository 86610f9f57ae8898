from django.db import models
from django.utils import timezone


class WorkerHeartbeat(models.Model):
    """The one row that says whether the background worker (the django-q2 cluster) still does its work.

    The migration creates it, so `created_at` is when the app was installed: an app whose worker has never run
    says so once the grace period has passed since then, or since the supervisor last started.
    """

    created_at = models.DateTimeField(default=timezone.now)
    # When the last heartbeat task finished, recorded only once django-q2 had stored its result.
    beat_at = models.DateTimeField(null=True, blank=True)
    supervisor_started_at = models.DateTimeField(null=True, blank=True)
    # The supervisor's own last check: it is seen to be gone when this gets old.
    supervisor_seen_at = models.DateTimeField(null=True, blank=True)
    cluster_started_at = models.DateTimeField(null=True, blank=True)
    # Since the supervisor started, and why it last restarted the cluster.
    restarts = models.PositiveIntegerField(default=0)
    restart_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name = "worker heartbeat"

    def __str__(self) -> str:
        return "Worker heartbeat"

    @classmethod
    def current(cls) -> "WorkerHeartbeat":
        """The row, or (deleted, or flushed by a test) a fresh one that is not saved: reads never create it."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)
