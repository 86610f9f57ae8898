"""django-q2 entry points for photos; each takes plain values and calls a service."""

from __future__ import annotations

from . import services


def purge_expired_trash() -> int:
    return services.photo_purge_expired()
