"""Where a webhook may go: public internet addresses only, unless private targets are allowed.

An endpoint URL is chosen by an admin, but the worker makes the request from inside our
network, so a URL naming the loopback interface, a private range or the cloud metadata
address (169.254.169.254) would turn the worker into a way to reach internal services
(server-side request forgery). Two checks, both off when WEBHOOK_PRIVATE_TARGETS is true
(the default outside production, where receivers run on 127.0.0.1):

- registering: a URL whose host is `localhost` or a non-public IP literal is refused (422);
- delivering: the host is resolved, every address must be public, and the request goes to
  the checked address (Host header and TLS name stay the URL's), so a DNS answer that
  changes between the check and the connection cannot point it elsewhere.
"""

import ipaddress
import socket
from dataclasses import dataclass

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetError(Exception):
    """The URL's host cannot be resolved, or is or resolves to an address webhooks may not reach."""


def _is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def literal_host_problem(host: str) -> str | None:
    """What a URL host is if it may not be a target as written (localhost, a non-public IP), else None."""
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return "a loopback name"
    address = _literal_address(name)
    if address is None or _is_public(address):
        return None  # a public address, or a DNS name: checked when delivering
    return f"a private or reserved address ({address})"


@dataclass(frozen=True)
class Pinned:
    """A request target fixed to one checked address."""

    url: httpx.URL
    headers: dict[str, str]
    extensions: dict[str, str]


def resolve(url: str, *, allow_private: bool) -> Pinned:
    """The URL pinned to a checked address of its host; TargetError if it has none or any is not public."""
    target = httpx.URL(url)
    host = target.raw_host.decode("ascii")
    problem = literal_host_problem(host)
    if problem and not allow_private:
        raise TargetError(f"blocked: {host} is {problem}")
    if _literal_address(host) is not None:
        return Pinned(target, {}, {})  # already an address: nothing to resolve
    port = target.port or (443 if target.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TargetError(f"cannot resolve {host}: {exc}") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    if not addresses:
        raise TargetError(f"cannot resolve {host}")
    private = [str(a) for a in addresses if not _is_public(a)]
    if private and not allow_private:
        raise TargetError(f"blocked: {host} resolves to a private or reserved address ({', '.join(private)})")
    extensions = {"sni_hostname": host} if target.scheme == "https" else {}
    return Pinned(target.copy_with(host=str(addresses[0])), {"Host": target.netloc.decode("ascii")}, extensions)
