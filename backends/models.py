from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .invokeai.transport import RefusedURL, normalise_url

# The image InvokeAI publishes; pin a version tag on the backend page for reproducible pods.
DEFAULT_IMAGE = "ghcr.io/invoke-ai/invokeai:latest"


class BackendSettings(models.Model):
    """The one row of backend settings the user changes in the app, and what the app learned about the backend.

    Deployment facts (the RunPod API key, default GPU type and idle timeout) come from the environment; a blank
    field here means "use the environment's value", so changing the environment still takes effect.
    """

    class Mode(models.TextChoices):
        LOCAL = "local", _("Local InvokeAI")
        REMOTE = "remote", _("Remote (RunPod)")

    class CloudType(models.TextChoices):
        ALL = "ALL", _("Any (secure or community)")
        SECURE = "SECURE", _("Secure cloud")
        COMMUNITY = "COMMUNITY", _("Community cloud")

    backend_mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.LOCAL)
    local_backend_url = models.CharField(
        _("local InvokeAI URL"), max_length=500, blank=True, help_text=_("Blank: INVOKEAI_LOCAL_URL.")
    )
    remote_backend_url = models.CharField(
        _("remote InvokeAI URL"),
        max_length=500,
        blank=True,
        help_text=_("An InvokeAI you run elsewhere, used in remote mode while no RunPod pod is ready."),
    )

    runpod_gpu_type = models.CharField(
        _("GPU type"), max_length=100, blank=True, help_text=_("RunPod's GPU type id. Blank: RUNPOD_POD_TYPE.")
    )
    runpod_cloud_type = models.CharField(_("cloud"), max_length=10, choices=CloudType.choices, default=CloudType.ALL)
    runpod_image = models.CharField(_("image"), max_length=255, default=DEFAULT_IMAGE)
    runpod_volume_in_gb = models.PositiveIntegerField(
        _("volume size (GB)"),
        default=50,
        validators=[MinValueValidator(0), MaxValueValidator(4000)],
        help_text=_("The pod's own disk for models; kept (and billed) while the pod is stopped."),
    )
    runpod_volume_mount_path = models.CharField(_("volume mount path"), max_length=100, default="/workspace")
    runpod_network_volume_id = models.CharField(
        _("network volume id"),
        max_length=64,
        blank=True,
        help_text=_("Attach this network volume instead of a pod volume (it outlives the pod)."),
    )
    runpod_api_key_encrypted = models.TextField(blank=True, editable=False)

    idle_timeout_minutes = models.PositiveIntegerField(
        _("idle timeout (minutes)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        help_text=_("Blank: RUNPOD_IDLE_TIMEOUT."),
    )
    max_session_hours = models.PositiveIntegerField(
        _("longest session (hours)"),
        default=8,
        validators=[MinValueValidator(1), MaxValueValidator(168)],
        help_text=_("A pod is stopped after this long even while it works."),
    )
    monthly_budget = models.DecimalField(
        _("monthly budget (USD)"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        default=Decimal("50.00"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("Blank: no budget. Pods are refused and stopped once this month's pod costs reach it."),
    )
    terminate_if_stop_fails = models.BooleanField(
        _("terminate a pod that will not stop"),
        default=False,
        help_text=_("Terminating deletes the pod's volume disk (a network volume is kept)."),
    )

    is_connected = models.BooleanField(default=False)
    api_version = models.CharField(_("InvokeAI version"), max_length=50, blank=True)
    last_connected_at = models.DateTimeField(null=True, blank=True)
    connection_error = models.CharField(max_length=500, blank=True)
    # The idle timer: the last time the user (or work of ours) needed the GPU.
    last_activity_at = models.DateTimeField(null=True, blank=True)

    lifetime_usage_hours = models.FloatField(default=0)
    lifetime_cost = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal("0"))
    lifetime_images = models.PositiveIntegerField(default=0)

    # Its queue at the last connection check (everyone's items).
    queue_pending = models.PositiveIntegerField(default=0)
    queue_in_progress = models.PositiveIntegerField(default=0)
    # The hashes of the models the InvokeAI in use listed at the last model refresh, and its URL then (a list from
    # another URL says nothing about this one): how routing knows whether it has a step's model.
    model_hashes = models.JSONField(default=list, blank=True)
    models_url = models.CharField(max_length=500, blank=True)
    # Whether that InvokeAI has PatchMatch for its infill (None: it did not say), read with its models.
    patchmatch = models.BooleanField(null=True, blank=True)

    # GPU types RunPod listed the last time a start found no capacity: {"id", "name", "memory_gb"}.
    known_gpu_types = models.JSONField(default=list, blank=True)
    # Our stopped pods on the account as last listed: {"id", "name", "volume_in_gb"}; their disks are billed.
    stopped_pods = models.JSONField(default=list, blank=True)
    reconciled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("backend settings")
        verbose_name_plural = _("backend settings")
        constraints = [models.CheckConstraint(condition=Q(pk=1), name="backend_settings_single_row")]

    def __str__(self) -> str:
        return "Backend settings"

    def clean(self) -> None:
        """Store the InvokeAI URLs in their normal form; refuse ones the app would not send requests to."""
        errors = {}
        for name in ("local_backend_url", "remote_backend_url"):
            if value := getattr(self, name):
                try:
                    setattr(self, name, normalise_url(value, allow_link_local=settings.INVOKEAI_ALLOW_LINK_LOCAL))
                except RefusedURL as exc:
                    errors[name] = str(exc)
        if errors:
            raise ValidationError(errors)

    @classmethod
    def current(cls) -> BackendSettings:
        """The row, or its defaults before anything was saved (reads never create it; services do)."""
        return cls.objects.filter(pk=1).first() or cls()

    @property
    def effective_local_url(self) -> str:
        return self.local_backend_url or settings.INVOKEAI_LOCAL_URL

    @property
    def effective_gpu_type(self) -> str:
        return self.runpod_gpu_type or settings.RUNPOD_POD_TYPE

    @property
    def effective_idle_timeout(self) -> int:
        return self.idle_timeout_minutes or settings.RUNPOD_IDLE_TIMEOUT


class PodSessionQuerySet(models.QuerySet["PodSession"]):
    def active(self) -> PodSessionQuerySet:
        return self.filter(state__in=PodSession.ACTIVE_STATES)


class PodSession(models.Model):
    """One run of a RunPod pod, from the start request until RunPod confirms it stopped.

    A stopped pod keeps its volume and is resumed by the next start, so several sessions can share a pod id.
    """

    class State(models.TextChoices):
        CREATING = "creating", _("Creating")
        STARTING = "starting", _("Starting")
        READY = "ready", _("Ready")
        STOPPING = "stopping", _("Stopping")
        STOPPED = "stopped", _("Stopped")
        FAILED = "failed", _("Failed")

    class StopReason(models.TextChoices):
        USER = "user", _("Stopped by you")
        IDLE = "idle", _("Idle")
        MAX_LIFETIME = "max_lifetime", _("Longest session reached")
        BUDGET = "budget", _("Monthly budget reached")
        ERROR = "error", _("Error")
        ORPHAN = "orphan", _("Orphan")

    class Progress(models.TextChoices):
        """Which of the three readiness checks a starting pod waits on."""

        RUNPOD = "runpod", _("Waiting for RunPod to run the pod")
        CONTAINER = "container", _("Pulling the image and starting the container")
        INVOKEAI = "invokeai", _("Waiting for InvokeAI to answer")

    # Creating counts: the pod may exist (and bill) before RunPod's answer reached us.
    ACTIVE_STATES = (State.CREATING, State.STARTING, State.READY, State.STOPPING)

    pod_id = models.CharField(max_length=64, blank=True, db_index=True)
    name = models.CharField(_("pod name"), max_length=100, blank=True)
    resumed = models.BooleanField(default=False, help_text=_("Resumed a stopped pod rather than creating one."))
    gpu_type = models.CharField(max_length=100)
    cloud_type = models.CharField(max_length=10, blank=True)
    image = models.CharField(max_length=255, blank=True)
    volume_in_gb = models.PositiveIntegerField(default=0)
    network_volume_id = models.CharField(max_length=64, blank=True)
    cost_per_hour = models.DecimalField(
        max_digits=10, decimal_places=4, null=True, blank=True, help_text=_("As RunPod reported it.")
    )

    state = models.CharField(max_length=10, choices=State.choices, default=State.CREATING, db_index=True)
    progress = models.CharField(max_length=10, choices=Progress.choices, blank=True)
    # What is happening or what went wrong, in words for the owner.
    message = models.CharField(max_length=500, blank=True)
    # A machine-readable cause for failed starts ("capacity" lets the page offer another GPU type).
    error_code = models.CharField(max_length=50, blank=True)
    # Set when RunPod will not confirm a stop: the pod may still be billing.
    alert = models.TextField(blank=True)
    stop_reason = models.CharField(max_length=12, choices=StopReason.choices, blank=True)

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    stop_requested_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    # Retries of the readiness checks or of the stop, and when the next one is due (backoff).
    attempts = models.PositiveIntegerField(default=0)
    next_check_at = models.DateTimeField(null=True, blank=True)

    # The last idle check that found work on this pod: its own idle timer, beside the user's activity.
    last_busy_at = models.DateTimeField(null=True, blank=True)

    images_generated = models.PositiveIntegerField(default=0)
    estimated_cost = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal("0"))

    objects = PodSessionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Pod session {self.pk} ({self.pod_id or 'no pod yet'}, {self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES

    @property
    def gpu_label(self) -> str:
        """The GPU type without the vendor words, short enough for the top bar."""
        return self.gpu_type.removeprefix("NVIDIA ").removeprefix("GeForce ")


class Backend(models.Model):
    """Another InvokeAI that takes work beside the one in use (the local one, or the RunPod pod): a URL of an
    InvokeAI the owner runs elsewhere. New steps go to whichever has the step's model and the shortest queue.

    Status, queue and model list are what the minute check last read, so pages never wait on the backend.
    """

    name = models.CharField(_("name"), max_length=100)
    url = models.CharField(_("InvokeAI URL"), max_length=500, unique=True)
    enabled = models.BooleanField(_("takes new work"), default=True)

    is_connected = models.BooleanField(default=False)
    api_version = models.CharField(_("InvokeAI version"), max_length=50, blank=True)
    connection_error = models.CharField(max_length=500, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    # InvokeAI's queue at the last check: everyone's items, ours included.
    queue_pending = models.PositiveIntegerField(default=0)
    queue_in_progress = models.PositiveIntegerField(default=0)
    model_hashes = models.JSONField(default=list, blank=True)
    models_listed_at = models.DateTimeField(null=True, blank=True)
    # Whether it has PatchMatch for its infill (None: it did not say), read with its models.
    patchmatch = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.name} ({self.url})"

    def clean(self) -> None:
        """Store the URL in its normal form; refuse one the app would not send requests to."""
        try:
            self.url = normalise_url(self.url, allow_link_local=settings.INVOKEAI_ALLOW_LINK_LOCAL)
        except RefusedURL as exc:
            raise ValidationError({"url": str(exc)}) from None

    @property
    def queue_size(self) -> int:
        return self.queue_pending + self.queue_in_progress
