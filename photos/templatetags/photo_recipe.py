from django import template

register = template.Library()

# Recipe keys whose plain-English label is not just the key with spaces.
_LABELS = {"cfg_scale": "CFG scale", "vae": "VAE", "cfg_rescale_multiplier": "CFG rescale"}
# Shown elsewhere in the lightbox (the size line, the studio link), so not repeated in the list.
_SHOWN_ELSEWHERE = {"width", "height", "session", "step"}


@register.filter
def recipe_items(params: dict) -> list[tuple[str, object]]:
    """A generated photo's parameters as (label, value) rows for people to read."""
    return [
        (_LABELS.get(key, key.replace("_", " ").capitalize()), value)
        for key, value in params.items()
        if key not in _SHOWN_ELSEWHERE
    ]
