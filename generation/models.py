from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backends.invokeai.client import ModelIdentifier

from .step_options import parse_step_options


class CachedModel(models.Model):
    """A model installed in InvokeAI, as last listed, plus what the app adds: favorite, step options, usage.

    InvokeAI's `key` changes when a model is reinstalled; its `hash` does not, so a refresh that meets a new
    key for a known hash moves this row to the new key instead of adding a second one.
    """

    key = models.CharField(_("InvokeAI key"), max_length=64, unique=True)
    hash = models.CharField(max_length=255, db_index=True)
    name = models.CharField(max_length=255)
    type = models.CharField(max_length=50)
    base = models.CharField(max_length=50)
    format = models.CharField(max_length=50, blank=True)
    variant = models.CharField(max_length=50, blank=True)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=1000, blank=True)
    prediction_type = models.CharField(max_length=50, blank=True)
    trigger_phrases = models.JSONField(default=list, blank=True)
    # InvokeAI's default_settings as it reports them for this type (a LoRA's weight bounds, a main model's size).
    default_settings = models.JSONField(default=dict, blank=True)

    # InvokeAI's default_settings for main models, as the step form reads them.
    default_width = models.PositiveIntegerField(null=True, blank=True)
    default_height = models.PositiveIntegerField(null=True, blank=True)
    default_steps = models.PositiveSmallIntegerField(null=True, blank=True)
    default_cfg_scale = models.FloatField(null=True, blank=True)
    default_scheduler = models.CharField(max_length=50, blank=True)
    default_guidance = models.FloatField(null=True, blank=True)
    default_vae = models.CharField(_("default VAE key"), max_length=64, blank=True)

    # The main-model base this model serves: its own, or "flux" for FLUX's T5 and CLIP-embed (base "any").
    compatible_with_base = models.CharField(max_length=50, blank=True, db_index=True)
    is_default_vae = models.BooleanField(_("default VAE for its base"), default=False)
    is_favorite = models.BooleanField(default=False)
    # {"fixed_steps": N} or {"steps": {"min", "max", "default"}}; empty falls back to MODEL_* settings.
    options = models.JSONField(default=dict, blank=True)
    available = models.BooleanField(default=True, help_text=_("False once InvokeAI no longer lists it."))
    last_used_at = models.DateTimeField(null=True, blank=True)
    cached_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-is_favorite", "name"]
        indexes = [models.Index(fields=["type", "base"], name="cachedmodel_type_base")]
        constraints = [
            models.UniqueConstraint(
                fields=["compatible_with_base"],
                condition=Q(is_default_vae=True),
                name="one_default_vae_per_base",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.base} {self.type})"

    def clean(self) -> None:
        try:
            parse_step_options(self.options)
        except ValueError as exc:
            raise ValidationError({"options": str(exc)}) from exc

    @property
    def identifier(self) -> ModelIdentifier:
        return ModelIdentifier(key=self.key, hash=self.hash, name=self.name, base=self.base, type=self.type)


class GenerationSession(models.Model):
    """A person iterating on one image: a linear history of steps, each offering a few alternatives."""

    class EntryType(models.TextChoices):
        SCRATCH = "scratch", _("From scratch")
        PHOTO = "photo", _("From a photo")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        COMPLETED = "completed", _("Completed")
        ABANDONED = "abandoned", _("Abandoned")

    # Empty only for sessions from before accounts existed, until the first account adopts them. The session's
    # steps, and the photos they generate, belong to this account too.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="generation_sessions"
    )
    entry_type = models.CharField(max_length=10, choices=EntryType, default=EntryType.SCRATCH)
    source_image = models.ForeignKey("photos.Photo", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    title = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status, default=Status.ACTIVE)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["active", "completed", "abandoned"]), name="session_status"),
        ]

    def __str__(self) -> str:
        return self.title or f"Session {self.pk}"


