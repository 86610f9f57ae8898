"""Which InvokeAI a new step goes to, when there are several (SwarmUI's multi-backend front end).

The candidates are the InvokeAI in use (the local one, or the RunPod pod: `manager.current_backend_url`) and
every enabled `Backend` the last check found answering. A step goes to one that has all its models (the main one
and its LoRAs, VAE, ControlNets, refiner, embeddings, FLUX parts: `Need`s, by hash) and, among those,
the one with the shortest queue: InvokeAI's own count, read now, plus our steps recorded for it but not yet
enqueued (which InvokeAI cannot count yet). Ties go to the InvokeAI in use, then to the oldest backend. The step
keeps that URL (`GenerationStep.backend_url`): everything later for it (following, cancelling, downloading its
images, its events) goes there.

With no other backend this is `current_backend_url()` and two queries more: the single-backend case is unchanged.

A step that fills with PatchMatch goes only to one that said it has PatchMatch (`infill_methods` is what the
studio may offer); every other infill runs on any InvokeAI 6.x.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from django.utils import timezone

from gallery_project.errors import InvalidInput, Unavailable

from . import manager
from .invokeai import graphs
from .invokeai.errors import InvokeAIError
from .models import Backend, BackendSettings, PodSession

logger = logging.getLogger(__name__)

IN_USE = "InvokeAI in use"


@dataclass(frozen=True)
class Candidate:
    url: str
    name: str
    # None for the InvokeAI in use (the local one or the pod).
    backend_id: int | None
    # The hashes of its models as last listed; None when not known (then it is assumed to have any model, and
    # the model check before enqueueing says otherwise).
    model_hashes: frozenset[str] | None
    # Whether it has PatchMatch, as it last said; None when it did not say (then it is not sent PatchMatch steps).
    patchmatch: bool | None = None

    def missing(self, needs: Iterable[Need]) -> list[Need]:
        """What of `needs` it does not have, as far as its model list says (an unknown hash is checked later)."""
        if self.model_hashes is None:
            return []
        return [need for need in needs if need.hash and need.hash not in self.model_hashes]


@dataclass(frozen=True)
class Need:
    """A model a step uses: its main model, or a part of it (a LoRA, the VAE, a ControlNet, the refiner, an
    embedding, a FLUX encoder). Each InvokeAI has its own key for it; the hash says it is the same file."""

    what: str
    hash: str
    name: str = ""

    @property
    def label(self) -> str:
        return f"{self.what} '{self.name}'" if self.name else self.what


def candidates() -> tuple[list[Candidate], Unavailable | None]:
    """Every InvokeAI that may take new work, the one in use first; and why the one in use is missing, if it is."""
    others = list(Backend.objects.filter(enabled=True, is_connected=True).order_by("created_at", "pk"))
    found: list[Candidate] = []
    problem = None
    try:
        url = manager.current_backend_url()
    except Unavailable as exc:
        problem = exc
    else:
        row = BackendSettings.current()
        # What the last model refresh read is about the InvokeAI then in use: it may have been another one.
        listed = row.models_url == url
        found.append(
            Candidate(
                url=url,
                name=IN_USE,
                backend_id=None,
                # Only with others to choose from does the in-use one's model list matter.
                model_hashes=frozenset(row.model_hashes) if others and listed else None,
                patchmatch=row.patchmatch if listed else None,
            )
        )
    # Several pods at once: the ready ones beside the latest (the one in use) take steps too.
    if found and BackendSettings.current().backend_mode == BackendSettings.Mode.REMOTE:
        for pod in PodSession.objects.filter(state=PodSession.State.READY).exclude(pod_id="").order_by("created_at"):
            pod_url = manager.proxy_url(pod.pod_id)
            if pod_url != found[0].url:
                found.append(
                    Candidate(url=pod_url, name=f"RunPod pod {pod.pod_id}", backend_id=None, model_hashes=None)
                )
    for backend in others:
        if found and backend.url == found[0].url:
            continue
        found.append(
            Candidate(
                url=backend.url,
                name=backend.name,
                backend_id=backend.pk,
                model_hashes=frozenset(backend.model_hashes),
                patchmatch=backend.patchmatch,
            )
        )
    return found, problem


@dataclass(frozen=True)
class InfillMethods:
    """The infill methods a new outpaint step may use: InvokeAI's, PatchMatch only where a backend has it."""

    names: tuple[str, ...]
    # No backend that may take the step said whether it has PatchMatch (a server before 6.9, or an answer that
    # was no bool, too big or too late), so PatchMatch is left out without knowing it is missing.
    patchmatch_unknown: bool = False


