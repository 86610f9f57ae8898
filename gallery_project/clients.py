"""Who is asking: the client's address, for the limits on guessing passwords (logins and share links)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind a trusted proxy the nearest X-Forwarded-For hop that is
    not one of our proxies (the hops further left are whatever the client chose to send)."""
    address = request.META.get("REMOTE_ADDR", "")
    trusted = settings.FORWARDED_ALLOW_IPS
    if "*" not in trusted and address not in trusted:
        return address
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if "*" in trusted:
        return hops[0] if hops else address
    return next((hop for hop in reversed(hops) if hop not in trusted), address)
