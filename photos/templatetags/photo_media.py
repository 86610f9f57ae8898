import math

from django import template

from photos import media
from photos.models import Photo

register = template.Library()


@register.filter
def thumbnail_url(photo: Photo) -> str:
    """The grid thumbnail's signed URL; only for a photo the page's viewer may see (the URL is the permission)."""
    return media.signed_url(photo.local_thumbnail_path)


# Justified rows need each tile's aspect ratio in CSS, and the CSP allows no style attribute: app.css has one
# class per step of 5% (`.ar0` = 1.05**-28, about 1:4, to `.ar56`, about 4:1), which is within 2.5% of any photo.
ASPECT_STEP, ASPECT_STEPS = 1.05, 28


@register.filter
def aspect_class(photo: Photo) -> str:
    """The tile's aspect-ratio class, for the grid's justified rows."""
    steps = round(math.log(photo.width / photo.height, ASPECT_STEP))
    return f"ar{min(max(steps, -ASPECT_STEPS), ASPECT_STEPS) + ASPECT_STEPS}"
