"""RunPod behind a small interface of our own: `RunPodAdapter`, and `RunPodSDK`, its implementation on the
`runpod` SDK.

The SDK is a thin string-templated GraphQL client, and RunPod retires its GraphQL API in early 2027; callers
only see this module's dataclasses and errors, so moving to RunPod's REST API replaces one class.

What the SDK does that shapes this module:

* it builds GraphQL with f-strings and no escaping, so every value sent is checked against a safe character set
  first (`check_spec`); a quote in an env value would otherwise break (or rewrite) the mutation;
* `create_pod`, `stop_pod`, `resume_pod` and `terminate_pod` only read the module-global `runpod.api_key`;
* it never retries, and a proxy's HTML error page surfaces as `requests`' JSONDecodeError. Nothing here retries
  either: the pod services retry on their schedule, and a create is never repeated blindly (a lost answer may
  hide a pod that exists; reconciliation finds it by name).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, TypeVar

from gallery_project.errors import InvalidInput, Unavailable, UpstreamError

T = TypeVar("T")

INVOKEAI_PORT = 9090
RUNNING = "RUNNING"
# desiredStatus after a stop; RunPod's REST API also reports TERMINATED for a pod on its way out.
STOPPED_STATUSES = frozenset({"EXITED", "TERMINATED"})
CLOUD_TYPES = ("ALL", "SECURE", "COMMUNITY")

# The character sets values must stay within to be pasted into GraphQL unescaped.
POD_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
POD_ID = re.compile(r"[A-Za-z0-9]{1,64}")
GPU_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}")
IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}")
MOUNT_PATH = re.compile(r"/[A-Za-z0-9._/-]{0,99}")
ENV_KEY = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")
# Long enough for the pod's watchdog, which travels base64-encoded (backends/pods/watchdog.py).
ENV_VALUE = re.compile(r"[A-Za-z0-9 ._/:@=+,-]{0,8192}")
# The pod's start command: no double quote or backslash, which the SDK's GraphQL would carry unescaped.
DOCKER_ARGS = re.compile(r"[A-Za-z0-9 ._/:@=+,&$>|'-]{0,1000}")
PORTS = re.compile(r"\d{1,5}/(http|tcp)(,\d{1,5}/(http|tcp))*")

# RunPod's words for "no machine has that GPU free", as QueryError messages (create, then resume).
_CAPACITY_MESSAGES = ("no longer any instances available", "not enough free gpus")


class RunPodError(UpstreamError):
    """RunPod answered, but refused or failed the request."""

    code = "runpod_error"


class RunPodUnreachable(RunPodError, Unavailable):
    """No usable answer (timeout, refused connection, an HTML error page): the request may be tried again."""

    status = 503
    code = "runpod_unreachable"


class RunPodAuthError(RunPodError):
    """RunPod refused the API key; trying again will not help."""

    code = "runpod_auth"


class RunPodCapacityError(RunPodError, Unavailable):
    """No machine has the GPU type free right now; another GPU type, cloud or a later try may work."""

    status = 503
    code = "runpod_no_capacity"


class RunPodRefused(RunPodError):
    """RunPod refused the request as invalid (an unknown GPU type, an impossible volume...)."""

    code = "runpod_refused"


def error_from_runpod(message: str) -> RunPodError:
    """Classify the message of a GraphQL error body: capacity or refusal."""
    text = message or "no message"
    if any(words in text.lower() for words in _CAPACITY_MESSAGES):
        return RunPodCapacityError(f"RunPod: {text}", details={"runpod_message": text})
    return RunPodRefused(f"RunPod refused the request: {text}", details={"runpod_message": text})


def unknown_gpu(gpu_type: str) -> RunPodRefused:
    return RunPodRefused(
        f"RunPod has no GPU type {gpu_type!r}; pick one of its GPU type ids (e.g. 'NVIDIA GeForce RTX 4090').",
        code="runpod_unknown_gpu",
        details={"gpu_type": gpu_type},
    )


@dataclass(frozen=True)
class PodSpec:
    """A pod to create: the InvokeAI image, its web port over RunPod's HTTP proxy, and a disk for models."""

    name: str
    image: str
    gpu_type: str
    cloud_type: str
    volume_in_gb: int
    volume_mount_path: str
    network_volume_id: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    ports: str = f"{INVOKEAI_PORT}/http"
    # The writable layer of the container; models go on the volume, so this only needs room for caches.
    container_disk_in_gb: int = 30
    # The container's command instead of the image's own (empty: the image's).
    docker_args: str = ""