class GenerationStep(models.Model):
    """One InvokeAI batch: a prompt and parameters, and the images its items made.

    The batch id and item ids are the correlation with InvokeAI; `item_results` keeps each finished item's
    outcome (completed, failed, canceled or lost) so a resumed follower knows what is left. Status changes go
    through `generation.lifecycle` only.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    session = models.ForeignKey(GenerationSession, on_delete=models.CASCADE, related_name="steps")
    # The preset the step's form came from; its name is kept in `parameters` should the preset go.
    preset = models.ForeignKey(
        "Preset", null=True, blank=True, on_delete=models.SET_NULL, related_name="generation_steps"
    )
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    position = models.PositiveIntegerField()
    prompt = models.TextField()
    negative_prompt = models.TextField(blank=True)
    # mode, width, height, steps, cfg_scale, guidance, scheduler, seed (the batch's first), strength, vae_key,
    # init_photo_id, mask_photo_id.
    parameters = models.JSONField(default=dict)
    model_key = models.CharField(max_length=64)
    model_hash = models.CharField(max_length=255)
    model_name = models.CharField(max_length=255)
    batch_size = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)

    # The InvokeAI this step was enqueued on; it is finished there even if the app has since switched.
    backend_url = models.CharField(max_length=500, blank=True)
    batch_id = models.CharField(max_length=64, blank=True, db_index=True)
    item_ids = models.JSONField(default=list, blank=True)
    item_results = models.JSONField(default=dict, blank=True)
    images_retrieved = models.PositiveSmallIntegerField(default=0)
    images_failed = models.PositiveSmallIntegerField(default=0)
    error_message = models.TextField(blank=True)

    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    # The follower holding this step; another one may take over once the lease has expired.
    follower_token = models.CharField(max_length=32, blank=True)
    follower_lease_until = models.DateTimeField(null=True, blank=True)
    # Last time InvokeAI answered about this step; a step it stops answering about fails after a while.
    last_contact_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["session", "position"]
        constraints = [
            models.UniqueConstraint(fields=["session", "position"], name="step_unique_position"),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "running", "completed", "failed", "cancelled"]), name="step_status"
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="step_progress_percent"),
            models.CheckConstraint(condition=Q(batch_size__gte=1), name="step_batch_size_positive"),
        ]
        indexes = [
            models.Index(fields=["status"], name="step_in_flight", condition=Q(status__in=["pending", "running"])),
        ]

    def __str__(self) -> str:
        return f"Step {self.position} of session {self.session_id}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.COMPLETED, self.Status.FAILED, self.Status.CANCELLED)

    @property
    def seed(self) -> int | None:
        return self.parameters.get("seed")


class StepAlternative(models.Model):
    """One image a step made; at most one per step is the selected one (enforced by the database)."""

    step = models.ForeignKey(GenerationStep, on_delete=models.CASCADE, related_name="alternatives")
    photo = models.OneToOneField("photos.Photo", on_delete=models.CASCADE, related_name="step_alternative")
    # The InvokeAI queue item that made it, and its place in the batch (the order of the seeds).
    item_id = models.PositiveBigIntegerField()
    index = models.PositiveSmallIntegerField()
    selected = models.BooleanField(default=False)
    selected_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["step", "index"]
        constraints = [
            models.UniqueConstraint(fields=["step"], condition=Q(selected=True), name="one_selected_alternative"),
            models.UniqueConstraint(fields=["step", "item_id"], name="alternative_unique_item"),
        ]

    def __str__(self) -> str:
        return f"Alternative {self.index + 1} of {self.step}"


class StudioPreference(models.Model):
    """What the studio form starts from for a person: the model and step count they used last."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="studio_preference")
    model_key = models.CharField(max_length=64, blank=True)
    steps = models.PositiveSmallIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Studio preferences of {self.user}"