def infill_methods(options: list[Candidate] | None = None) -> InfillMethods:
    """What the `options` (by default every candidate now) offer between them."""
    if options is None:
        options, _ = candidates()
    said = [option.patchmatch for option in options]
    has_patchmatch = any(said)
    return InfillMethods(
        names=tuple(name for name in graphs.INFILLS if name != "patchmatch" or has_patchmatch),
        patchmatch_unknown=not has_patchmatch and None in said,
    )


def choose(options: list[Candidate], *, load: Mapping[str, int]) -> Candidate:
    """The candidate with the least `load`; ties keep the order of `options` (the one in use first)."""
    return min(enumerate(options), key=lambda pair: (load.get(pair[1].url, 0), pair[0]))[1]


def backend_choose(
    *, needs: Iterable[Need | str] = (), patchmatch: bool = False, pending: Callable[[], Mapping[str, int]] = dict
) -> str:
    """The URL a new step goes to: a backend with every model in `needs` (Needs, or bare hashes of main
    models) and PatchMatch if `patchmatch`, and the shortest queue.

    `pending()` counts, per URL, images of ours recorded but not yet enqueued; it is only called when there is a
    choice. Raises `Unavailable` when no backend can take the step, naming what each one lacks.
    """
    wanted = [Need("model", need) if isinstance(need, str) else need for need in needs]
    wanted = [need for need in wanted if need.hash]
    options, problem = candidates()
    if not options:
        # Remote mode without a pod and no added backend that answers: the in-use one's reason says what to do.
        raise problem or Unavailable("No InvokeAI backend is available.", code="no_backend")
    if len(options) == 1 and not patchmatch:
        return options[0].url
    if patchmatch:
        if not any(option.patchmatch for option in options):
            raise InvalidInput(
                "No InvokeAI backend that may take this step says it has PatchMatch; fill the new area with "
                f"{', '.join(infill_methods(options).names)} instead.",
                code="infill_unavailable",
                details={"field": "outpaint.infill", "backends": [option.url for option in options]},
            )
        options = [option for option in options if option.patchmatch]
    lacking = {option.url: option.missing(wanted) for option in options}
    having = [option for option in options if not lacking[option.url]]
    if not having:
        where = "; ".join(
            f"{option.name} lacks {', '.join(need.label for need in lacking[option.url])}" for option in options
        )
        raise Unavailable(
            f"No InvokeAI backend that answers has this step's models installed ({where}): install them, or "
            "enable the backend that has them, on the backend page.",
            code="model_not_on_any_backend",
            details={
                "backends": [option.url for option in options],
                "missing": {url: [need.label for need in needs] for url, needs in lacking.items()},
            },
        )
    if len(having) == 1:
        return having[0].url
    ours = pending()
    load: dict[str, int] = {}
    answering = []
    for option in having:
        try:
            queue = manager.probe_client(option.url).queue_status()
        except InvokeAIError as exc:
            logger.info("Backend %s not considered for a new step: %s", option.url, exc.message)
            if option.backend_id is not None:
                Backend.objects.filter(pk=option.backend_id).update(
                    is_connected=False, connection_error=exc.message[:500], checked_at=timezone.now()
                )
            continue
        answering.append(option)
        load[option.url] = queue.pending + queue.in_progress + ours.get(option.url, 0)
    if not answering:
        raise Unavailable(
            "None of the InvokeAI backends with this step's model answers right now; try again in a moment.",
            code="no_backend",
        )
    return choose(answering, load=load).url


def is_other_backend(url: str) -> bool:
    """Whether `url` is one of the added backends (not the InvokeAI in use, whose model cache is the app's)."""
    return Backend.objects.filter(url=url).exists()