@dataclass(frozen=True)
class Pod:
    id: str
    name: str
    desired_status: str
    # RunPod's own price for this pod while it runs; None when it does not say (a stopped pod may say 0).
    cost_per_hour: Decimal | None
    # `runtime` is null until the image is pulled and the container runs; its ports appear after that.
    has_runtime_ports: bool
    volume_in_gb: int = 0
    gpu_name: str = ""

    @property
    def is_running(self) -> bool:
        return self.desired_status == RUNNING

    @property
    def is_stopped(self) -> bool:
        return self.desired_status in STOPPED_STATUSES


@dataclass(frozen=True)
class GpuType:
    id: str
    name: str
    memory_gb: int


class RunPodAdapter(Protocol):
    """What the app needs from RunPod. Every method raises the errors above and nothing else."""

    def create_pod(self, spec: PodSpec) -> str:
        """Create and start a pod; return its id."""

    def resume_pod(self, pod_id: str) -> None:
        """Start a stopped pod again, on the machine that holds its volume."""

    def get_pod(self, pod_id: str) -> Pod | None:
        """The pod, or None if the account has no such pod (any more)."""

    def list_pods(self) -> list[Pod]:
        """Every pod on the account, running or stopped."""

    def stop_pod(self, pod_id: str) -> None:
        """Ask RunPod to stop the pod (releasing the GPU, keeping the volume)."""

    def terminate_pod(self, pod_id: str) -> None:
        """Delete the pod and its volume disk."""

    def gpu_price(self, gpu_type: str, cloud_type: str) -> Decimal | None:
        """RunPod's current price per hour for one GPU of this type in this cloud."""

    def gpu_types(self) -> list[GpuType]:
        """The GPU types RunPod offers."""


def _check(pattern: re.Pattern[str], value: str, what: str) -> None:
    if not pattern.fullmatch(value):
        raise InvalidInput(
            f"The {what} {value!r} has characters RunPod requests cannot carry safely.",
            code="runpod_unsafe_value",
            details={"field": what},
        )


def check_pod_id(pod_id: str) -> None:
    _check(POD_ID, pod_id, "pod id")


def check_spec(spec: PodSpec) -> None:
    _check(POD_NAME, spec.name, "pod name")
    _check(IMAGE, spec.image, "image name")
    _check(GPU_TYPE, spec.gpu_type, "GPU type")
    _check(MOUNT_PATH, spec.volume_mount_path, "volume mount path")
    _check(PORTS, spec.ports, "port list")
    _check(DOCKER_ARGS, spec.docker_args, "start command")
    if spec.network_volume_id:
        _check(POD_ID, spec.network_volume_id, "network volume id")
    if spec.cloud_type not in CLOUD_TYPES:
        raise InvalidInput(f"Unknown RunPod cloud type {spec.cloud_type!r}.", code="runpod_unsafe_value")
    for key, value in spec.env.items():
        _check(ENV_KEY, key, "environment variable name")
        _check(ENV_VALUE, value, f"value of {key}")


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def pod_from(raw: dict[str, Any]) -> Pod:
    """Read a pod as the SDK's pod queries select it."""
    runtime = raw.get("runtime") or {}
    return Pod(
        id=raw["id"],
        name=raw.get("name") or "",
        desired_status=raw.get("desiredStatus") or "",
        cost_per_hour=_decimal(raw.get("costPerHr")),
        has_runtime_ports=bool(runtime.get("ports")),
        volume_in_gb=int(raw.get("volumeInGb") or 0),
        gpu_name=(raw.get("machine") or {}).get("gpuDisplayName") or "",
    )


def _unknown_gpu_or(exc: ValueError, gpu_type: str) -> Exception:
    """The SDK's ValueError for an unknown GPU type, as ours; anything else (requests' JSONDecodeError is a
    ValueError too) as it was."""
    return unknown_gpu(gpu_type) if "No GPU found" in str(exc) else exc