class ModelInstall(models.Model):
    """A model being installed into InvokeAI from the app: our record of InvokeAI's install job, so a reload or a
    worker restart still shows it, and something finishes it (refreshing the cache) whoever watches."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        DOWNLOADING = "downloading", _("Downloading")
        INSTALLING = "installing", _("Installing")
        READY = "ready", _("Ready")
        ERROR = "error", _("Error")

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="model_installs")
    source = models.CharField(max_length=2000, help_text=_("A path on InvokeAI's host, a URL or a Hugging Face id."))
    name = models.CharField(max_length=255, blank=True)
    # The InvokeAI the job runs on (the local one or a pod's); it is followed there even if the app switches.
    backend_url = models.CharField(max_length=500)
    # InvokeAI's job id: it counts from 0 again after each start of InvokeAI, so it is read with `source`.
    job_id = models.IntegerField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status, default=Status.QUEUED)
    bytes = models.BigIntegerField(default=0)
    total_bytes = models.BigIntegerField(default=0)
    error_message = models.TextField(blank=True)
    model_key = models.CharField(max_length=64, blank=True)
    model_type = models.CharField(max_length=50, blank=True)
    model_base = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "downloading", "installing", "ready", "error"]),
                name="model_install_status",
            ),
        ]
        indexes = [
            models.Index(
                fields=["status"], name="model_install_unfinished", condition=~Q(status__in=["ready", "error"])
            )
        ]

    def __str__(self) -> str:
        return f"Install of {self.name or self.source}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.READY, self.Status.ERROR)

    @property
    def percent(self) -> int:
        if self.status == self.Status.READY:
            return 100
        return min(100, self.bytes * 100 // self.total_bytes) if self.total_bytes else 0


class Preset(models.Model):
    """A ready-to-use engine: a main model with its VAE, LoRAs, embeddings and ControlNets, and step defaults.

    Models are named by InvokeAI key, as steps name them; `preset_problems` says which of them is gone.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presets")
    name = models.CharField(max_length=100)
    model_key = models.CharField(_("main model key"), max_length=64)
    vae_key = models.CharField(_("VAE key"), max_length=64, blank=True)
    # [{"key", "weight"}]
    loras = models.JSONField(default=list, blank=True)
    # [key]
    embeddings = models.JSONField(default=list, blank=True)
    controlnets = models.JSONField(default=list, blank=True)
    scheduler = models.CharField(max_length=50, blank=True)
    steps = models.PositiveSmallIntegerField(null=True, blank=True)
    cfg_scale = models.FloatField(_("CFG scale / guidance"), null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    clip_skip = models.PositiveSmallIntegerField(null=True, blank=True)
    # {"model_key", "steps", "cfg_scale", "start"} for an SDXL refiner; empty: none.
    refiner = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="preset_unique_name")]

    def __str__(self) -> str:
        return self.name

    @property
    def model_keys(self) -> set[str]:
        """Every model the preset uses."""
        keys = {self.model_key, self.vae_key, *self.embeddings, *self.controlnets}
        keys |= {lora.get("key", "") for lora in self.loras if isinstance(lora, dict)}
        keys.add(self.refiner.get("model_key", "") if isinstance(self.refiner, dict) else "")
        return keys - {""}


class ItemProgress(models.Model):
    """A running InvokeAI item's denoising, from InvokeAI's events: how far, and its latest preview image.

    Written only by the events listener (generation.events), deleted (with the preview file) once the item has
    finished: a finished item shows its real image instead.
    """

    step = models.ForeignKey(GenerationStep, on_delete=models.CASCADE, related_name="live_items")
    item_id = models.PositiveBigIntegerField()
    percent = models.PositiveSmallIntegerField(default=0)
    # What InvokeAI is doing: "Loading model", "Denoising", "Saving image"...
    message = models.CharField(max_length=100, blank=True)
    # When the preview file was last written (its URL changes with it); None until the first one.
    preview_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["step", "item_id"]
        constraints = [
            models.UniqueConstraint(fields=["step", "item_id"], name="item_progress_unique_item"),
            models.CheckConstraint(condition=Q(percent__lte=100), name="item_progress_percent"),
        ]

    def __str__(self) -> str:
        return f"Item {self.item_id} of {self.step}: {self.percent}%"
