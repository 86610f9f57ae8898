from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Workflow(models.Model):
    """An InvokeAI node workflow, imported to run from its own studio page.

    `document` is the JSON exactly as it was imported (a database's JSON type may reorder keys), so an export
    gives back the same file; name, description, tags and author are read from it for lists and search.
    """

    class Source(models.TextChoices):
        FILE = "file", _("Uploaded file")
        PASTE = "paste", _("Pasted JSON")
        LIBRARY = "library", _("InvokeAI's library")
        IMAGE = "image", _("An InvokeAI image's metadata")

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workflows")
    name = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    tags = models.CharField(max_length=1000, blank=True)
    author = models.CharField(max_length=255, blank=True)
    # The workflow format's version (meta.version: 3.0.0 or 4.0.0).
    schema_version = models.CharField(max_length=20)
    # The InvokeAI it was taken from, for library imports (a file does not say which InvokeAI saved it).
    invokeai_version = models.CharField(_("InvokeAI version"), max_length=50, blank=True)
    source = models.CharField(max_length=10, choices=Source)
    invokeai_workflow_id = models.CharField(_("InvokeAI workflow id"), max_length=255, blank=True)
    document = models.TextField(help_text=_("The workflow JSON as imported."))
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["owner", "name"], name="workflow_owner_name")]

    def __str__(self) -> str:
        return self.name
