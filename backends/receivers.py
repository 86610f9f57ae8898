"""What backends does when the rest of the app reports activity (see `signals`)."""

from __future__ import annotations

from typing import Any

from . import services


def on_user_activity(sender: Any, **kwargs: Any) -> None:
    services.activity_record()


def on_images_generated(sender: Any, *, count: int, backend_url: str = "", **kwargs: Any) -> None:
    services.images_record(count=count, backend_url=backend_url)
