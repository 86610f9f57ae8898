"""A typed client for the parts of InvokeAI 6.x's REST API the app uses: health, models, queue, images.

Every method returns dataclasses (or bytes) and raises the errors of `backends.invokeai.errors`; nothing above
this module sees `requests`. Idempotent GETs are retried by urllib3 on refused connections and 5xx answers;
POSTs and PUTs are never retried, because a repeated enqueue would generate the images twice.

The server is not trusted to behave (`transport` has the rules): the base URL is normalised and checked, every
connection goes only to an allowed address, every exchange has a total deadline, every answer is read with a
size cap and checked for the shape the client reads (else `invokeai_unexpected_answer`), redirects are not
followed, and only a short excerpt of what the server said ever reaches a message.
"""

from __future__ import annotations

import functools
import json
import logging
import mimetypes
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar, cast
from urllib.parse import quote

import requests
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

from . import transport, workflows
from .errors import (
    GenerationError,
    InvokeAIAddressRefused,
    InvokeAIConnectionError,
    InvokeAIError,
    ModelInstallError,
    RetrievalError,
)

logger = logging.getLogger(__name__)

QUEUE = "/api/v1/queue/default"
# The statuses after which an item never changes again (FACTS #6). "lost" is ours: the item is gone (pruned,
# or the queue was cleared), so it will never finish either.
FINISHED_STATUSES = frozenset({"completed", "failed", "canceled"})
LOST = "lost"
# items_by_ids refuses more than 1000 ids in one request (6.14); each item carries its graph and results (tens of
# KB), so a page of this many stays far below the cap on a JSON answer.
_ITEMS_PER_REQUEST = 100
# 524 is RunPod's proxy giving up on a request held open over 100 s.
_RETRY_STATUSES = (500, 502, 503, 504, 524)
# The largest JSON answer read (a models list or a page of items is a few MB at most).
MAX_JSON_BYTES = 16 << 20
# A WebP in a 256 px box: tens of KB, about 260 KB if lossless.
MAX_THUMBNAIL_BYTES = 1 << 20
# A bool, in JSON: anything longer is no answer to "is PatchMatch there?".
_MAX_PATCHMATCH_BYTES = 1024
# Enough of an error answer to say what went wrong; the rest is not read.
_MAX_ERROR_BYTES = 64 << 10
# The library lists 26 defaults; a page of 100 holds them and a user's own, and 50 pages is more than anyone keeps.
_WORKFLOWS_PER_PAGE = 100
_MAX_WORKFLOW_PAGES = 50
# Environment proxies are not used: the address checks must see where the connection really goes.
_NO_PROXIES = {"http": None, "https": None, "all": None}

# What a model's default_settings may hold and the app keeps; anything nested is no setting it knows.
_SCALARS = (str, int, float, bool)

_P = ParamSpec("_P")
_T = TypeVar("_T")


# --- reading answers of the expected shape ---


