"""django-q2 entry points for generation; each takes plain values and calls a service."""

from __future__ import annotations

import logging

from backends.invokeai.errors import InvokeAIConnectionError

from . import models_cache

logger = logging.getLogger(__name__)


def refresh_models() -> str:
    """The 15-minute refresh. InvokeAI being off (or its pod stopped) is normal, not a task failure."""
    try:
        result = models_cache.models_refresh()
    except InvokeAIConnectionError as exc:
        logger.info("Model cache not refreshed: %s", exc.message)
        return "InvokeAI not answering"
    return f"{result.available} models, {result.added} added, {result.unavailable} unavailable"
