"""A typed client for the parts of InvokeAI 6.x's REST API the app uses: health, models, queue, images.

Every method returns dataclasses (or bytes) and raises the errors of `backends.invokeai.errors`; nothing above
this module sees `requests`. Idempotent GETs are retried by urllib3 on refused connections and 5xx answers;
POSTs and PUTs are never retried, because a repeated enqueue would generate the images twice.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from .errors import GenerationError, InvokeAIConnectionError, InvokeAIError, RetrievalError

logger = logging.getLogger(__name__)

QUEUE = "/api/v1/queue/default"
# The statuses after which an item never changes again (FACTS #6). "lost" is ours: the item is gone (pruned,
# or the queue was cleared), so it will never finish either.
FINISHED_STATUSES = frozenset({"completed", "failed", "canceled"})
LOST = "lost"
# items_by_ids refuses more than this many ids in one request (6.14).
_ITEMS_PER_REQUEST = 1000
# 524 is RunPod's proxy giving up on a request held open over 100 s.
_RETRY_STATUSES = (500, 502, 503, 504, 524)


@dataclass(frozen=True)
class ModelIdentifier:
    """What a graph needs to name a model: all five fields, or the server answers 422 (FACTS #1)."""

    key: str
    hash: str
    name: str
    base: str
    type: str

    def as_field(self) -> dict[str, str]:
        return {"key": self.key, "hash": self.hash, "name": self.name, "base": self.base, "type": self.type}


@dataclass(frozen=True)
class ModelDefaults:
    """A main model's `default_settings` as set in InvokeAI's model manager; None where not set."""

    width: int | None = None
    height: int | None = None
    steps: int | None = None
    cfg_scale: float | None = None
    scheduler: str | None = None
    guidance: float | None = None
    # The key of the VAE to use by default, not an identifier.
    vae: str | None = None


@dataclass(frozen=True)
class InvokeAIModel:
    key: str
    hash: str
    name: str
    base: str
    type: str
    format: str
    variant: str = ""
    description: str = ""
    source: str = ""
    defaults: ModelDefaults = field(default_factory=ModelDefaults)

    @property
    def identifier(self) -> ModelIdentifier:
        return ModelIdentifier(key=self.key, hash=self.hash, name=self.name, base=self.base, type=self.type)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> InvokeAIModel:
        settings = config.get("default_settings") or {}
        return cls(
            key=config["key"],
            hash=config["hash"],
            name=config["name"],
            base=config["base"],
            type=config["type"],
            format=config.get("format") or "",
            variant=config.get("variant") or "",
            description=config.get("description") or "",
            source=config.get("source") or "",
            defaults=ModelDefaults(
                width=settings.get("width"),
                height=settings.get("height"),
                steps=settings.get("steps"),
                cfg_scale=settings.get("cfg_scale"),
                scheduler=settings.get("scheduler"),
                guidance=settings.get("guidance"),
                vae=settings.get("vae"),
            ),
        )


@dataclass(frozen=True)
class EnqueuedBatch:
    batch_id: str
    # Ascending: the server answers them in descending order (FACTS #3), and item i of the batch is the i-th
    # combination of its data, so ascending ids line up with the seeds.
    item_ids: tuple[int, ...]
    requested: int
    enqueued: int


@dataclass(frozen=True)
class BatchStatus:
    batch_id: str
    pending: int
    in_progress: int
    waiting: int
    completed: int
    failed: int
    canceled: int
    total: int

    @property
    def finished(self) -> bool:
        # total is 0 for a batch the server does not know (pruned, or never enqueued): not finished, but its
        # items will read as lost.
        return self.total > 0 and self.completed + self.failed + self.canceled == self.total


@dataclass(frozen=True)
class QueueItem:
    item_id: int
    status: str
    batch_id: str = ""
    # The seed the item ran with, read back from the batch data the server substituted.
    seed: int | None = None
    # The image made by the graph's output node, once completed.
    image_name: str | None = None
    error_type: str | None = None
    error_message: str | None = None

    @property
    def finished(self) -> bool:
        # An unknown status (6.14 added "waiting"; later versions may add more) is "not finished yet".
        return self.status in FINISHED_STATUSES or self.status == LOST

    @property
    def lost(self) -> bool:
        return self.status == LOST


@dataclass(frozen=True)
class BatchProgress:
    status: BatchStatus
    items: list[QueueItem]

    @property
    def finished(self) -> bool:
        return all(item.finished for item in self.items)


@dataclass(frozen=True)
class QueueStatus:
    pending: int
    in_progress: int
    completed: int
    failed: int
    canceled: int
    total: int
    is_processing: bool


@dataclass(frozen=True)
class UploadedImage:
    image_name: str
    width: int
    height: int


def queue_item_from(raw: dict[str, Any], *, output_node: str, seed_node: str = "seed") -> QueueItem:
    """Read an item of `items_by_ids` or `GET /i/{id}`: its seed and the image of `output_node` only.

    An inpaint graph saves three images per item (mask helpers too, FACTS #5): the output is the result whose
    prepared node maps back to `output_node`.
    """
    seed = next(
        (
            value["value"]
            for value in raw.get("field_values") or []
            if value.get("node_path") == seed_node and value.get("field_name") == "value"
        ),
        None,
    )
    session = raw.get("session") or {}
    mapping = session.get("prepared_source_mapping") or {}
    image_name = next(
        (
            result["image"]["image_name"]
            for exec_id, result in (session.get("results") or {}).items()
            if result.get("type") == "image_output" and mapping.get(exec_id) == output_node
        ),
        None,
    )
    return QueueItem(
        item_id=raw["item_id"],
        status=raw["status"],
        batch_id=raw.get("batch_id") or "",
        seed=seed,
        image_name=image_name,
        error_type=raw.get("error_type"),
        error_message=raw.get("error_message"),
    )


def _describe_detail(body: Any) -> str:
    """Turn FastAPI's error body (`{"detail": "..."}` or `{"detail": [{"loc", "msg"}]}`) into a sentence."""
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, list) and detail:
        parts = []
        for error in detail[:3]:
            # "body", "batch" and the node type pydantic adds to union members say nothing to a person.
            loc = [str(part) for part in error.get("loc", []) if part not in ("body", "batch", "query", "path")]
            parts.append(f"{'.'.join(loc)}: {error.get('msg', '')}" if loc else str(error.get("msg", "")))
        return "; ".join(parts)
    return str(detail) if detail else "no details"


