"""What pods cost: a session's estimate from RunPod's own hourly price, this month's spend against the budget,
and the storage still billed for stopped pods."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Sum
from django.utils import timezone

from .models import BackendSettings, PodSession

# RunPod's storage prices per GB and month (https://docs.runpod.io/pods/pricing): a pod's volume disk costs
# $0.20 while the pod is stopped (twice the running rate, which is part of the pod's hourly price); a network
# volume costs the same whether or not a pod uses it.
VOLUME_STOPPED_PER_GB_MONTH = Decimal("0.20")
NETWORK_VOLUME_PER_GB_MONTH = Decimal("0.07")

_CENT_FRACTIONS = Decimal("0.0001")


def session_cost(session: PodSession, *, now: datetime) -> Decimal:
    """Price per hour x time since the start request, to the second; to the stop for a finished session.

    Counted from the request, not from readiness: RunPod bills while the image is pulled and InvokeAI starts.
    """
    if not session.cost_per_hour or not session.pod_id:
        return Decimal("0")
    end = session.stopped_at or now
    seconds = max(0.0, (end - session.created_at).total_seconds())
    return (session.cost_per_hour * Decimal(seconds) / 3600).quantize(_CENT_FRACTIONS, ROUND_HALF_UP)


def session_hours(session: PodSession, *, now: datetime) -> float:
    if not session.pod_id:
        return 0.0
    return max(0.0, ((session.stopped_at or now) - session.created_at).total_seconds() / 3600)


def cost_per_image(cost: Decimal, images: int) -> Decimal | None:
    return (cost / images).quantize(_CENT_FRACTIONS, ROUND_HALF_UP) if images else None


def month_start(now: datetime) -> datetime:
    local = timezone.localtime(now)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_spend(*, now: datetime) -> Decimal:
    """Pod costs of sessions started this calendar month (in TIME_ZONE), running ones up to now."""
    sessions = PodSession.objects.filter(created_at__gte=month_start(now))
    finished = sessions.exclude(state__in=PodSession.ACTIVE_STATES).aggregate(total=Sum("estimated_cost"))["total"]
    running = sum((session_cost(session, now=now) for session in sessions.active()), Decimal("0"))
    return (finished or Decimal("0")) + running


def budget_reached(row: BackendSettings, *, now: datetime) -> Decimal | None:
    """This month's spend if it has reached the budget, else None."""
    if row.monthly_budget is None:
        return None
    spent = month_spend(now=now)
    return spent if spent >= row.monthly_budget else None


@dataclass(frozen=True)
class StorageCharge:
    """What RunPod bills for disks while no pod runs: stopped pods' volumes, and the network volume."""

    stopped_volume_gb: int
    stopped_volume_per_month: Decimal
    network_volume_id: str


def storage_charge(row: BackendSettings) -> StorageCharge:
    gigabytes = sum(int(pod.get("volume_in_gb") or 0) for pod in row.stopped_pods)
    return StorageCharge(
        stopped_volume_gb=gigabytes,
        stopped_volume_per_month=(VOLUME_STOPPED_PER_GB_MONTH * gigabytes).quantize(Decimal("0.01")),
        network_volume_id=row.runpod_network_volume_id,
    )
