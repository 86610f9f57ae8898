"""Which InvokeAI URLs the app accepts, and which addresses it connects to.

Nothing here contacts a refused address: the root conftest fails any test that connects beyond loopback, and
names are "resolved" by a stand-in for getaddrinfo, so not even a DNS query leaves the machine.
"""

from __future__ import annotations

import socket

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from backends import manager, selectors, services
from backends.invokeai import transport
from backends.invokeai.client import InvokeAIClient
from backends.invokeai.errors import InvokeAIAddressRefused, InvokeAIConnectionError
from backends.models import BackendSettings

LINK_LOCAL = "link-local address"


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("http://localhost:9090/", "http://localhost:9090"),
        ("  HTTP://GPU-Box:9090//  ", "http://gpu-box:9090"),
        ("http://gpu_box:9090", "http://gpu_box:9090"),
        ("https://invoke.example.org:443/", "https://invoke.example.org"),
        ("http://example.org:80/invoke/", "http://example.org/invoke"),
        ("http://192.168.1.20:9090", "http://192.168.1.20:9090"),
        ("http://10.0.0.5:9090", "http://10.0.0.5:9090"),
        ("http://0x7f000001:9090", "http://127.0.0.1:9090"),
        ("http://2130706433:9090", "http://127.0.0.1:9090"),
        ("http://127.1:9090", "http://127.0.0.1:9090"),
        ("http://[0:0:0:0:0:0:0:1]:9090", "http://[::1]:9090"),
        ("http://bücher.example", "http://xn--bcher-kva.example"),
        ("http://cafe1:9090", "http://cafe1:9090"),
    ],
)
def test_urls_are_stored_in_one_spelling(url, normal):
    assert transport.normalise_url(url) == normal
    assert transport.normalise_url(normal) == normal


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://169.254.169.254/latest/meta-data", LINK_LOCAL),
        ("http://169.254.170.2", LINK_LOCAL),
        ("http://0xa9fea9fe", "0xa9fea9fe (that is 169.254.169.254) is a link-local"),
        ("http://2852039166:9090", "2852039166 (that is 169.254.169.254) is a link-local"),
        ("http://0251.0376.0251.0376", "(that is 169.254.169.254)"),
        ("http://169.254.43518", "(that is 169.254.169.254)"),
        ("http://[::ffff:169.254.169.254]", "(that is 169.254.169.254) is a link-local"),
        ("http://[::ffff:a9fe:a9fe]:9090", "(that is 169.254.169.254) is a link-local"),
        ("http://[64:ff9b::a9fe:a9fe]", "(that is 169.254.169.254)"),
        ("http://[2002:a9fe:a9fe::]", "(that is 169.254.169.254)"),
        ("http://[fe80::1]:9090", LINK_LOCAL),
        ("http://[fe80::1%25eth0]:9090", LINK_LOCAL),
        ("http://[fd00:ec2::254]", "cloud metadata address"),
        ("http://100.100.100.200", "cloud metadata address"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
        ("http://METADATA.google.internal.", "cloud metadata service"),
        ("http://127.0.0.1:9090?", "query (?) or a fragment (#)"),
        ("http://127.0.0.1:9090#", "query (?) or a fragment (#)"),
        ("http://127.0.0.1:9090/?x=1", "query (?) or a fragment (#)"),
        ("http://admin:secret@127.0.0.1:9090", "user name or password"),
        ("http://@127.0.0.1:9090", "user name or password"),
        ("ftp://127.0.0.1", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("127.0.0.1:9090", "http:// or https://"),
        ("http://", "http:// or https://"),
        ("http://:9090", "no host"),
        ("http://127.0.0.1:0", "port"),
        ("http://127.0.0.1:70000", "port"),
        ("http://127.0.0.1:90x", "port"),
        ("http://[::1", "port"),
        ("http://127.0.0.1:9090/a b", "spaces"),
        ("http://127.0.0.1\\@evil.example", "backslashes"),
        ("http://127.0.0.1:9090/a\x00b", "control characters"),
        ("http://exa mple.org", "spaces"),
        ("http://-bad-.example", "not a valid host name"),
    ],
)
def test_urls_that_are_refused_say_why(url, says):
    with pytest.raises(transport.RefusedURL) as refused:
        transport.normalise_url(url)
    assert says in str(refused.value)


