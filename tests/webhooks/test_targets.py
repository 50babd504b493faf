"""Webhooks cannot be aimed at internal addresses (SSRF) unless private targets are allowed."""

import ipaddress

import pytest
from sqlalchemy import text

from app.config import get_settings
from app.webhooks import targets
from app.webhooks.worker import Worker, WorkerConfig
from tests.webhooks.conftest import register, rows
from tests.webhooks.test_worker import settle_many

NOT_PUBLIC = ["localhost", "api.localhost", "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1",
              "169.254.169.254", "100.64.1.1", "0.0.0.0", "255.255.255.255", "224.0.0.1",
              "::1", "[::1]", "::ffff:127.0.0.1", "fd00::1", "fe80::1"]
PUBLIC = ["8.8.8.8", "2606:4700::1111", "hooks.example.com"]

# IPv6 addresses that carry an IPv4 address to a translator or tunnel: judged by that IPv4 address.
EMBEDDING_NOT_PUBLIC = [
    "64:ff9b::7f00:1",  # NAT64 (RFC 6052) of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b::10.0.0.1",
    "64:ff9b:1::808:808",  # the local-use NAT64 prefix (RFC 8215) is never public, whatever it carries
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2002:c0a8:101:1::1",  # 6to4 of 192.168.1.1
    "::127.0.0.1",  # IPv4-compatible
    "::10.0.0.1",
    "::169.254.169.254",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:0:127.0.0.1",  # IPv4-translated (SIIT)
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo: client 127.0.0.1 (last 32 bits inverted)
    "2001:0:a00:1:8000:63bf:f7f7:f7f7",  # Teredo: server 10.0.0.1, client 8.8.8.8
    "2606:4700::5efe:7f00:1",  # ISATAP interface id carrying 127.0.0.1
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo stays blocked even carrying public addresses
]
EMBEDDING_PUBLIC = ["64:ff9b::808:808", "::ffff:8.8.8.8"]


def url_for(host: str) -> str:
    bare_ipv6 = ":" in host and not host.startswith("[")
    return f"http://[{host}]/hook" if bare_ipv6 else f"http://{host}/hook"


@pytest.mark.parametrize("host", NOT_PUBLIC)
def test_loopback_private_link_local_and_reserved_hosts_are_not_targets(host):
    assert targets.literal_host_problem(host) is not None
    with pytest.raises(targets.TargetError, match="^blocked: "):
        targets.resolve(url_for(host), allow_private=False)


@pytest.mark.parametrize("address", EMBEDDING_NOT_PUBLIC)
def test_an_ipv6_address_embedding_a_non_public_ipv4_address_is_not_a_target(address):
    assert not targets._is_public(ipaddress.ip_address(address))
    assert targets.literal_host_problem(address) is not None
    with pytest.raises(targets.TargetError, match="^blocked: "):
        targets.resolve(url_for(address), allow_private=False)


@pytest.mark.parametrize("address", EMBEDDING_PUBLIC)
def test_an_ipv6_address_embedding_a_public_ipv4_address_is_public(address):
    assert targets._is_public(ipaddress.ip_address(address))
    assert targets.literal_host_problem(address) is None


@pytest.mark.parametrize("address", ["64:ff9b::7f00:1", "2002:7f00:1::", "::127.0.0.1",
                                     "2001:0:4136:e378:8000:63bf:80ff:fffe"])
def test_a_name_resolving_to_an_ipv6_address_embedding_loopback_is_blocked(monkeypatch, address):
    monkeypatch.setattr(targets.socket, "getaddrinfo", answer(address))
    with pytest.raises(targets.TargetError, match=r"^blocked: hooks.example.com resolves to "):
        targets.resolve("https://hooks.example.com/riskdesk", allow_private=False)


@pytest.mark.parametrize("address", ["64:ff9b::7f00:1", "2002:7f00:1::", "::127.0.0.1",
                                     "2001:0:4136:e378:8000:63bf:80ff:fffe"])
