"""django-q2 entry points for generation; each takes plain values and calls a service."""

from __future__ import annotations

import logging

from backends.invokeai.errors import InvokeAIConnectionError

from . import follower, model_installs, models_cache, retrieval

logger = logging.getLogger(__name__)


def refresh_models() -> str:
    """The 15-minute refresh. InvokeAI being off (or its pod stopped) is normal, not a task failure."""
    try:
        result = models_cache.models_refresh()
    except InvokeAIConnectionError as exc:
        logger.info("Model cache not refreshed: %s", exc.message)
        return "InvokeAI not answering"
    return f"{result.available} models, {result.added} added, {result.unavailable} unavailable"


def step_follow(step_id: int, token: str = "") -> str:
    """Follow one running step for a few seconds (then it enqueues itself again); see generation.follower."""
    return follower.step_follow(step_id=step_id, token=token)


def resume_steps() -> str:
    """The one-minute sweep: a follower for running steps that lost theirs (a worker restarted)."""
    return f"{follower.steps_resume()} steps resumed or closed"


def retry_retrievals() -> str:
    """The one-minute retry of failed image downloads whose backoff has passed."""
    return f"{retrieval.retrievals_retry_due()} images stored"


def model_install_follow(install_id: int) -> str:
    """Watch a new model install for a while; see generation.model_installs."""
    return model_installs.install_follow(install_id=install_id)


def poll_model_installs() -> str:
    """The one-minute sweep of model installs not yet finished (after a worker restart, or a long download)."""
    return f"{model_installs.installs_poll_unfinished()} model installs finished"
