from django import template

from photos import media
from photos.models import Photo

register = template.Library()


@register.filter
def thumbnail_url(photo: Photo) -> str:
    """The grid thumbnail's signed URL; only for a photo the page's viewer may see (the URL is the permission)."""
    return media.signed_url(photo.local_thumbnail_path)