def test_registering_an_ipv6_literal_embedding_loopback_is_a_422(
    client, admin_headers, db, private_targets_refused, address
):
    response = client.post("/api/webhooks/endpoints", json={"url": f"https://[{address}]/hook",
                                                           "event_types": ["case.opened"]}, headers=admin_headers)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["field"] == "url" and "must not point at" in error["msg"]
    assert rows(db, "SELECT id FROM webhook_endpoints") == []


def answer(address: str):
    """A stand-in for DNS: every name resolves to `address`."""
    def getaddrinfo(host, port, *args, **kwargs):
        return [(None, None, None, "", (address, port))]
    return getaddrinfo


def test_a_name_resolving_to_an_internal_address_is_blocked(monkeypatch):
    monkeypatch.setattr(targets.socket, "getaddrinfo", answer("10.0.0.5"))
    with pytest.raises(targets.TargetError, match=r"^blocked: hooks.example.com resolves to .*\(10.0.0.5\)"):
        targets.resolve("https://hooks.example.com/riskdesk", allow_private=False)


@pytest.mark.parametrize(("address", "netloc"), [("93.184.216.34", "93.184.216.34"),
                                                 ("2606:4700::1111", "[2606:4700::1111]")])
def test_a_public_name_is_pinned_to_the_address_that_was_checked(monkeypatch, address, netloc):
    monkeypatch.setattr(targets.socket, "getaddrinfo", answer(address))
    pinned = targets.resolve("https://hooks.example.com:8443/riskdesk?x=1", allow_private=False)
    assert str(pinned.url) == f"https://{netloc}:8443/riskdesk?x=1"
    assert pinned.headers == {"Host": "hooks.example.com:8443"}
    assert pinned.extensions == {"sni_hostname": "hooks.example.com"}  # TLS still verifies the name


@pytest.mark.parametrize("host", PUBLIC)
def test_public_addresses_and_names_may_be_registered(host):
    assert targets.literal_host_problem(host) is None


@pytest.fixture
def private_targets_refused(monkeypatch):
    monkeypatch.setenv("WEBHOOK_PRIVATE_TARGETS", "false")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:8080/hook",
                                 "https://LOCALHOST/hook", "http://[::ffff:10.0.0.1]/hook"])
def test_registering_an_internal_url_is_a_422_naming_url_and_stores_nothing(
    client, admin_headers, db, private_targets_refused, url
):
    response = client.post("/api/webhooks/endpoints", json={"url": url, "event_types": ["case.opened"]},
                           headers=admin_headers)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["field"] == "url" and "must not point at" in error["msg"]
    assert rows(db, "SELECT id FROM webhook_endpoints") == []


def test_a_public_url_is_accepted_when_private_targets_are_refused(client, admin_headers, private_targets_refused):
    response = client.post("/api/webhooks/endpoints",
                           json={"url": "https://hooks.example.com/riskdesk", "event_types": ["case.opened"]},
                           headers=admin_headers)
    assert response.status_code == 201, response.text


def test_the_worker_refuses_an_internal_target_registered_while_allowed(client, admin_headers, desk, receiver, db):
    port = receiver.url.split(":")[2].split("/")[0]
    register(client, admin_headers, f"http://localhost:{port}/hook")
    settle_many(desk, 1)
    refusing = Worker(WorkerConfig(backoff_base=60, poll_interval=0.05, allow_private_targets=False))

    assert refusing.run(once=True) == 0
    assert receiver.requests == []
    [attempt] = rows(db, "SELECT status_code, error FROM webhook_attempts")
    assert attempt.status_code is None
    assert attempt.error.startswith("blocked: localhost is a loopback name")

    # Allowed, the same delivery goes to the checked address with the URL's own Host header.
    db.execute(text("UPDATE webhook_deliveries SET next_attempt_at = now()"))
    db.commit()
    assert Worker(WorkerConfig(poll_interval=0.05, allow_private_targets=True)).run(once=True) == 1
    [request] = receiver.requests
    assert request.headers["host"] == f"localhost:{port}"
