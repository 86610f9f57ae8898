"""A local S3 for the tests: moto's server on 127.0.0.1, and a proxy in front of it that misbehaves on demand.

`LocalS3` runs moto in server mode (a real HTTP endpoint, so the app's boto3 and django-storages talk to it as to
any S3-compatible store) on a free loopback port. `FaultyS3` forwards to it, and answers chosen requests with a
500 or holds them past the client's timeout, without passing them on (so the object never lands).
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import requests
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

ACCESS_KEY = "testing"
SECRET_KEY = "testing"  # noqa: S105 (moto takes any)
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalS3:
    """moto's S3 on http://127.0.0.1:<free port>."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        # Its werkzeug logs every request; a failing test's captured log is for the app's own lines.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    def start(self) -> LocalS3:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self) -> str:
        name = f"s3-test-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(entry["Key"] for page in pages for entry in page.get("Contents", ()))


def bucket_storage(endpoint_url: str, bucket: str, *, timeout: float = 5) -> dict:
    """The STORAGES["media"] entry for `bucket` at `endpoint_url`, as the settings make it from AWS_*."""
    from gallery_project.settings import media_storage

    return media_storage(
        bucket,
        endpoint_url=endpoint_url,
        region=REGION,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        timeout=timeout,
    )


@dataclass
class Fault:
    method: str
    key: re.Pattern[str]
    status: int = 500
    # Hold the request this long (past the client's timeout) instead of answering it.
    stall: float = 0.0
    hits: int = 0


class FaultyS3:
    """A proxy to a LocalS3 on its own loopback port; `fail()` and `stall()` pick the requests it spoils."""

    def __init__(self, upstream: LocalS3) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", self.port, self._app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FaultyS3:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    def fail(self, method: str, key: str, status: int = 500) -> Fault:
        fault = Fault(method=method, key=re.compile(key), status=status)
        self.faults.append(fault)
        return fault

    def stall(self, method: str, key: str, seconds: float) -> Fault:
        fault = Fault(method=method, key=re.compile(key), stall=seconds)
        self.faults.append(fault)
        return fault

    def _fault_for(self, request: Request) -> Fault | None:
        for fault in self.faults:
            if request.method == fault.method and fault.key.search(request.path):
                with self._lock:
                    fault.hits += 1
                return fault
        return None

    @Request.application  # type: ignore[arg-type]
    def _app(self, request: Request) -> Response:
        body = request.get_data()
        fault = self._fault_for(request)
        if fault is not None:
            if fault.stall:
                time.sleep(fault.stall)
            return Response(
                b"<Error><Code>InternalError</Code><Message>injected</Message></Error>",
                status=fault.status,
                content_type="application/xml",
            )
        headers = {name: value for name, value in request.headers.items() if name.lower() != "host"}
        answer = requests.request(
            request.method,
            self.upstream.url + request.full_path.rstrip("?"),
            data=body,
            headers=headers,
            timeout=30,
            allow_redirects=False,
        )
        excluded = {"content-encoding", "transfer-encoding", "connection", "content-length"}
        return Response(
            answer.content,
            status=answer.status_code,
            headers=[(name, value) for name, value in answer.headers.items() if name.lower() not in excluded],
        )