class InvokeAIClient:
    """One InvokeAI server. Worth keeping: it holds a connection pool and, in multiuser mode, a token."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        email: str = "",
        password: str = "",
        retry_backoff: float = 0.3,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self._email = email
        self._password = password
        self._token = ""
        self._session = requests.Session()
        retry = Retry(
            total=3,
            connect=3,
            # A server too slow for the read timeout is rarely faster on a second try; once is enough.
            read=1,
            status=3,
            backoff_factor=retry_backoff,
            status_forcelist=_RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD"}),
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"InvokeAIClient({self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    # --- transport ---

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            response = self._session.request(
                method, self.base_url + path, headers=headers, timeout=self.timeout, **kwargs
            )
        except requests.exceptions.ConnectTimeout as exc:
            raise self._not_answering(exc) from exc
        except requests.exceptions.Timeout as exc:
            raise self._too_slow(method, path) from exc
        except requests.exceptions.ConnectionError as exc:
            # A GET whose read retries ran out arrives here, its ReadTimeoutError wrapped in a MaxRetryError.
            if isinstance(getattr(exc.args[0] if exc.args else None, "reason", None), ReadTimeoutError):
                raise self._too_slow(method, path) from exc
            raise self._not_answering(exc) from exc
        # 6.13+ slides the login's expiry forward on each change it accepts (FACTS #14).
        if refreshed := response.headers.get("X-Refreshed-Token"):
            self._token = refreshed
        return response

    def _too_slow(self, method: str, path: str) -> InvokeAIConnectionError:
        return InvokeAIConnectionError(
            f"InvokeAI at {self.base_url} did not answer {method} {path} within {self.timeout[1]:g} s; "
            "it may be busy loading a model. Try again, or raise INVOKEAI_READ_TIMEOUT.",
            details={"url": self.base_url, "path": path},
        )

    def _not_answering(self, exc: Exception) -> InvokeAIConnectionError:
        return InvokeAIConnectionError(
            # Not naming a setting: this address may come from the backend page, the environment or a pod.
            f"InvokeAI at {self.base_url} is not answering. Check that it is running at that address "
            "(InvokeAI moves to port 9091 when 9090 is taken), or choose another InvokeAI on the backend page.",
            details={"url": self.base_url, "reason": type(exc).__name__},
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        error: type[InvokeAIError] = InvokeAIError,
        allow_404: bool = False,
        expect: str = "application/json",
        **kwargs: Any,
    ) -> requests.Response | None:
        response = self._send(method, path, **kwargs)
        if response.status_code == 401 and self._email and path != "/api/v1/auth/login":
            self._login()
            response = self._send(method, path, **kwargs)
        if response.status_code == 404 and allow_404:
            return None
        if response.status_code == 401:
            raise InvokeAIError(
                f"InvokeAI at {self.base_url} runs in multiuser mode and needs a login: "
                "set INVOKEAI_EMAIL and INVOKEAI_PASSWORD.",
                code="invokeai_login_required",
                details={"url": self.base_url},
            )
        if response.status_code >= 400:
            raise error(
                f"InvokeAI at {self.base_url} refused {method} {path} ({response.status_code}): "
                f"{_describe_detail(self._json_or_text(response))}",
                details={"url": self.base_url, "path": path, "status": response.status_code},
            )
        content_type = response.headers.get("Content-Type", "")
        if not content_type.startswith(expect):
            # Since 6.12 an unknown GET path answers 200 with the web UI's HTML (FACTS #10).
            raise InvokeAIError(
                f"{self.base_url}{path} answered {content_type or 'without a content type'}, not {expect}: "
                "is this an InvokeAI 6.x server?",
                code="invokeai_unexpected_answer",
                details={"url": self.base_url, "path": path},
            )
        return response

    @staticmethod
    def _json_or_text(response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            return response.text[:500]

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        return None if response is None else response.json()

    def _login(self) -> None:
        response = self._send(
            "POST",
            "/api/v1/auth/login",
            json={"email": self._email, "password": self._password, "remember_me": True},
        )
        if response.status_code == 403:
            # Single-user mode refuses logins and needs none.
            self._email = ""
            return
        if response.status_code != 200:
            raise InvokeAIError(
                f"InvokeAI at {self.base_url} refused the login of {self._email}: "
                f"{_describe_detail(self._json_or_text(response))}. "
                "Check INVOKEAI_EMAIL and INVOKEAI_PASSWORD.",
                code="invokeai_login_refused",
                details={"url": self.base_url},
            )
        self._token = response.json()["token"]

    # --- server ---

    def connect(self) -> str:
        """Check that InvokeAI answers (and log in if it runs in multiuser mode); return its version."""
        version = self._json("GET", "/api/v1/app/version")["version"]
        if self._email and not self._token:
            self._login()
        return version

    def queue_status(self) -> QueueStatus:
        body = self._json("GET", f"{QUEUE}/status")
        queue = body["queue"]
        return QueueStatus(
            pending=queue["pending"],
            in_progress=queue["in_progress"],
            completed=queue["completed"],
            failed=queue["failed"],
            canceled=queue["canceled"],
            total=queue["total"],
            is_processing=body["processor"]["is_processing"],
        )

    # --- models ---

    def list_models(self, *, model_type: str | None = None, bases: Iterable[str] = ()) -> list[InvokeAIModel]:
        params: dict[str, Any] = {"base_models": list(bases)}
        if model_type:
            params["model_type"] = model_type
        body = self._json("GET", "/api/v2/models/", params=params)
        return [InvokeAIModel.from_config(config) for config in body["models"]]

    def get_model(self, key: str) -> InvokeAIModel | None:
        body = self._json("GET", f"/api/v2/models/i/{key}", allow_404=True)
        return None if body is None else InvokeAIModel.from_config(body)

    def get_model_by_hash(self, hash: str) -> InvokeAIModel | None:
        """Find a model again after a reinstall gave it a new key (FACTS #2)."""
        body = self._json("GET", "/api/v2/models/get_by_hash", params={"hash": hash}, allow_404=True)
        return None if body is None else InvokeAIModel.from_config(body)

    # --- queue ---

    def enqueue(self, body: dict[str, Any]) -> EnqueuedBatch:
        """Enqueue one batch (an `enqueue_batch` body, as `graphs.build_batch` makes)."""
        result = self._json("POST", f"{QUEUE}/enqueue_batch", json=body, error=GenerationError)
        if not result["enqueued"]:
            raise GenerationError(
                f"InvokeAI at {self.base_url} accepted none of the {result['requested']} images: "
                "its queue is full. Wait for it to drain, or cancel what is waiting.",
                code="invokeai_queue_full",
            )
        if result["enqueued"] < result["requested"]:
            logger.warning(
                "InvokeAI queued %s of %s items of batch %s (queue full)",
                result["enqueued"],
                result["requested"],
                result["batch"]["batch_id"],
            )
        return EnqueuedBatch(
            batch_id=result["batch"]["batch_id"],
            item_ids=tuple(sorted(result["item_ids"])),
            requested=result["requested"],
            enqueued=result["enqueued"],
        )

    def batch_status(self, batch_id: str) -> BatchStatus:
        body = self._json("GET", f"{QUEUE}/b/{batch_id}/status")
        return BatchStatus(
            batch_id=batch_id,
            pending=body["pending"],
            in_progress=body["in_progress"],
            waiting=body.get("waiting", 0),
            completed=body["completed"],
            failed=body["failed"],
            canceled=body["canceled"],
            total=body["total"],
        )

    def queue_items(self, item_ids: Sequence[int], *, output_node: str) -> list[QueueItem]:
        """The items, in the order asked; an item the server no longer has comes back with status "lost"."""
        found: dict[int, QueueItem] = {}
        for start in range(0, len(item_ids), _ITEMS_PER_REQUEST):
            chunk = list(item_ids[start : start + _ITEMS_PER_REQUEST])
            for raw in self._json("POST", f"{QUEUE}/items_by_ids", json={"item_ids": chunk}):
                found[raw["item_id"]] = queue_item_from(raw, output_node=output_node)
        return [found.get(item_id) or QueueItem(item_id=item_id, status=LOST) for item_id in item_ids]

    def batch_progress(self, batch: EnqueuedBatch, *, output_node: str) -> BatchProgress:
        """The batch's counts, then its items: what a follower needs to store finished images."""
        return BatchProgress(
            status=self.batch_status(batch.batch_id),
            items=self.queue_items(batch.item_ids, output_node=output_node),
        )

    def cancel_batches(self, batch_ids: Sequence[str]) -> int:
        """Cancel every pending or running item of these batches; return how many were canceled."""
        body = self._json("PUT", f"{QUEUE}/cancel_by_batch_ids", json={"batch_ids": list(batch_ids)})
        return body["canceled"]

    # --- images ---

    def _image_part(self, name: str, part: str, content_type: str) -> requests.Response:
        response = self._request(
            "GET",
            f"/api/v1/images/i/{name}/{part}",
            allow_404=True,
            expect=content_type,
            error=RetrievalError,
        )
        if response is None:
            raise RetrievalError(
                f"InvokeAI at {self.base_url} no longer has image {name}.",
                code="image_missing",
                details={"image_name": name},
            )
        return response

    def image(self, name: str) -> bytes:
        """The full image, PNG, with InvokeAI's metadata in its text chunks."""
        return self._image_part(name, "full", "image/png").content

    def thumbnail(self, name: str) -> bytes:
        """InvokeAI's WebP thumbnail (fits a 256 px box)."""
        return self._image_part(name, "thumbnail", "image/webp").content

    def image_metadata(self, name: str) -> dict[str, Any] | None:
        """The image's core_metadata (prompt, seed, model, steps...), or None if it has none."""
        return self._image_part(name, "metadata", "application/json").json()

    def upload_image(
        self, *, data: bytes, filename: str, category: str, is_intermediate: bool = False
    ) -> UploadedImage:
        """Upload an init, mask or control image; InvokeAI stores it as a PNG under a new name (FACTS #9)."""
        content_type = mimetypes.guess_type(filename)[0] or "image/png"
        body = self._json(
            "POST",
            "/api/v1/images/upload",
            params={"image_category": category, "is_intermediate": str(is_intermediate).lower()},
            files={"file": (filename, data, content_type)},
            error=GenerationError,
        )
        return UploadedImage(image_name=body["image_name"], width=body["width"], height=body["height"])
