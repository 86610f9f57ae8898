"""How the rest of the app tells the backends what it is doing, without backends importing it.

The RunPod idle shutdown needs to know when the user is active and whether any of our work is in flight, and
the cost ledger needs to know how many images a pod made; those facts live in the generation app, which
depends on backends, not the other way round.
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent when the user does something that needs the GPU soon: opens or polls the studio, asks to generate.
# Resets the pod's idle timer.
user_activity = Signal()

# Sent by the idle check with `backend_url=` (the pod's); a receiver returns True while work of ours is in flight
# on that backend (a step pending or running, images still being retrieved), which keeps the pod up.
busy_check = Signal()

# Sent with `count=` when images made by the backend have been stored, for the cost-per-image figure.
images_generated = Signal()


def app_is_busy(*, backend_url: str = "") -> bool:
    """Whether work of ours is in flight: on the InvokeAI at `backend_url` (each pod has its own idle timer), or
    anywhere without it."""
    return any(response is True for _, response in busy_check.send(sender=None, backend_url=backend_url))
