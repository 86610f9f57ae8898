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

    # InvokeAI's default_settings for main models.
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