def test_link_local_urls_can_be_allowed():
    assert transport.normalise_url("http://0xa9fea9fe:9090", allow_link_local=True) == "http://169.254.169.254:9090"
    assert transport.normalise_url("http://[fe80::1]", allow_link_local=True) == "http://[fe80::1]"
    assert transport.normalise_url("http://metadata.google.internal", allow_link_local=True)


def test_a_client_is_never_made_for_a_refused_url(_loopback_only):
    says = r"0xa9fea9fe \(that is 169\.254\.169\.254\) is a link-local"
    with pytest.raises(InvokeAIAddressRefused, match=says) as caught:
        InvokeAIClient("http://0xa9fea9fe:9090", connect_timeout=1, read_timeout=1)
    assert (caught.value.status, caught.value.code) == (503, "invokeai_address_refused")
    assert _loopback_only == []


# --- the address connected to ---


class Resolver:
    """Names resolve to what the test says, in turn (the last answer repeats); no lookup leaves the machine."""

    def __init__(self) -> None:
        self.answers: dict[str, list[list[str]]] = {}
        self.lookups: list[str] = []

    def __call__(self, name: str, answers: list[list[str]]) -> None:
        self.answers[name] = answers

    def getaddrinfo(self, host, port, *args, real=socket.getaddrinfo, **kwargs):
        if host not in self.answers:
            return real(host, port, *args, **kwargs)
        self.lookups.append(host)
        answers = self.answers[host]
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
            if ":" in address
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
            for address in addresses
        ]


@pytest.fixture
def resolver(monkeypatch) -> Resolver:
    resolver = Resolver()
    monkeypatch.setattr(socket, "getaddrinfo", resolver.getaddrinfo)
    return resolver


def test_a_name_that_resolves_to_a_metadata_address_is_refused_before_connecting(resolver, _loopback_only):
    resolver("invoke.test", [["169.254.169.254"]])
    client = InvokeAIClient("http://invoke.test:9090", connect_timeout=1, read_timeout=1, retry_backoff=0)
    with pytest.raises(InvokeAIAddressRefused, match=r"invoke\.test resolves to 169\.254\.169\.254") as caught:
        client.connect()
    assert caught.value.details["address"] == "169.254.169.254"
    # Refused once, not retried: a refusal is not a connection error.
    assert resolver.lookups == ["invoke.test"]
    assert _loopback_only == []


@pytest.mark.parametrize("address", ["::ffff:169.254.169.254", "fe80::1", "fd00:ec2::254", "100.100.100.200"])
def test_every_spelling_of_a_refused_address_is_refused_at_connect_time(resolver, address, _loopback_only):
    resolver("invoke.test", [[address]])
    client = InvokeAIClient("http://invoke.test:9090", connect_timeout=1, read_timeout=1, retry_backoff=0)
    with pytest.raises(InvokeAIAddressRefused):
        client.connect()
    assert _loopback_only == []


def test_dns_rebinding_is_caught_on_the_next_connection(resolver, fake_invokeai, _loopback_only):
    # The first lookup finds the real server, a later one the metadata service: each connection is checked.
    resolver("invoke.test", [["127.0.0.1"], ["169.254.169.254"]])
    client = InvokeAIClient(f"http://invoke.test:{fake_invokeai.port}", connect_timeout=1, read_timeout=2)
    assert client.connect() == "6.14.2"
    client.close()  # the pooled connection is gone: the next request connects (and looks the name up) again
    with pytest.raises(InvokeAIAddressRefused, match=r"169\.254\.169\.254"):
        client.connect()
    assert _loopback_only == []


def test_of_several_addresses_only_allowed_ones_are_connected_to(resolver, fake_invokeai, _loopback_only):
    resolver("invoke.test", [["169.254.169.254", "127.0.0.1"]])
    client = InvokeAIClient(f"http://invoke.test:{fake_invokeai.port}", connect_timeout=1, read_timeout=2)
    assert client.connect() == "6.14.2"
    assert _loopback_only == []