def _typed(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # true is no number to JSON, though bool is an int to Python.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise TypeError(f"{what} is {type(value).__name__}")
    return value


def _dict(value: Any, what: str = "the answer") -> dict[str, Any]:
    return _typed(value, dict, what)  # type: ignore[no-any-return]


def _list(value: Any, what: str = "the answer") -> list[Any]:
    return _typed(value, list, what)  # type: ignore[no-any-return]


def _int(body: dict[str, Any], key: str) -> int:
    return _typed(body[key], int, key)  # type: ignore[no-any-return]


def _str(body: dict[str, Any], key: str) -> str:
    return _typed(body[key], str, key)  # type: ignore[no-any-return]


def _optional(body: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(key)
    return None if value is None else _typed(value, kind, key)


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
    prediction_type: str = ""
    trigger_phrases: tuple[str, ...] = ()
    defaults: ModelDefaults = field(default_factory=ModelDefaults)
    # InvokeAI's default_settings as they are, whatever the type (a LoRA's weights, a ControlNet's preprocessor).
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def identifier(self) -> ModelIdentifier:
        return ModelIdentifier(key=self.key, hash=self.hash, name=self.name, base=self.base, type=self.type)

    @classmethod
    def from_config(cls, config: Any) -> InvokeAIModel:
        config = _dict(config, "a model")
        settings = _dict(config.get("default_settings") or {}, "default_settings")
        return cls(
            key=_str(config, "key"),
            hash=_str(config, "hash"),
            name=_str(config, "name"),
            base=_str(config, "base"),
            type=_str(config, "type"),
            format=_optional(config, "format", str) or "",
            variant=_optional(config, "variant", str) or "",
            description=_optional(config, "description", str) or "",
            source=_optional(config, "source", str) or "",
            prediction_type=_optional(config, "prediction_type", str) or "",
            trigger_phrases=tuple(
                _typed(phrase, str, "a trigger phrase") for phrase in _optional(config, "trigger_phrases", list) or []
            ),
            settings={name: value for name, value in settings.items() if value is None or isinstance(value, _SCALARS)},
            defaults=ModelDefaults(
                width=_optional(settings, "width", int),
                height=_optional(settings, "height", int),
                steps=_optional(settings, "steps", int),
                cfg_scale=_optional(settings, "cfg_scale", (int, float)),
                scheduler=_optional(settings, "scheduler", str),
                guidance=_optional(settings, "guidance", (int, float)),
                vae=_optional(settings, "vae", str),
            ),
        )


# InvokeAI's install-job statuses that never change again.
INSTALL_FINISHED = frozenset({"completed", "error", "cancelled"})


@dataclass(frozen=True)
class InstallJob:
    """One of InvokeAI's model install jobs (`/api/v2/models/install/{id}`). Its ids count from 0 again after
    each server start, so `source` tells a job from another one that later got the same id."""

    id: int
    status: str
    source: str
    bytes: int = 0
    total_bytes: int = 0
    error_reason: str = ""
    error: str = ""
    # The installed model (`config_out`), once the job has completed; its type may be "unknown".
    model: InvokeAIModel | None = None

    @property
    def finished(self) -> bool:
        return self.status in INSTALL_FINISHED

    @classmethod
    def from_body(cls, body: Any) -> InstallJob:
        body = _dict(body, "an install job")
        config_in = _dict(body.get("config_in") or {}, "config_in")
        source = _optional(config_in, "source", str)
        if source is None:
            where = _dict(body.get("source") or {}, "source")
            source = where.get("path") or where.get("url") or where.get("repo_id") or ""
        config_out = body.get("config_out")
        return cls(
            id=_int(body, "id"),
            status=_str(body, "status"),
            source=_typed(source, str, "source"),
            bytes=_optional(body, "bytes", int) or 0,
            total_bytes=_optional(body, "total_bytes", int) or 0,
            error_reason=_optional(body, "error_reason", str) or "",
            error=_optional(body, "error", str) or "",
            model=InvokeAIModel.from_config(config_out) if config_out else None,
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


# The formats InvokeAI's image upload reads (Pillow's names). Its Pillow has no HEIF plugin: a HEIC is refused
# with 415 "Failed to read image" (seen on 6.14.2).
UPLOAD_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})


@dataclass(frozen=True)
class FieldValue:
    """One value the server substituted into an item's graph from the batch data."""

    node_path: str
    field_name: str
    value: Any


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
    error_traceback: str | None = None
    # Every image the item's nodes made, by source node id (a ControlNet preprocessor's processed image too).
    images: dict[str, str] = field(default_factory=dict)
    # Every value of the batch data this item ran with (its `field_values`).
    field_values: tuple[FieldValue, ...] = ()

    def value_of(self, node_path: str, field_name: str) -> Any:
        """The batch data's value for this node's field in this item, None if the data set none."""
        found = (v.value for v in self.field_values if (v.node_path, v.field_name) == (node_path, field_name))
        return next(found, None)

    @property
    def finished(self) -> bool:
        # An unknown status (6.14 added "waiting"; later versions may add more) is "not finished yet".
        return self.status in FINISHED_STATUSES or self.status == LOST

    @property
    def lost(self) -> bool:
        return self.status == LOST

    @property
    def failure_reason(self) -> str:
        """Why InvokeAI failed the item, in one line: the exception's type and message.

        InvokeAI's `error_message` is the exception's text, which for some failures (a model download from a
        node, EXTRAS.md) is a whole traceback; its last line is the exception that ended it.
        """
        return failure_reason(self.error_type, self.error_message, self.error_traceback)

    @property
    def traceback(self) -> str:
        """InvokeAI's full traceback of a failed item, for the step's details and the logs ("" if none)."""
        if self.error_traceback:
            return self.error_traceback[-MAX_TRACEBACK:]
        message = self.error_message or ""
        return message[-MAX_TRACEBACK:] if _TRACEBACK_START in message else ""


_TRACEBACK_START = "Traceback (most recent call last):"
# An exception's line: a (dotted) class name, a colon, its message.
_EXCEPTION_LINE = re.compile(r"([A-Za-z_][\w.]*): (.+)")
MAX_REASON = 400
# The end of a traceback is where its cause is; its start is InvokeAI's own machinery.
MAX_TRACEBACK = 20_000


def failure_reason(error_type: str | None, error_message: str | None, error_traceback: str | None = None) -> str:
    """`Type: message` from what InvokeAI says of a failure, shortened to one line of at most MAX_REASON."""
    message = (error_message or "").strip()
    kind = error_type or ""
    lines = [line.strip() for line in (message or error_traceback or "").splitlines() if line.strip()]
    if len(lines) > 1 or _TRACEBACK_START in message:
        last = lines[-1] if lines else ""
        found = _EXCEPTION_LINE.fullmatch(last)
        # The generic "Exception" InvokeAI wraps it in says less than the class in the traceback's last line.
        kind, message = (found.group(1).rsplit(".", 1)[-1], found.group(2)) if found else (kind, last)
    reason = ": ".join(part for part in (kind, message) if part)
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "…"


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
    # False while the processor is paused: pending items wait.
    is_started: bool = True


@dataclass(frozen=True)
class WorkflowSummary:
    """A workflow of the server's library, as its list shows it (without the graph)."""

    workflow_id: str
    name: str
    category: str
    description: str = ""
    tags: str = ""


@dataclass(frozen=True)
class Board:
    board_id: str
    name: str
    image_count: int = 0
    asset_count: int = 0


@dataclass(frozen=True)
class ImageRecord:
    """What InvokeAI knows of one of its images (its ImageDTO): the app reads only these."""

    image_name: str
    width: int
    height: int
    board_id: str | None = None
    category: str = "general"
    is_intermediate: bool = False
    has_workflow: bool = False


@dataclass(frozen=True)
class UploadedImage:
    image_name: str
    width: int
    height: int


def queue_item_from(raw: Any, *, output_node: str, seed_node: str = "seed") -> QueueItem:
    """Read an item of `items_by_ids` or `GET /i/{id}`: its seed and the image of `output_node` only.

    An inpaint graph saves three images per item (mask helpers too, FACTS #5): the output is the result whose
    prepared node maps back to `output_node`. The seed is `seed_node`'s value in the batch data or, for a seed
    the graph makes itself (a workflow's `rand_int`), that node's output in the session's results.
    """
    raw = _dict(raw, "a queue item")
    field_values = tuple(
        FieldValue(_str(value, "node_path"), _str(value, "field_name"), value.get("value"))
        for value in (_dict(value, "a field value") for value in _list(raw.get("field_values") or [], "field_values"))
    )
    seed = next(
        (
            _typed(value.value, int, "the seed")
            for value in field_values
            if value.node_path == seed_node and value.field_name == "value"
        ),
        None,
    )
    session = _dict(raw.get("session") or {}, "the session")
    mapping = _dict(session.get("prepared_source_mapping") or {}, "prepared_source_mapping")
    images: dict[str, str] = {}
    for exec_id, result in _dict(session.get("results") or {}, "the results").items():
        result = _dict(result, "a result")
        source = mapping.get(exec_id)
        if isinstance(source, str) and result.get("type") == "image_output" and source not in images:
            images[source] = _str(_dict(result.get("image"), "an image"), "image_name")
        elif source == seed_node and seed is None and result.get("type") == "integer_output":
            seed = _typed(result["value"], int, "the seed")
    return QueueItem(
        item_id=_int(raw, "item_id"),
        status=_str(raw, "status"),
        batch_id=_optional(raw, "batch_id", str) or "",
        seed=seed,
        image_name=images.get(output_node),
        error_type=_optional(raw, "error_type", str),
        error_message=_optional(raw, "error_message", str),
        field_values=field_values,
        error_traceback=_optional(raw, "error_traceback", str),
        images=images,
    )


def _describe_detail(body: Any) -> str:
    """Turn FastAPI's error body (`{"detail": "..."}` or `{"detail": [{"loc", "msg"}]}`) into a short sentence."""
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, list) and detail:
        parts = []
        for error in detail[:3]:
            if not isinstance(error, dict):
                parts.append(str(error))
                continue
            # "body", "batch" and the node type pydantic adds to union members say nothing to a person.
            loc = [str(part) for part in error.get("loc") or [] if part not in ("body", "batch", "query", "path")]
            parts.append(f"{'.'.join(loc)}: {error.get('msg', '')}" if loc else str(error.get("msg", "")))
        return transport.excerpt("; ".join(parts))
    return transport.excerpt(str(detail)) if detail else "no details"


