"""A fake RunPod for tests: an in-memory `RunPodAdapter`, and the same account served as RunPod's GraphQL API.

The logic tests use `FakeRunPod` directly as the adapter. `serve()` puts the same state behind a loopback HTTP
server that answers the queries and mutations the `runpod` SDK (v1.12) sends, so `RunPodSDK` can be tested
against it (point RUNPOD_API_BASE_URL at `url`): the adapter contract tests run on both and must agree.

Pods are created RUNNING with a null `runtime` (as RunPod reports them while the image is pulled) until
`boot()`; a stopped pod keeps reporting its old runtime ports, as RunPod's does. Faults: `fail()` the next calls
of an operation (transport, auth, capacity or refused), `no_capacity()` for a GPU type, `stuck()` pods that
ignore stops.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from werkzeug.wrappers import Request, Response

from backends.runpod import (
    GpuType,
    Pod,
    PodSpec,
    RunPodAuthError,
    RunPodError,
    RunPodUnreachable,
    check_pod_id,
    check_spec,
    error_from_runpod,
    pod_from,
    unknown_gpu,
)

from .fake_invokeai import LoopbackServer

API_KEY = "rpa_FAKE0TEST0KEY0abcdefghijklmnop"
NO_INSTANCES = (
    "There are no longer any instances available with the requested specifications. Please refresh and try again."
)
NO_GPUS_ON_HOST = "There are not enough free GPUs on the host machine to start this pod."
_BAD_GATEWAY = "<html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"


@dataclass
class FakeGpu:
    id: str
    name: str
    memory_gb: int
    secure_price: Decimal | None
    community_price: Decimal | None


def default_gpus() -> list[FakeGpu]:
    return [
        FakeGpu("NVIDIA GeForce RTX 4090", "RTX 4090", 24, Decimal("0.69"), Decimal("0.34")),
        FakeGpu("NVIDIA RTX A5000", "RTX A5000", 24, Decimal("0.27"), Decimal("0.16")),
        FakeGpu("NVIDIA A40", "A40", 48, Decimal("0.40"), None),
    ]


@dataclass
class FakePod:
    id: str
    # As created (through the SDK: as the fake read it back out of the mutation).
    spec: PodSpec
    cost_per_hour: Decimal
    desired_status: str = "RUNNING"
    runtime_ports: list[dict[str, Any]] = field(default_factory=list)
    booted: bool = False
    # Stop requests are accepted but the pod keeps running (a RunPod incident).
    stuck: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    def as_graphql(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "id": self.id,
            "containerDiskInGb": spec.container_disk_in_gb,
            # RunPod's REST API documents 0 for an EXITED pod; GraphQL keeps the rate, so keep it here.
            "costPerHr": float(self.cost_per_hour),
            "desiredStatus": self.desired_status,
            "dockerArgs": spec.docker_args,
            "dockerId": None,
            "env": [f"{key}={value}" for key, value in spec.env.items()],
            "gpuCount": 1,
            "imageName": spec.image,
            "lastStatusChange": f"Rented by User: {self.desired_status}",
            "machineId": "m" + self.id,
            "memoryInGb": 62,
            "name": spec.name,
            "podType": "RESERVED",
            "port": None,
            "ports": spec.ports,
            # Permanently 0 on the real API too (runpodctl #315).
            "uptimeSeconds": 0,
            "vcpuCount": 8,
            # A network volume takes the place of the pod's volume disk.
            "volumeInGb": 0 if spec.network_volume_id else spec.volume_in_gb,
            "volumeMountPath": spec.volume_mount_path,
            "runtime": {"ports": self.runtime_ports} if self.booted else None,
            "machine": {"gpuDisplayName": spec.gpu_type.removeprefix("NVIDIA ").removeprefix("GeForce ")},
        }


@dataclass
class _Fault:
    operation: str
    kind: str
    times: int
    message: str


class FakeRunPod:
    """One RunPod account. Use it as the adapter, or `serve()` it for the SDK."""

    def __init__(self, *, gpus: list[FakeGpu] | None = None, auto_boot: bool = False) -> None:
        self.gpus = {gpu.id: gpu for gpu in gpus or default_gpus()}
        self.pods: dict[str, FakePod] = {}
        self.auto_boot = auto_boot
        # Every operation as (name, argument), for tests that count calls.
        self.calls: list[tuple[str, str]] = []
        self.full: set[str] = set()
        self._faults: list[_Fault] = []
        self._lost_answers: list[str] = []
        self._ids = (f"fakepod{n:04d}" for n in itertools.count(1))
        self._lock = threading.RLock()
        self._server: LoopbackServer | None = None
        self.port = 0
        # What the GraphQL server saw: (operation, Authorization header), and each create's parsed input.
        self.requests: list[tuple[str, str]] = []
        self.create_inputs: list[dict[str, Any]] = []

    # --- controls ---

    def fail(self, operation: str, *, kind: str = "transport", times: int = 1, message: str = "") -> None:
        """The next `times` calls of `operation` (create, resume, get, list, stop, terminate, gpu, gpus) fail:
        kind "transport" (no usable answer), "auth", "capacity" or "refused" (RunPod's GraphQL error)."""
        default = {"capacity": NO_INSTANCES, "refused": "Something went wrong. Please try again later."}
        self._faults.append(_Fault(operation, kind, times, message or default.get(kind, "")))

    def lose_answer(self, operation: str) -> None:
        """The next `operation` (create or stop) is carried out, but its answer never arrives."""
        self._lost_answers.append(operation)

    def _answer(self, operation: str) -> None:
        if operation in self._lost_answers:
            self._lost_answers.remove(operation)
            raise RunPodUnreachable("RunPod did not answer usefully (ReadTimeout); the app will try again.")

    def no_capacity(self, gpu_type: str) -> None:
        self.full.add(gpu_type)

    def boot(self, pod_id: str) -> None:
        """The image is pulled and the container runs: `runtime` with its ports appears."""
        pod = self.pods[pod_id]
        pod.booted = True
        pod.runtime_ports = [
            {"ip": "100.65.0.2", "isIpPublic": False, "privatePort": 9090, "publicPort": 60123, "type": "http"}
        ]

    def stuck(self, pod_id: str, stuck: bool = True) -> None:
        self.pods[pod_id].stuck = stuck

    def add_pod(self, name: str, *, status: str = "RUNNING", gpu_type: str = "NVIDIA GeForce RTX 4090") -> FakePod:
        """A pod made outside the app (or by a run of the app that crashed before saving its id)."""
        with self._lock:
            pod = self._new_pod(
                PodSpec(
                    name=name,
                    image="img",
                    gpu_type=gpu_type,
                    cloud_type="SECURE",
                    volume_in_gb=20,
                    volume_mount_path="/workspace",
                )
            )
            pod.desired_status = status
            return pod

    def running(self) -> list[FakePod]:
        return [pod for pod in self.pods.values() if pod.desired_status == "RUNNING"]

    # --- the adapter ---

    def _enter(self, operation: str, argument: str = "") -> None:
        self.calls.append((operation, argument))
        for fault in self._faults:
            if fault.operation == operation and fault.times > 0:
                fault.times -= 1
                if fault.kind == "transport":
                    raise RunPodUnreachable("RunPod did not answer usefully (JSONDecodeError); the app will try again.")
                if fault.kind == "auth":
                    raise RunPodAuthError(
                        "RunPod refused the API key: check it on the backend page (or RUNPOD_API_KEY)."
                    )
                raise error_from_runpod(fault.message)

    def _price(self, gpu: FakeGpu, cloud_type: str) -> Decimal | None:
        prices = {"SECURE": [gpu.secure_price], "COMMUNITY": [gpu.community_price]}.get(
            cloud_type, [gpu.secure_price, gpu.community_price]
        )
        return max((price for price in prices if price), default=None)

    def _new_pod(self, spec: PodSpec) -> FakePod:
        price = self._price(self.gpus[spec.gpu_type], spec.cloud_type)
        if price is None:
            # Not offered in that cloud: as RunPod answers, no instances.
            raise error_from_runpod(NO_INSTANCES)
        pod = FakePod(id=next(self._ids), spec=spec, cost_per_hour=price)
        self.pods[pod.id] = pod
        if self.auto_boot:
            self.boot(pod.id)
        return pod

    def create_pod(self, spec: PodSpec) -> str:
        check_spec(spec)
        with self._lock:
            self._enter("create", spec.name)
            if spec.gpu_type not in self.gpus:
                raise unknown_gpu(spec.gpu_type)
            if spec.gpu_type in self.full:
                raise error_from_runpod(NO_INSTANCES)
            pod = self._new_pod(spec)
            self._answer("create")
            return pod.id

    def resume_pod(self, pod_id: str) -> None:
        check_pod_id(pod_id)
        with self._lock:
            self._enter("resume", pod_id)
            pod = self.pods.get(pod_id)
            if pod is None:
                raise error_from_runpod("Pod not found.")
            if pod.spec.gpu_type in self.full:
                raise error_from_runpod(NO_GPUS_ON_HOST)
            pod.desired_status, pod.booted, pod.runtime_ports = "RUNNING", False, []
            if self.auto_boot:
                self.boot(pod_id)

    def get_pod(self, pod_id: str) -> Pod | None:
        check_pod_id(pod_id)
        with self._lock:
            self._enter("get", pod_id)
            pod = self.pods.get(pod_id)
            return pod_from(pod.as_graphql()) if pod else None

    def list_pods(self) -> list[Pod]:
        with self._lock:
            self._enter("list")
            return [pod_from(pod.as_graphql()) for pod in self.pods.values()]

    def stop_pod(self, pod_id: str) -> None:
        check_pod_id(pod_id)
        with self._lock:
            self._enter("stop", pod_id)
            pod = self.pods.get(pod_id)
            if pod is None:
                raise error_from_runpod("Pod not found.")
            if not pod.stuck:
                # Stale runtime ports stay, as on RunPod: only desiredStatus says a pod stopped.
                pod.desired_status = "EXITED"
            self._answer("stop")

    def terminate_pod(self, pod_id: str) -> None:
        check_pod_id(pod_id)
        with self._lock:
            self._enter("terminate", pod_id)
            self.pods.pop(pod_id, None)

    def gpu_price(self, gpu_type: str, cloud_type: str) -> Decimal | None:
        with self._lock:
            self._enter("gpu", gpu_type)
            if gpu_type not in self.gpus:
                raise unknown_gpu(gpu_type)
            return self._price(self.gpus[gpu_type], cloud_type)

    def gpu_types(self) -> list[GpuType]:
        with self._lock:
            self._enter("gpus")
            return [GpuType(id=gpu.id, name=gpu.name, memory_gb=gpu.memory_gb) for gpu in self.gpus.values()]

    # --- the GraphQL server ---

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self) -> FakeRunPod:
        self._server = LoopbackServer(self._wsgi, name="fake-runpod")
        self.port = self._server.port
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self._respond(Request(environ))(environ, start_response)

    def _respond(self, request: Request) -> Response:
        if request.method != "POST" or request.path != "/graphql":
            return Response("Not Found", status=404)
        query = json.loads(request.get_data(as_text=True))["query"]
        operation, data_key, handler = _operation(query)
        self.requests.append((operation, request.headers.get("Authorization", "")))
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return Response(json.dumps({"error": "Unauthorized"}), status=401, content_type="application/json")
        try:
            data = handler(self, query)
        except RunPodUnreachable:
            return Response(_BAD_GATEWAY, status=502, content_type="text/html")
        except RunPodAuthError:
            return Response(json.dumps({"error": "Unauthorized"}), status=401, content_type="application/json")
        except RunPodError as exc:
            message = exc.details.get("runpod_message", exc.message)
            return _graphql({"errors": [{"message": message, "path": [data_key]}], "data": None})
        return _graphql({"data": {data_key: data}})

    # Each handler reads the query as the SDK wrote it and answers what the SDK selects.

    def _gql_create(self, query: str) -> dict[str, Any]:
        fields = _input_fields(query)
        self.create_inputs.append(fields)
        spec = PodSpec(
            name=fields["name"],
            image=fields["imageName"],
            gpu_type=fields["gpuTypeId"],
            cloud_type=fields["cloudType"],
            volume_in_gb=int(fields.get("volumeInGb") or 0),
            volume_mount_path=fields.get("volumeMountPath") or "/runpod-volume",
            network_volume_id=fields.get("networkVolumeId") or "",
            env=fields.get("env") or {},
            ports=fields.get("ports") or "",
            container_disk_in_gb=int(fields.get("containerDiskInGb") or 0),
            docker_args=fields.get("dockerArgs") or "",
        )
        pod = self.pods[self.create_pod(spec)]
        return {
            "id": pod.id,
            "imageName": pod.spec.image,
            "env": [],
            "machineId": "m" + pod.id,
            "machine": {"podHostId": pod.id + "-host"},
        }

    def _gql_resume(self, query: str) -> dict[str, Any]:
        pod_id = _pod_id(query)
        self.resume_pod(pod_id)
        pod = self.pods[pod_id]
        return {
            "id": pod.id,
            "desiredStatus": pod.desired_status,
            "imageName": pod.spec.image,
            "env": [],
            "machineId": "m" + pod.id,
            "machine": {"podHostId": pod.id + "-host"},
        }

    def _gql_stop(self, query: str) -> dict[str, Any]:
        pod_id = _pod_id(query)
        self.stop_pod(pod_id)
        return {"id": pod_id, "desiredStatus": self.pods[pod_id].desired_status}

    def _gql_terminate(self, query: str) -> None:
        self.terminate_pod(_pod_id(query))

    def _gql_pod(self, query: str) -> dict[str, Any] | None:
        pod_id = _pod_id(query)
        self.get_pod(pod_id)
        pod = self.pods.get(pod_id)
        return pod.as_graphql() if pod else None

    def _gql_pods(self, query: str) -> dict[str, Any]:
        self.list_pods()
        return {"pods": [pod.as_graphql() for pod in self.pods.values()]}

    def _gql_user(self, query: str) -> dict[str, Any]:
        return {
            "id": "user_fake",
            "pubKey": "",
            "networkVolumes": [{"id": "netvol1", "name": "models", "size": 100, "dataCenterId": "EU-RO-1"}],
        }

    def _gql_gpu(self, query: str) -> list[dict[str, Any]]:
        gpu_id = re.search(r'gpuTypes\(input: \{id: "([^"]*)"\}\)', query).group(1)
        with self._lock:
            self._enter("gpu", gpu_id)
        gpu = self.gpus.get(gpu_id)
        if gpu is None:
            return []
        return [
            {
                "maxGpuCount": 8,
                "id": gpu.id,
                "displayName": gpu.name,
                "manufacturer": "Nvidia",
                "memoryInGb": gpu.memory_gb,
                "cudaCores": 0,
                "secureCloud": gpu.secure_price is not None,
                "communityCloud": gpu.community_price is not None,
                "securePrice": float(gpu.secure_price) if gpu.secure_price else None,
                "communityPrice": float(gpu.community_price) if gpu.community_price else None,
                "oneMonthPrice": None,
                "threeMonthPrice": None,
                "oneWeekPrice": None,
                "communitySpotPrice": None,
                "secureSpotPrice": None,
                "lowestPrice": {"minimumBidPrice": None, "uninterruptablePrice": None},
            }
        ]

    def _gql_gpus(self, query: str) -> list[dict[str, Any]]:
        return [{"id": gpu.id, "displayName": gpu.name, "memoryInGb": gpu.memory_gb} for gpu in self.gpu_types()]


