"""django-q2 entry points for albums: importing and syncing InvokeAI boards."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from django.contrib.auth.models import User

from backends.invokeai.errors import InvokeAIConnectionError

from . import services

logger = logging.getLogger(__name__)


def boards_import(owner_id: int, board_ids: list[str] | None = None, sync: bool = False) -> dict[str, Any]:
    """`POST /api/albums/import-boards/`'s work."""
    owner = User.objects.get(pk=owner_id)
    return asdict(services.boards_import(owner=owner, boards=board_ids, sync=sync))


def boards_sync() -> str:
    """The scheduled sync. InvokeAI being off (or its pod stopped) is normal, not a task failure."""
    try:
        return f"{services.boards_sync()} images added"
    except InvokeAIConnectionError as exc:
        logger.info("Boards not synced: %s", exc.message)
        return "InvokeAI not answering"