# The SDK keeps the key in a module global; calls from two threads must not interleave a key change.
_sdk_lock = threading.Lock()


class RunPodSDK:
    """`RunPodAdapter` on the `runpod` SDK, which finds RunPod at $RUNPOD_API_BASE_URL (read on every call)."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def __repr__(self) -> str:
        # Never the key.
        return "RunPodSDK()"

    def _call(self, operation: Callable[[Any], T]) -> T:
        # Imported here: the SDK pulls in aiohttp, boto3, paramiko and more, and only pod work needs it.
        import requests
        import runpod
        from runpod import error

        try:
            with _sdk_lock:
                runpod.api_key = self._api_key
                return operation(runpod)
        except error.AuthenticationError:
            raise RunPodAuthError(
                "RunPod refused the API key: check it on the backend page (or RUNPOD_API_KEY)."
            ) from None
        except error.QueryError as exc:
            # Not `from exc`, and never exc.query: the query carries the pod's environment values.
            raise error_from_runpod(exc.message or "") from None
        except requests.exceptions.RequestException as exc:
            raise RunPodUnreachable(
                f"RunPod did not answer usefully ({type(exc).__name__}); the app will try again.",
                details={"reason": type(exc).__name__},
            ) from None

    def create_pod(self, spec: PodSpec) -> str:
        check_spec(spec)

        def create(runpod: Any) -> str:
            try:
                created = runpod.create_pod(
                    name=spec.name,
                    image_name=spec.image,
                    gpu_type_id=spec.gpu_type,
                    cloud_type=spec.cloud_type,
                    start_ssh=False,
                    volume_in_gb=0 if spec.network_volume_id else spec.volume_in_gb,
                    container_disk_in_gb=spec.container_disk_in_gb,
                    ports=spec.ports,
                    volume_mount_path=spec.volume_mount_path,
                    env=dict(spec.env),
                    network_volume_id=spec.network_volume_id or None,
                    docker_args=spec.docker_args,
                )
            except ValueError as exc:
                raise _unknown_gpu_or(exc, spec.gpu_type) from None
            return created["id"]

        return self._call(create)

    def resume_pod(self, pod_id: str) -> None:
        check_pod_id(pod_id)
        self._call(lambda runpod: runpod.resume_pod(pod_id, gpu_count=1))

    def get_pod(self, pod_id: str) -> Pod | None:
        check_pod_id(pod_id)
        raw = self._call(lambda runpod: runpod.get_pod(pod_id))
        return pod_from(raw) if raw else None

    def list_pods(self) -> list[Pod]:
        return [pod_from(raw) for raw in self._call(lambda runpod: runpod.get_pods()) or []]

    def stop_pod(self, pod_id: str) -> None:
        check_pod_id(pod_id)
        self._call(lambda runpod: runpod.stop_pod(pod_id))

    def terminate_pod(self, pod_id: str) -> None:
        check_pod_id(pod_id)
        self._call(lambda runpod: runpod.terminate_pod(pod_id))

    def gpu_price(self, gpu_type: str, cloud_type: str) -> Decimal | None:
        _check(GPU_TYPE, gpu_type, "GPU type")

        def price(runpod: Any) -> dict[str, Any]:
            try:
                return runpod.get_gpu(gpu_type)
            except ValueError as exc:
                raise _unknown_gpu_or(exc, gpu_type) from None

        gpu = self._call(price)
        secure, community = _decimal(gpu.get("securePrice")), _decimal(gpu.get("communityPrice"))
        offered = {"SECURE": [secure], "COMMUNITY": [community], "ALL": [secure, community]}[cloud_type]
        # With "ALL" RunPod may place the pod in either cloud: assume the dearer until the pod says.
        prices = [value for value in offered if value]
        return max(prices) if prices else None

    def gpu_types(self) -> list[GpuType]:
        return [
            GpuType(id=raw["id"], name=raw.get("displayName") or raw["id"], memory_gb=int(raw.get("memoryInGb") or 0))
            for raw in self._call(lambda runpod: runpod.get_gpus())
        ]