def test_allowed_link_local_addresses_are_connected_to(resolver, monkeypatch):
    resolver("invoke.test", [["169.254.10.20"]])
    connected = []

    def connect(sock, address):
        connected.append(address[0])
        raise ConnectionRefusedError("a stand-in for the link-local host")  # nothing leaves the machine

    monkeypatch.setattr(socket.socket, "connect", connect)
    client = InvokeAIClient(
        "http://invoke.test:9090", connect_timeout=1, read_timeout=1, allow_link_local=True, retry_backoff=0
    )
    with pytest.raises(InvokeAIConnectionError, match="is not answering"):
        client.connect()
    assert set(connected) == {"169.254.10.20"}


# --- where URLs are accepted ---


@pytest.mark.django_db
def test_the_settings_service_normalises_and_refuses_urls():
    row = services.backend_settings_update(local_backend_url="HTTP://GPU-Box:9090/", remote_backend_url="")
    assert row.local_backend_url == "http://gpu-box:9090"
    assert BackendSettings.objects.get().local_backend_url == "http://gpu-box:9090"
    with pytest.raises(ValidationError) as caught:
        services.backend_settings_update(remote_backend_url="http://2852039166/")
    assert "link-local" in caught.value.message_dict["remote_backend_url"][0]
    assert BackendSettings.objects.get().remote_backend_url == ""


@pytest.mark.django_db
def test_the_backend_page_form_refuses_a_metadata_url(owner_client):
    response = owner_client.post(
        "/backend/settings/",
        {
            "local_backend_url": "http://169.254.169.254/latest/meta-data/",
            "runpod_cloud_type": "ALL",
            "runpod_image": "ghcr.io/invoke-ai/invokeai:latest",
            "runpod_volume_in_gb": "50",
            "runpod_volume_mount_path": "/workspace",
            "max_session_hours": "8",
        },
    )
    assert response.status_code == 400
    assert "169.254.169.254 is a link-local address" in response.content.decode()
    assert services.backend_settings_get().local_backend_url == ""


@pytest.mark.django_db
def test_a_url_stored_before_the_checks_is_refused_where_it_is_used(owner_client, _loopback_only):
    BackendSettings.objects.update_or_create(pk=1, defaults={"local_backend_url": "http://0xa9fea9fe:9090"})
    with pytest.raises(InvokeAIAddressRefused):
        manager.current_backend_url()
    status = selectors.backend_status()
    assert status.url == "" and "link-local" in status.url_problem
    assert services.connection_check() is False
    # Every page shows the badge: it says what is wrong instead of failing.
    response = owner_client.get("/backend/")
    assert response.status_code == 200 and "link-local" in response.content.decode()
    assert _loopback_only == []


@pytest.mark.django_db
def test_the_proxy_url_a_pod_id_makes_is_checked(settings):
    settings.RUNPOD_PROXY_URL_TEMPLATE = "http://169.254.169.254/{pod_id}-{port}"
    with pytest.raises(InvokeAIAddressRefused):
        manager.proxy_url("abc123")
    settings.RUNPOD_PROXY_URL_TEMPLATE = "HTTPS://{pod_id}-{port}.proxy.runpod.net/"
    assert manager.proxy_url("abc123") == "https://abc123-9090.proxy.runpod.net"


@pytest.mark.parametrize(
    ("name", "value", "check_id"),
    [
        ("INVOKEAI_LOCAL_URL", "http://169.254.169.254:9090", "gallery.E004"),
        ("INVOKEAI_LOCAL_URL", "http://localhost:9090?", "gallery.E004"),
        ("RUNPOD_PROXY_URL_TEMPLATE", "http://0xa9fea9fe/{pod_id}", "gallery.E008"),
        ("INVOKEAI_TOTAL_TIMEOUT", 5.0, "gallery.E010"),
    ],
)
def test_the_system_check_refuses_environment_urls(settings, name, value, check_id):
    setattr(settings, name, value)
    with pytest.raises(SystemCheckError, match=check_id):
        call_command("check")


def test_the_system_check_allows_link_local_when_told(settings):
    settings.INVOKEAI_LOCAL_URL = "http://169.254.10.20:9090"
    settings.INVOKEAI_ALLOW_LINK_LOCAL = True
    call_command("check")
