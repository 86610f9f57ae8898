"""Where the InvokeAI client may send requests, and how long and how much it reads back.

An InvokeAI URL is set by a person (the backend page, the environment) or made from RunPod's answers, and the
server then fetches it: it must not become a way to reach what only the server can reach. Link-local addresses
(169.254.0.0/16, fe80::/10) and the cloud metadata addresses answer with the machine's credentials on most
clouds, so they are refused unless allowed (INVOKEAI_ALLOW_LINK_LOCAL); private ranges are not, because an
InvokeAI on the LAN (192.168.x, 10.x) is the common case.

The check runs twice: on the URL where it is accepted (`normalise_url`, so a person sees the refusal at once), and
on every address a connection is made to (`GuardedAdapter`), because a name can resolve to anything, and to
something else on the next lookup (DNS rebinding). The connection goes to the very address that was checked.

Each exchange also has a total deadline (`Deadline`), which the read timeout alone is not: a server that sends a
byte every few seconds never trips it. Bodies are read with a size cap (`read_capped`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import threading
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError
from urllib3.util.connection import allowed_gai_family

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))
# Metadata services outside the link-local ranges: AWS's IPv6 endpoint, Alibaba Cloud, Oracle Cloud's legacy one.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address) for address in ("fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
# Names the clouds give their metadata services; they resolve to the addresses above inside the cloud.
METADATA_NAMES = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
    }
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# What glibc's inet_aton (and so getaddrinfo) reads as an IPv4 address: 0x7f000001, 2130706433, 127.1, 0177.0.0.1.
_NUMERIC_HOST = re.compile(r"[0-9a-fx.]+")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_PATH = re.compile(r"(?:/[A-Za-z0-9._~%!$&'()*+,;=:@-]*)*")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_EXCERPT = 200


class RefusedURL(ValueError):
    """The URL cannot be used for InvokeAI; the message says why and what to write instead."""


class AddressRefused(Exception):
    """Every address the host resolved to is refused. Not an OSError, so urllib3 does not retry it."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"{host} resolves to {address}, {reason}")
        self.host = host
        self.address = address
        self.reason = reason