def checked_base_url(url: str, *, allow_link_local: bool) -> str:
    """`url` in its normal form, or `InvokeAIAddressRefused` saying why it cannot be an InvokeAI's URL."""
    try:
        return transport.normalise_url(url, allow_link_local=allow_link_local)
    except transport.RefusedURL as exc:
        raise InvokeAIAddressRefused(
            f"The InvokeAI URL {transport.excerpt(url, 120)} cannot be used: {exc}", details={"url": url}
        ) from None


def _answers(method: Callable[_P, _T]) -> Callable[_P, _T]:
    """A method that reads an answer: one without the fields it reads is InvokeAI's fault, not a crash here."""

    @functools.wraps(method)
    def reading(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        try:
            return method(*args, **kwargs)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            client = args[0]
            assert isinstance(client, InvokeAIClient)
            what = f"an answer without what the app reads ({transport.excerpt(str(exc), 80)})"
            raise client._unexpected(what) from exc

    return reading


def _json_or_text(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return body.decode("utf-8", "replace")


@dataclass(frozen=True)
class _Answer:
    status: int
    content_type: str
    body: bytes
    location: str = ""


class InvokeAIClient:
    """One InvokeAI server. Worth keeping: it holds a connection pool and, in multiuser mode, a token."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        total_timeout: float | None = None,
        max_image_bytes: int = 64 << 20,
        allow_link_local: bool = False,
        email: str = "",
        password: str = "",
        retry_backoff: float = 0.3,
    ) -> None:
        self.base_url = checked_base_url(base_url, allow_link_local=allow_link_local)
        self.timeout = (connect_timeout, read_timeout)
        # The longest one exchange may take, answer included; a GET's retries count in it.
        self.total_timeout = total_timeout or 4 * (connect_timeout + read_timeout)
        self.max_image_bytes = max_image_bytes
        self._email = email
        self._password = password
        self._token = ""
        self._last_request = ("", "")
        self._session = requests.Session()
        retry = Retry(
            total=3,
            connect=3,
            # A server too slow for the read timeout is rarely faster on a second try; once is enough.
            read=1,
            status=3,
            redirect=0,
            backoff_factor=retry_backoff,
            status_forcelist=_RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD"}),
            raise_on_status=False,
        )
        adapter = transport.GuardedAdapter(allow_link_local=allow_link_local, max_retries=retry)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)

    def __repr__(self) -> str:
        return f"InvokeAIClient({self.base_url!r})"

    def close(self) -> None:
        self._session.close()

    # --- transport ---

    def _send(
        self,
        method: str,
        path: str,
        *,
        expect: str = "application/json",
        limit: int = MAX_JSON_BYTES,
        error: type[InvokeAIError] = InvokeAIError,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> _Answer:
        """One exchange, within the total deadline: its status and, if it is the answer expected, its body
        (at most `limit` bytes). Redirects are answers too: the client does not follow them."""
        self._last_request = (method, path)
        headers = dict(headers or {})
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            with transport.Deadline(self.total_timeout) as deadline:
                try:
                    answer = self._exchange(method, path, headers, expect=expect, limit=limit, **kwargs)
                except requests.exceptions.RequestException as exc:
                    if deadline.expired:
                        raise self._too_slow(method, path, total=True) from exc
                    raise self._connection_error(method, path, exc) from exc
                if deadline.expired:
                    # Cut off mid-headers, http.client takes what came as the whole answer.
                    raise self._too_slow(method, path, total=True)
                if answer.status >= 500:
                    # After an unhandled exception InvokeAI may reset the next request on the same connection
                    # (EXTRAS gotcha 2); a POST is not retried, so it must go out on a fresh one.
                    for adapter in self._session.adapters.values():
                        adapter.close()
                return answer
        except transport.AddressRefused as exc:
            raise InvokeAIAddressRefused(
                f"InvokeAI at {self.base_url} cannot be used: {exc}, where the app sends no requests "
                "unless INVOKEAI_ALLOW_LINK_LOCAL=true.",
                details={"url": self.base_url, "address": exc.address},
            ) from None
        except transport.BodyTooLarge as exc:
            raise error(
                f"InvokeAI at {self.base_url} answered {method} {path} with more than {exc.limit // 1024} KiB; "
                "the app reads no more than that.",
                code="invokeai_answer_too_large",
                details={"url": self.base_url, "path": path, "limit": exc.limit},
            ) from None

    def _exchange(
        self, method: str, path: str, headers: dict[str, str], *, expect: str, limit: int, **kwargs: Any
    ) -> _Answer:
        with self._session.request(
            method,
            self.base_url + path,
            headers=headers,
            timeout=self.timeout,
            stream=True,
            allow_redirects=False,
            # requests drops a scheme whose proxy is None (so the environment's is not used); its stubs
            # only know str values.
            proxies=cast("dict[str, str]", _NO_PROXIES),
            **kwargs,
        ) as response:
            # 6.13+ slides the login's expiry forward on each change it accepts (FACTS #14).
            if refreshed := response.headers.get("X-Refreshed-Token"):
                self._token = refreshed
            content_type = response.headers.get("Content-Type", "")
            status = response.status_code
            if status >= 400:
                body = transport.read_capped(response, _MAX_ERROR_BYTES, truncate=True)
            elif 200 <= status < 300 and content_type.startswith(expect):
                body = transport.read_capped(response, limit)
            else:
                body = b""
            return _Answer(status, content_type, body, response.headers.get("Location", ""))

    def _connection_error(self, method: str, path: str, exc: Exception) -> InvokeAIConnectionError:
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return self._not_answering(exc)
        if isinstance(exc, requests.exceptions.Timeout):
            return self._too_slow(method, path)
        # A GET whose read retries ran out arrives as a ConnectionError, its ReadTimeoutError in a MaxRetryError;
        # a body that stopped coming, as a ConnectionError with the ReadTimeoutError itself.
        reason = exc.args[0] if exc.args else None
        if isinstance(reason, ReadTimeoutError) or isinstance(getattr(reason, "reason", None), ReadTimeoutError):
            return self._too_slow(method, path)
        return self._not_answering(exc)

    def _too_slow(self, method: str, path: str, *, total: bool = False) -> InvokeAIConnectionError:
        if total:
            message = (
                f"InvokeAI at {self.base_url} did not finish answering {method} {path} within "
                f"{self.total_timeout:g} s (INVOKEAI_TOTAL_TIMEOUT)."
            )
        else:
            message = (
                f"InvokeAI at {self.base_url} did not answer {method} {path} within {self.timeout[1]:g} s; "
                "it may be busy loading a model. Try again, or raise INVOKEAI_READ_TIMEOUT."
            )
        return InvokeAIConnectionError(message, details={"url": self.base_url, "path": path})

    def _not_answering(self, exc: Exception) -> InvokeAIConnectionError:
        return InvokeAIConnectionError(
            # Not naming a setting: this address may come from the backend page, the environment or a pod.
            f"InvokeAI at {self.base_url} is not answering. Check that it is running at that address "
            "(InvokeAI moves to port 9091 when 9090 is taken), or choose another InvokeAI on the backend page.",
            details={"url": self.base_url, "reason": type(exc).__name__},
        )

    def _unexpected(self, what: str) -> InvokeAIError:
        method, path = self._last_request
        return InvokeAIError(
            f"InvokeAI at {self.base_url} answered {method} {path} with {what}: is this an InvokeAI 6.x server?",
            code="invokeai_unexpected_answer",
            details={"url": self.base_url, "path": path},
        )

    def _request(
        self,
        method: str,
        path: str,
        *,
        error: type[InvokeAIError] = InvokeAIError,
        allow_404: bool = False,
        expect: str = "application/json",
        limit: int = MAX_JSON_BYTES,
        **kwargs: Any,
    ) -> bytes | None:
        """The body of a successful answer of type `expect`; None for a 404 if allowed."""
        answer = self._send(method, path, expect=expect, limit=limit, error=error, **kwargs)
        if answer.status == 401 and self._email and path != "/api/v1/auth/login":
            self._login()
            answer = self._send(method, path, expect=expect, limit=limit, error=error, **kwargs)
        if answer.status == 404 and allow_404:
            return None
        if answer.status == 401:
            raise InvokeAIError(
                f"InvokeAI at {self.base_url} runs in multiuser mode and needs a login: "
                "set INVOKEAI_EMAIL and INVOKEAI_PASSWORD.",
                code="invokeai_login_required",
                details={"url": self.base_url},
            )
        if answer.status >= 400:
            raise error(
                f"InvokeAI at {self.base_url} refused {method} {path} ({answer.status}): "
                f"{_describe_detail(_json_or_text(answer.body))}",
                details={"url": self.base_url, "path": path, "status": answer.status},
            )
        if 300 <= answer.status < 400:
            # InvokeAI redirects none of the paths the client uses: the URL points at something else (a proxy's
            # login page, an http-to-https upgrade), and following it could lead anywhere.
            raise InvokeAIError(
                f"InvokeAI at {self.base_url} answered {method} {path} with a redirect "
                f"({answer.status}) to {transport.excerpt(answer.location, 120) or 'nowhere'}; redirects are not "
                "followed: set the InvokeAI URL to the address InvokeAI itself answers at.",
                code="invokeai_redirected",
                details={"url": self.base_url, "path": path, "status": answer.status},
            )
        if not answer.content_type.startswith(expect):
            # Since 6.12 an unknown GET path answers 200 with the web UI's HTML (FACTS #10).
            raise self._unexpected(f"{transport.excerpt(answer.content_type, 60) or 'no content type'}, not {expect}")
        return answer.body

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        body = self._request(method, path, **kwargs)
        assert body is not None  # only allow_404 makes None, and those callers decode themselves
        return self._decode(body)

    def _decode(self, body: bytes) -> Any:
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            # Truncated, not JSON, or nested deeper than the parser goes.
            raise self._unexpected("something that is not JSON") from None

    def _login(self) -> None:
        answer = self._send(
            "POST",
            "/api/v1/auth/login",
            json={"email": self._email, "password": self._password, "remember_me": True},
        )
        if answer.status == 403:
            # Single-user mode refuses logins and needs none.
            self._email = ""
            return
        if answer.status != 200:
            raise InvokeAIError(
                f"InvokeAI at {self.base_url} refused the login of {self._email}: "
                f"{_describe_detail(_json_or_text(answer.body))}. "
                "Check INVOKEAI_EMAIL and INVOKEAI_PASSWORD.",
                code="invokeai_login_refused",
                details={"url": self.base_url},
            )
        try:
            self._token = _str(_dict(self._decode(answer.body)), "token")
        except (KeyError, TypeError):
            raise self._unexpected("a login answer without a token") from None

    # --- server ---

    @_answers
    def connect(self) -> str:
        """Check that InvokeAI answers (and log in if it runs in multiuser mode); return its version."""
        version = _str(_dict(self._json("GET", "/api/v1/app/version")), "version")
        if self._email and not self._token:
            self._login()
        return version

    def patchmatch_status(self) -> bool | None:
        """Whether the server can run `infill_patchmatch` (its pypatchmatch is built); None when it does not say:
        a server before 6.9 has no such route, and an answer that is no bool, too big or too late says nothing.

        Never raises: not knowing only means PatchMatch is not offered.
        """
        path = "/api/v1/app/patchmatch_status"
        try:
            body = self._request("GET", path, allow_404=True, limit=_MAX_PATCHMATCH_BYTES)
            answer = None if body is None else self._decode(body)
        except InvokeAIError as exc:
            logger.info("InvokeAI at %s did not say whether it has PatchMatch: %s", self.base_url, exc.message)
            return None
        if not isinstance(answer, bool):
            logger.info(
                "InvokeAI at %s did not say whether it has PatchMatch: %s",
                self.base_url,
                "no such route" if body is None else f"{type(answer).__name__}, not a bool",
            )
            return None
        return answer

    @_answers
    def socket_token(self) -> str:
        """The token for InvokeAI's Socket.IO connection: "" in single-user mode, else a fresh login's.

        A fresh one each time, because the socket is refused while a stale token looks valid to this client.
        """
        if not self._email:
            return ""
        self._login()
        return self._token

    @_answers
    def queue_status(self) -> QueueStatus:
        body = _dict(self._json("GET", f"{QUEUE}/status"))
        queue = _dict(body["queue"], "queue")
        return QueueStatus(
            pending=_int(queue, "pending"),
            in_progress=_int(queue, "in_progress"),
            completed=_int(queue, "completed"),
            failed=_int(queue, "failed"),
            canceled=_int(queue, "canceled"),
            total=_int(queue, "total"),
            is_processing=_typed(_dict(body["processor"], "processor")["is_processing"], bool, "is_processing"),
            is_started=_typed(_dict(body["processor"], "processor").get("is_started", True), bool, "is_started"),
        )

    @_answers
    def node_templates(self) -> dict[str, workflows.NodeTemplate]:
        """The node types the server has and their inputs, from its OpenAPI schema."""
        return workflows.templates_from_openapi(_dict(self._json("GET", "/openapi.json")))

    @_answers
    def processor_set(self, *, started: bool) -> bool:
        """Pause or resume InvokeAI's queue processor (an admin's call in multiuser mode); return is_started."""
        action = "resume" if started else "pause"
        body = _dict(self._json("PUT", f"{QUEUE}/processor/{action}"))
        return bool(_typed(body.get("is_started"), bool, "is_started"))

    # --- models ---

    @_answers
    def list_models(self, *, model_type: str | None = None, bases: Iterable[str] = ()) -> list[InvokeAIModel]:
        params: dict[str, Any] = {"base_models": list(bases)}
        if model_type:
            params["model_type"] = model_type
        body = _dict(self._json("GET", "/api/v2/models/", params=params))
        return [InvokeAIModel.from_config(config) for config in _list(body["models"], "models")]

    @_answers
    def get_model(self, key: str) -> InvokeAIModel | None:
        body = self._request("GET", f"/api/v2/models/i/{key}", allow_404=True)
        return None if body is None else InvokeAIModel.from_config(self._decode(body))

    @_answers
    def get_model_by_hash(self, hash: str) -> InvokeAIModel | None:
        """Find a model again after a reinstall gave it a new key (FACTS #2)."""
        body = self._request("GET", "/api/v2/models/get_by_hash", params={"hash": hash}, allow_404=True)
        return None if body is None else InvokeAIModel.from_config(self._decode(body))

    @_answers
    def install_model(self, source: str, *, name: str = "") -> InstallJob:
        """Start installing a model from a path on InvokeAI's host (registered where it is), a URL or a Hugging
        Face repo id. InvokeAI answers at once; the job then runs in its background (`install_job`)."""
        path = "/api/v2/models/install"
        # The body is required, even empty (422 without one).
        answer = self._send(
            "POST",
            path,
            params={"source": source, "inplace": "true"},
            json={"name": name} if name else {},
            error=ModelInstallError,
        )
        if answer.status == 409:
            raise ModelInstallError(
                f"InvokeAI at {self.base_url} has nothing it can install at {transport.excerpt(source, 200)}: "
                "no such file or folder on its host, and no URL or Hugging Face repo id either "
                f"({_describe_detail(_json_or_text(answer.body))}).",
                code="model_source_not_found",
                details={"source": source},
            )
        if answer.status >= 500 and not source.startswith(("/", "http://", "https://")):
            # A source that is neither a path nor a URL is taken for a Hugging Face repo id; offline, or for a
            # repo that does not exist, InvokeAI fails with a bare 500.
            raise ModelInstallError(
                f"InvokeAI at {self.base_url} could not reach the Hugging Face repo "
                f"'{transport.excerpt(source, 200)}': it may have no internet access, or no such repo exists. "
                "A local file needs its absolute path on InvokeAI's host.",
                code="model_source_unreachable",
                details={"source": source},
            )
        if 200 <= answer.status < 300 and not answer.content_type.startswith("application/json"):
            raise self._unexpected(f"{transport.excerpt(answer.content_type, 60) or 'no content type'}, not JSON")
        if answer.status >= 300:
            raise ModelInstallError(
                f"InvokeAI at {self.base_url} refused to install {transport.excerpt(source, 200)} "
                f"({answer.status}): {_describe_detail(_json_or_text(answer.body))}",
                details={"source": source, "status": answer.status},
            )
        return InstallJob.from_body(self._decode(answer.body))

    @_answers
    def install_job(self, job_id: int) -> InstallJob | None:
        """The job, or None if InvokeAI does not know it (pruned, or the server restarted)."""
        body = self._request("GET", f"/api/v2/models/install/{job_id}", allow_404=True)
        return None if body is None else InstallJob.from_body(self._decode(body))

    def delete_model(self, key: str) -> bool:
        """Uninstall a model (InvokeAI deletes its files only if they are inside its own models folder); False if
        it was not installed."""
        path = f"/api/v2/models/i/{key}"
        # Every 204 endpoint answers 500 to a client accepting gzip, after doing the work (EXTRAS gotcha 1).
        answer = self._send("DELETE", path, headers={"Accept-Encoding": "identity"}, error=ModelInstallError)
        if answer.status == 404:
            return False
        if answer.status >= 500 and self.get_model(key) is None:
            return True
        if answer.status >= 300:
            raise ModelInstallError(
                f"InvokeAI at {self.base_url} refused to uninstall model {key} ({answer.status}): "
                f"{_describe_detail(_json_or_text(answer.body))}",
                details={"key": key, "status": answer.status},
            )
        return True

    # --- queue ---

    @_answers
    def enqueue(self, body: dict[str, Any]) -> EnqueuedBatch:
        """Enqueue one batch (an `enqueue_batch` body, as `graphs.build_batch` makes)."""
        result = _dict(self._json("POST", f"{QUEUE}/enqueue_batch", json=body, error=GenerationError))
        requested, enqueued = _int(result, "requested"), _int(result, "enqueued")
        batch_id = _str(_dict(result["batch"], "batch"), "batch_id")
        item_ids = tuple(sorted(_typed(item_id, int, "an item id") for item_id in _list(result["item_ids"])))
        if not enqueued:
            raise GenerationError(
                f"InvokeAI at {self.base_url} accepted none of the {requested} images: "
                "its queue is full. Wait for it to drain, or cancel what is waiting.",
                code="invokeai_queue_full",
            )
        if enqueued < requested:
            logger.warning("InvokeAI queued %s of %s items of batch %s (queue full)", enqueued, requested, batch_id)
        return EnqueuedBatch(batch_id=batch_id, item_ids=item_ids, requested=requested, enqueued=enqueued)

    @_answers
    def batch_status(self, batch_id: str) -> BatchStatus:
        body = _dict(self._json("GET", f"{QUEUE}/b/{batch_id}/status"))
        return BatchStatus(
            batch_id=batch_id,
            pending=_int(body, "pending"),
            in_progress=_int(body, "in_progress"),
            waiting=_optional(body, "waiting", int) or 0,
            completed=_int(body, "completed"),
            failed=_int(body, "failed"),
            canceled=_int(body, "canceled"),
            total=_int(body, "total"),
        )

    @_answers
    def queue_items(self, item_ids: Sequence[int], *, output_node: str, seed_node: str = "seed") -> list[QueueItem]:
        """The items, in the order asked; an item the server no longer has comes back with status "lost"."""
        found: dict[int, QueueItem] = {}
        for start in range(0, len(item_ids), _ITEMS_PER_REQUEST):
            chunk = list(item_ids[start : start + _ITEMS_PER_REQUEST])
            for raw in _list(self._json("POST", f"{QUEUE}/items_by_ids", json={"item_ids": chunk})):
                item = queue_item_from(raw, output_node=output_node, seed_node=seed_node)
                found[item.item_id] = item
        return [found.get(item_id) or QueueItem(item_id=item_id, status=LOST) for item_id in item_ids]

    def batch_progress(self, batch: EnqueuedBatch, *, output_node: str) -> BatchProgress:
        """The batch's counts, then its items: what a follower needs to store finished images."""
        return BatchProgress(
            status=self.batch_status(batch.batch_id),
            items=self.queue_items(batch.item_ids, output_node=output_node),
        )

    @_answers
    def cancel_batches(self, batch_ids: Sequence[str]) -> int:
        """Cancel every pending or running item of these batches; return how many were canceled."""
        body = _dict(self._json("PUT", f"{QUEUE}/cancel_by_batch_ids", json={"batch_ids": list(batch_ids)}))
        return _int(body, "canceled")

    # --- workflows ---

    @_answers
    def list_workflows(self, *, categories: Iterable[str] = ("default", "user")) -> list[WorkflowSummary]:
        """Every workflow of the server's library in `categories`, by name."""
        found: list[WorkflowSummary] = []
        page, pages = 0, 1
        while page < pages and page < _MAX_WORKFLOW_PAGES:
            params: dict[str, Any] = {
                "categories": list(categories),
                "page": page,
                "per_page": _WORKFLOWS_PER_PAGE,
                "order_by": "name",
                "direction": "ASC",
            }
            body = _dict(self._json("GET", "/api/v1/workflows/", params=params))
            for raw in _list(body["items"], "items"):
                raw = _dict(raw, "a workflow")
                found.append(
                    WorkflowSummary(
                        workflow_id=_str(raw, "workflow_id"),
                        name=_str(raw, "name"),
                        category=_str(raw, "category"),
                        description=_optional(raw, "description", str) or "",
                        tags=_optional(raw, "tags", str) or "",
                    )
                )
            pages = _int(body, "pages")
            page += 1
        return found

    @_answers
    def get_workflow(self, workflow_id: str) -> dict[str, Any] | None:
        """The workflow JSON of the library's `workflow_id` (None if the server has no such workflow)."""
        body = self._request("GET", f"/api/v1/workflows/i/{quote(workflow_id, safe='')}", allow_404=True)
        if body is None:
            return None
        return _dict(_dict(self._decode(body))["workflow"], "workflow")

    # --- boards ---

    @_answers
    def list_boards(self) -> list[Board]:
        """Every board (without `all=true` the server answers 400); "none", the uncategorized images, is no board."""
        return [
            Board(
                board_id=_str(raw, "board_id"),
                name=_str(raw, "board_name"),
                image_count=_optional(raw, "image_count", int) or 0,
                asset_count=_optional(raw, "asset_count", int) or 0,
            )
            for raw in (
                _dict(item, "a board") for item in _list(self._json("GET", "/api/v1/boards/", params={"all": "true"}))
            )
        ]

    @_answers
    def board_image_names(self, board_id: str) -> list[str]:
        """The names of a board's images (board "none": the images on no board)."""
        body = self._request("GET", f"/api/v1/boards/{quote(board_id, safe='')}/image_names", allow_404=True)
        if body is None:
            raise InvokeAIError(
                f"InvokeAI at {self.base_url} has no board {board_id}.",
                code="board_not_found",
                details={"board_id": board_id},
            )
        return [_typed(name, str, "an image name") for name in _list(self._decode(body))]

    @_answers
    def create_board(self, name: str) -> Board:
        raw = _dict(self._json("POST", "/api/v1/boards/", params={"board_name": name}))
        return Board(board_id=_str(raw, "board_id"), name=_str(raw, "board_name"))

    @_answers
    def delete_board(self, board_id: str) -> None:
        """Delete a board; its images stay, on no board."""
        self._json("DELETE", f"/api/v1/boards/{quote(board_id, safe='')}", params={"include_images": "false"})

    @_answers
    def add_image_to_board(self, *, board_id: str, image_name: str) -> bool:
        """Move an image to a board (PATCHing an image's board_id is ignored by InvokeAI); False if it refused."""
        body = _dict(self._json("POST", "/api/v1/board_images/", json={"board_id": board_id, "image_name": image_name}))
        return image_name in _list(body.get("added_images") or [], "added_images")

    # --- images ---

    @_answers
    def image_record(self, name: str) -> ImageRecord | None:
        """The image's record, or None if the server does not have it."""
        body = self._request("GET", f"/api/v1/images/i/{quote(name, safe='')}", allow_404=True)
        if body is None:
            return None
        raw = _dict(self._decode(body))
        return ImageRecord(
            image_name=_str(raw, "image_name"),
            width=_int(raw, "width"),
            height=_int(raw, "height"),
            board_id=_optional(raw, "board_id", str),
            category=_optional(raw, "image_category", str) or "general",
            is_intermediate=bool(_optional(raw, "is_intermediate", bool)),
            has_workflow=bool(_optional(raw, "has_workflow", bool)),
        )

    @_answers
    def image_workflow(self, name: str) -> dict[str, Any] | None:
        """The workflow embedded in an image (a batch from the workflow editor carries it), or None."""
        body = _dict(self._decode(self._image_part(name, "workflow", "application/json", MAX_JSON_BYTES)))
        text = body.get("workflow")
        if text is None:
            return None
        # Unlike the library's, this answer holds the workflow as JSON text.
        return _dict(json.loads(_typed(text, str, "workflow")), "workflow")

    def _image_part(self, name: str, part: str, content_type: str, limit: int) -> bytes:
        body = self._request(
            "GET",
            f"/api/v1/images/i/{name}/{part}",
            allow_404=True,
            expect=content_type,
            error=RetrievalError,
            limit=limit,
        )
        if body is None:
            raise RetrievalError(
                f"InvokeAI at {self.base_url} no longer has image {name}.",
                code="image_missing",
                details={"image_name": name},
            )
        return body

    def image(self, name: str) -> bytes:
        """The full image, PNG, with InvokeAI's metadata in its text chunks; at most `max_image_bytes`."""
        return self._image_part(name, "full", "image/png", self.max_image_bytes)

    def thumbnail(self, name: str) -> bytes:
        """InvokeAI's WebP thumbnail (fits a 256 px box)."""
        return self._image_part(name, "thumbnail", "image/webp", MAX_THUMBNAIL_BYTES)

    @_answers
    def image_metadata(self, name: str) -> dict[str, Any] | None:
        """The image's core_metadata (prompt, seed, model, steps...), or None if it has none."""
        body = self._decode(self._image_part(name, "metadata", "application/json", MAX_JSON_BYTES))
        return None if body is None else _dict(body)

    @_answers
    def upload_image(
        self, *, data: bytes, filename: str, category: str, is_intermediate: bool = False
    ) -> UploadedImage:
        """Upload an init, mask or control image; InvokeAI stores it as a PNG under a new name (FACTS #9)."""
        content_type = mimetypes.guess_type(filename)[0] or "image/png"
        body = _dict(
            self._json(
                "POST",
                "/api/v1/images/upload",
                params={"image_category": category, "is_intermediate": str(is_intermediate).lower()},
                files={"file": (filename, data, content_type)},
                error=GenerationError,
            )
        )
        return UploadedImage(
            image_name=_str(body, "image_name"), width=_int(body, "width"), height=_int(body, "height")
        )
