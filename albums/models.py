import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# The built-in view of photos in no album (InvokeAI's "none" board). It is not a row, so it can be neither
# renamed nor deleted; an album may not take its name, or the two would be indistinguishable in pickers.
UNCATEGORIZED = "Uncategorized"


class Album(models.Model):
    """A named, ordered selection of photos. Deleting an album leaves its photos in the gallery."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Empty only for albums from before accounts existed, until the first account adopts them.
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="albums")
    name = models.CharField(_("name"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    # Explicit cover; when empty (or no longer a live photo of the album) the first photo is the cover.
    cover_photo = models.ForeignKey("photos.Photo", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    is_archived = models.BooleanField(_("archived"), default=False)
    # The InvokeAI board this album was imported from or sent to; images are matched by their InvokeAI name.
    invokeai_board_id = models.CharField(_("InvokeAI board id"), max_length=64, blank=True)
    # Picked up again by the board sync (new images on the board join the album).
    invokeai_sync = models.BooleanField(_("kept in sync with its InvokeAI board"), default=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = [Lower("name"), "id"]
        constraints = [
            # Per owner: another account's album names are neither in the way nor revealed by a refusal.
            models.UniqueConstraint(
                F("owner"),
                Lower("name"),
                name="album_unique_name_per_owner",
                violation_error_message=_("An album with this name already exists."),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        self.name = self.name.strip()
        if not self.name:
            raise ValidationError({"name": _("An album needs a name.")})
        if self.name.casefold() == UNCATEGORIZED.casefold():
            raise ValidationError({"name": _("“Uncategorized” is the built-in view of photos in no album.")})
        if self.cover_photo_id is not None and (
            self._state.adding or not self.entries.filter(photo_id=self.cover_photo_id).exists()
        ):
            raise ValidationError({"cover_photo": _("The cover must be a photo of the album.")})


class AlbumPhoto(models.Model):
    """A photo's place in an album. Rows stay when the photo goes to the trash, so a restore puts it back in
    its place; every read filters on the photo being live."""

    album = models.ForeignKey(Album, on_delete=models.CASCADE, related_name="entries")
    photo = models.ForeignKey("photos.Photo", on_delete=models.CASCADE, related_name="album_entries")
    position = models.PositiveIntegerField()
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["album", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["album", "photo"], name="album_photo_unique"),
        ]
        indexes = [models.Index(fields=["album", "position"], name="album_photo_position")]

    def __str__(self) -> str:
        # Short: the admin prints it above every inline row, beside the photo's own columns.
        return f"#{self.position}"


class ShareLink(models.Model):
    """A public link to one album or one photo.

    Only the SHA-256 of the token is stored: the full link is shown once, when it is created, and a copy of
    the database does not hand out working links.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        REVOKED = "revoked", _("Revoked")
        EXPIRED = "expired", _("Expired")
        EXHAUSTED = "exhausted", _("Used up")
        # A link to one photo pauses while that photo is in the trash, and works again once it is restored.
        TRASHED = "trashed", _("Photo in the trash")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Always the owner of the album or photo shared (the services only share what the owner owns).
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.CASCADE, related_name="share_links")
    album = models.ForeignKey(Album, null=True, blank=True, on_delete=models.CASCADE, related_name="share_links")
    photo = models.ForeignKey(
        "photos.Photo", null=True, blank=True, on_delete=models.CASCADE, related_name="share_links"
    )
    token_hash = models.CharField(_("SHA-256 of the token"), max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    max_views = models.PositiveIntegerField(null=True, blank=True)
    max_downloads = models.PositiveIntegerField(null=True, blank=True)
    view_count = models.PositiveIntegerField(default=0)
    download_count = models.PositiveIntegerField(default=0)
    allow_download = models.BooleanField(_("allow downloading the original"), default=False)
    show_details = models.BooleanField(_("show generation details"), default=False)
    # A Django password hash (make_password), or empty for no password.
    password = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(album__isnull=False, photo__isnull=True) | Q(album__isnull=True, photo__isnull=False),
                name="share_link_one_target",
            ),
            models.CheckConstraint(condition=Q(max_views__gte=1), name="share_link_max_views_positive"),
            models.CheckConstraint(condition=Q(max_downloads__gte=1), name="share_link_max_downloads_positive"),
        ]

    def __str__(self) -> str:
        return f"Link to {self.album or self.photo}"

    @property
    def has_password(self) -> bool:
        return bool(self.password)

    @property
    def is_exhausted(self) -> bool:
        return (self.max_views is not None and self.view_count >= self.max_views) or (
            self.max_downloads is not None and self.download_count >= self.max_downloads
        )

    def status_at(self, now) -> str:
        if self.revoked_at is not None:
            return self.Status.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return self.Status.EXPIRED
        if self.is_exhausted:
            return self.Status.EXHAUSTED
        if self.photo is not None and self.photo.deleted_at is not None:
            return self.Status.TRASHED
        return self.Status.ACTIVE

    @property
    def status(self) -> str:
        return self.status_at(timezone.now())

    @property
    def status_label(self) -> str:
        return str(self.Status(self.status).label)


class SharePasswordFailures(models.Model):
    """Wrong share-link passwords counted per key (one link, or one client address) in a fixed time window.

    In the database rather than a cache, so every gunicorn process sees the same counts; rows are
    incremented with UPDATE ... SET failures = failures + 1, so concurrent attempts are all counted.
    """

    key = models.CharField(max_length=100)
    window_start = models.DateTimeField()
    failures = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "window_start"], name="share_password_failures_window"),
        ]
        verbose_name_plural = "share password failures"

    def __str__(self) -> str:
        return f"{self.key} since {self.window_start}: {self.failures}"