def _destination(address: IPAddress) -> IPAddress:
    """Where a packet to `address` goes: the IPv4 address an IPv6 one carries (mapped, compatible, NAT64,
    6to4), else the address itself without its zone id (fe80::1%eth0), which would keep it from matching."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (int(address) >> 32 == 0 and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return ipaddress.IPv6Address(int(address))


def address_refusal(address: IPAddress) -> str | None:
    """Why the app sends nothing to `address` (unless INVOKEAI_ALLOW_LINK_LOCAL), or None if it may."""
    destination = _destination(address)
    if destination in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if any(destination in network for network in LINK_LOCAL):
        return "a link-local address (where cloud servers answer their metadata and credentials)"
    return None


def _literal(host: str) -> IPAddress | None:
    """The address a host written as a number means, in any spelling the resolver accepts; None for a name."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise RefusedURL(f"{host} is not an IPv6 address.") from None
    if not _NUMERIC_HOST.fullmatch(host) or not any(char.isdigit() for char in host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None  # a name that happens to look like a number ("cafe1"): the resolver looks it up


def _host_name(host: str) -> str:
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise RefusedURL(f"{host} is not a valid host name.") from None
    labels = ascii_host.removesuffix(".").split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        raise RefusedURL(f"{host} is not a valid host name.")
    return ascii_host


def normalise_url(value: str, *, allow_link_local: bool = False) -> str:
    """The InvokeAI base URL `value` in one canonical spelling, or `RefusedURL`.

    http or https, a host, an optional port and path; no user name or password, query or fragment (the client
    appends the API's paths). Addresses written as numbers are rewritten in their usual form (0x7f000001 is
    127.0.0.1), default ports and trailing slashes dropped, so one server has one URL.
    """
    value = value.strip()
    if any(char.isspace() or not char.isprintable() or char == "\\" for char in value):
        raise RefusedURL("An InvokeAI URL cannot contain spaces, backslashes or control characters.")
    if "?" in value or "#" in value:
        raise RefusedURL(
            "An InvokeAI URL cannot have a query (?) or a fragment (#): the app adds the API's paths to it."
        )
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise RefusedURL("Enter an http:// or https:// URL whose port is a number from 1 to 65535.") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc:
        raise RefusedURL("Enter an http:// or https:// URL, e.g. http://localhost:9090.")
    if "@" in parts.netloc:
        raise RefusedURL("An InvokeAI URL cannot carry a user name or password (INVOKEAI_EMAIL is for logins).")
    host = parts.hostname or ""
    if not host:
        raise RefusedURL("The URL has no host name or address.")
    if port == 0:
        raise RefusedURL("The port must be a number from 1 to 65535.")
    if not _PATH.fullmatch(parts.path):
        raise RefusedURL("The URL's path has characters a URL cannot carry unescaped.")
    address = _literal(host)
    if address is None:
        host = _host_name(host)
        if host.removesuffix(".") in METADATA_NAMES and not allow_link_local:
            raise RefusedURL(
                f"{host} is a cloud metadata service, not an InvokeAI: the app sends no requests there "
                "unless INVOKEAI_ALLOW_LINK_LOCAL=true."
            )
        netloc = host
    else:
        reason = address_refusal(address)
        if reason and not allow_link_local:
            destination = _destination(address)
            spelled = host if host == str(destination) else f"{host} (that is {destination})"
            raise RefusedURL(
                f"{spelled} is {reason}: the app sends no requests there unless INVOKEAI_ALLOW_LINK_LOCAL=true."
            )
        netloc = f"[{address}]" if address.version == 6 else str(address)
    if port and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def excerpt(text: str, limit: int = _EXCERPT) -> str:
    """A short, one-line piece of what another server sent, safe to put in a message or a log line."""
    flat = " ".join("".join(char if char.isprintable() else " " for char in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# --- the total deadline ---

_scope = threading.local()


class Deadline:
    """Shut the sockets of one exchange down when `seconds` have passed, wherever it is waiting (headers, body,
    a retry). Sockets register themselves while the deadline is the thread's current one."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    def __enter__(self) -> Deadline:
        self._outer = getattr(_scope, "deadline", None)
        _scope.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        with self._lock:
            # A timer that fired late must not shut a socket that has gone back to the pool.
            self._sockets.clear()
        _scope.deadline = self._outer


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


def _watch(sock: socket.socket | None) -> None:
    deadline: Deadline | None = getattr(_scope, "deadline", None)
    if deadline is not None:
        deadline.watch(sock)


# --- connections that check the address they go to ---


class _Guarded:
    """urllib3 connection mixin: resolve the host, refuse link-local and metadata addresses, connect to one that
    passed (the same address, so a second lookup cannot swap it), and register the socket with the deadline."""

    allow_link_local = False
    _dns_host: str
    port: int

    def _new_conn(self) -> socket.socket:
        name = self._dns_host
        try:
            infos = socket.getaddrinfo(name.strip("[]"), self.port, allowed_gai_family(), socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise NameResolutionError(name, self, exc) from exc  # type: ignore[arg-type]
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        allowed = addresses
        if not self.allow_link_local:
            refused = [(address, address_refusal(ipaddress.ip_address(address))) for address in addresses]
            allowed = [address for address, reason in refused if reason is None]
            if not allowed:
                address, reason = refused[0]
                raise AddressRefused(name, address, reason or "")
        error: Exception | None = None
        for address in allowed:
            self._dns_host = address
            try:
                sock: socket.socket = super()._new_conn()  # type: ignore[misc]
            except ConnectTimeoutError as exc:  # and NewConnectionError: try the name's next address
                error = exc
                continue
            finally:
                self._dns_host = name
            _watch(sock)
            return sock
        assert error is not None
        raise error

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(getattr(self, "sock", None))
        super().request(*args, **kwargs)  # type: ignore[misc]


@cache
def _pool_classes(allow_link_local: bool) -> dict[str, type[HTTPConnectionPool]]:
    attributes = {"allow_link_local": allow_link_local}
    http = type("GuardedHTTPConnection", (_Guarded, HTTPConnection), attributes)
    https = type("GuardedHTTPSConnection", (_Guarded, HTTPSConnection), attributes)
    return {
        "http": type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
        "https": type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
    }


class GuardedAdapter(HTTPAdapter):
    """requests' adapter whose connections refuse link-local and metadata addresses (see the module)."""

    def __init__(self, *, allow_link_local: bool = False, **kwargs: Any) -> None:
        self._allow_link_local = allow_link_local
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self._allow_link_local)


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


def read_capped(response: requests.Response, limit: int, *, truncate: bool = False) -> bytes:
    """The body of a streamed response, at most `limit` bytes (decoded); `BodyTooLarge` past it, unless `truncate`.

    The connection is closed rather than drained when the body is cut short: reading on would be the point.
    """
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit and not truncate:
        response.close()
        raise BodyTooLarge(limit)
    body = bytearray()
    # iter_content decodes gzip a chunk at a time, each at most chunk_size bytes once decoded (urllib3 >= 2.6).
    for chunk in response.iter_content(chunk_size=min(limit + 1, 1 << 16)):
        body += chunk
        if len(body) > limit:
            response.close()
            if truncate:
                return bytes(body[:limit])
            raise BodyTooLarge(limit)
    return bytes(body)