# (marker in the query, operation name, data key, handler), most specific first.
_OPERATIONS = [
    ("podFindAndDeployOnDemand(", "create", "podFindAndDeployOnDemand", FakeRunPod._gql_create),
    ("podResume(", "resume", "podResume", FakeRunPod._gql_resume),
    ("podStop(", "stop", "podStop", FakeRunPod._gql_stop),
    ("podTerminate(", "terminate", "podTerminate", FakeRunPod._gql_terminate),
    ("pod(input:", "get", "pod", FakeRunPod._gql_pod),
    ("gpuTypes(input:", "gpu", "gpuTypes", FakeRunPod._gql_gpu),
    ("gpuTypes", "gpus", "gpuTypes", FakeRunPod._gql_gpus),
    ("pods", "list", "myself", FakeRunPod._gql_pods),
    ("networkVolumes", "user", "myself", FakeRunPod._gql_user),
]


def _operation(query: str):
    for marker, operation, data_key, handler in _OPERATIONS:
        if marker in query:
            return operation, data_key, handler
    raise AssertionError(f"the fake does not know this query: {query}")


def _pod_id(query: str) -> str:
    return re.search(r'podId: "([^"]*)"', query).group(1)


_FIELD = re.compile(r'(\w+): ("[^"]*"|\[[^\]]*\]|[^,\s]+)')
_ENV = re.compile(r'\{ key: "([^"]*)", value: "([^"]*)" \}')


def _input_fields(query: str) -> dict[str, Any]:
    """The fields of a mutation's `input: {...}`, as the SDK writes them (values unescaped)."""
    body = re.search(r"input: \{(.*?)\}\s*\) \{", query, re.S).group(1)
    fields: dict[str, Any] = {}
    for name, raw in _FIELD.findall(body):
        if raw.startswith('"'):
            fields[name] = raw[1:-1]
        elif raw.startswith("["):
            fields[name] = dict(_ENV.findall(raw)) if name == "env" else raw
        elif raw in ("true", "false"):
            fields[name] = raw == "true"
        else:
            fields[name] = None if raw == "null" else raw
    return fields


def _graphql(body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status=200, content_type="application/json")
