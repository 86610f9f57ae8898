from django import template

register = template.Library()

# Recipe keys whose plain-English label is not just the key with spaces.
_LABELS = {
    "cfg_scale": "CFG scale",
    "vae": "VAE",
    "cfg_rescale_multiplier": "CFG rescale",
    "source": "Made with",
    "loras": "LoRAs",
}
# Shown elsewhere in the lightbox (the size it was made at, the studio link), so not repeated in the list.
_SHOWN_ELSEWHERE = {"width", "height", "session", "step", "controlnets"}


def _value(key: str, value: object) -> object:
    if key == "loras" and isinstance(value, list):
        # [{"name": ..., "weight": ...}] as "add_detail (0.7), film_grain (1)".
        return ", ".join(
            f"{lora.get('name')} ({lora['weight']:g})"
            if isinstance(lora.get("weight"), float | int)
            else f"{lora.get('name')}"
            for lora in value
            if isinstance(lora, dict)
        )
    return value


@register.filter
def recipe_items(params: dict) -> list[tuple[str, object]]:
    """A generated photo's parameters as (label, value) rows for people to read."""
    return [
        (_LABELS.get(key, key.replace("_", " ").capitalize()), _value(key, value))
        for key, value in params.items()
        if key not in _SHOWN_ELSEWHERE
    ]
