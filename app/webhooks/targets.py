"""Where a webhook may go: well-formed URLs to public internet addresses only.

An endpoint URL is chosen by an admin, but the worker makes the request from inside our
network, so a URL naming the loopback interface, a private range or the cloud metadata
address (169.254.169.254) would turn the worker into a way to reach internal services
(server-side request forgery).

`parse_url` is the one definition of a valid endpoint URL, applied at registration and
again by the worker, with httpx's parser (the one that makes the request): a URL httpx or
IDNA refuses, or one that other parsers would read differently (IPv4 written in octal,
hex, short or integer form such as `0177.0.0.1`, `0x7f.1`, `127.1`, `2130706433`; a
backslash; a percent-encoded or non-LDH host name; an IPv6 zone), is refused. A Unicode
host name is stored as httpx sends it, in IDNA (punycode) form: `https://bücher.example/`
is stored as `https://xn--bcher-kva.example/`. Compatibility characters (circled or
full-width letters) and invisible ones (a soft hyphen) are refused, never silently mapped.

Two address checks, both off when WEBHOOK_PRIVATE_TARGETS is true (the default outside
production, where receivers run on 127.0.0.1):

- registering: a URL whose host is `localhost` or a non-public IP literal is refused (422);
- delivering: the host is resolved, every address must be public, and the request goes to
  the checked address (Host header and TLS name stay the URL's), so a DNS answer that
  changes between the check and the connection cannot point it elsewhere.

An IPv6 address that carries an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4,
Teredo, ISATAP) reaches that IPv4 host through a translator or tunnel, so the IPv4 address
it embeds must be public too (both of Teredo's: server and client).
"""


import ipaddress
import re
import socket
from dataclasses import dataclass

import httpx
import idna  # httpx's own IDNA codec (a dependency of httpx), used here to check punycode labels

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2000  # webhook_endpoints.url, after normalisation (punycode is longer than Unicode)
NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the IPv4 address is the last 32 bits
# RFC 8215 local-use NAT64 prefix: where the IPv4 address sits depends on the operator's prefix
# length, and the prefix is never globally routed, so nothing under it is a public target.
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291 (deprecated): ::a.b.c.d
IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # RFC 2765 (SIIT): ::ffff:0:a.b.c.d
ISATAP_INTERFACE_IDS = (0x00005EFE, 0x02005EFE)  # RFC 5214: <prefix>:0:5efe:a.b.c.d

# A host whose last label is a number is read as an IPv4 address by browsers and inet_aton()
# (`127.1`, `0x7f.1`, `2130706433`); only four decimal numbers (a.b.c.d) mean the same everywhere.
NUMERIC_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
LDH_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")  # RFC 1123 host name label, lower case


class TargetError(Exception):
    """The URL's host cannot be resolved, or is or resolves to an address webhooks may not reach."""


class InvalidTargetURL(TargetError, ValueError):
    """Not an unambiguous http(s) URL httpx can request; the message never echoes the URL."""


def _invalid(reason: str) -> InvalidTargetURL:
    return InvalidTargetURL(f"must be an http or https URL {reason}".rstrip())


_IPV4_FORM = "whose IPv4 address is four decimal numbers from 0 to 255 (a.b.c.d)"
# What httpx.InvalidURL says, by its first words (the rest echoes the URL, which we never do).
_PARSE_FAILURES = {
    "Invalid IPv4 address": _IPV4_FORM,
    "Invalid IPv6 address": "whose IPv6 address is valid",
    "Invalid IDNA hostname": "whose host name is valid IDNA (no symbols, full-width or invisible characters)",
    "Invalid port": "with a port from 1 to 65535",
}


def _check_host(host: str) -> None:
    """Refuse a host (as httpx encodes it) that other parsers could read differently."""
    if not host:
        raise _invalid("with a host")
    if ":" in host:  # an IPv6 literal, already checked by httpx
        if "%" in host:
            raise _invalid("without an IPv6 zone")
        return
    name = host.removesuffix(".")
    if len(name) > 253:
        raise _invalid("with a host name of at most 253 characters")
    labels = name.split(".")
    if NUMERIC_LABEL.match(labels[-1]):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise _invalid(_IPV4_FORM) from None
        return
    for label in labels:
        if not LDH_LABEL.match(label):
            raise _invalid("whose host name labels are 1 to 63 letters, digits or inner hyphens")
        if label.startswith("xn--"):
            try:
                canonical = idna.encode(idna.decode(label)).decode("ascii") == label
            except (idna.IDNAError, UnicodeError, ValueError):
                canonical = False
            if not canonical:
                raise _invalid("whose host name is valid IDNA")


def parse_url(url: str) -> httpx.URL:
    """The URL as the worker requests it (host in IDNA form); InvalidTargetURL if it is not unambiguous."""
    if any(c.isspace() or not c.isprintable() for c in url):
        raise _invalid("without spaces or invisible characters")
    if "\\" in url:  # browsers read it as "/", httpx as part of the user info
        raise _invalid("without backslashes")
    try:
        parsed = httpx.URL(url)
        port, host = parsed.port, parsed.raw_host.decode("ascii")
    # httpx raises InvalidURL, idna.IDNAError (a UnicodeError), ValueError …: each means a bad URL.
    except Exception as exc:  # noqa: BLE001
        raise _invalid(_PARSE_FAILURES.get(str(exc).split(":")[0], "that httpx can parse")) from None
    if parsed.scheme not in ("http", "https"):
        raise _invalid("")
    if parsed.userinfo:
        raise InvalidTargetURL("must not contain credentials")
    if port is not None and not 1 <= port <= 65535:
        raise _invalid("with a port from 1 to 65535")
    _check_host(host)
    if len(str(parsed)) > MAX_URL_LENGTH:
        raise _invalid(f"of at most {MAX_URL_LENGTH} characters once normalised")
    return parsed


def normalised_url(url: str) -> str:
    """The URL in the form it is stored and requested (IDNA host, lower-case scheme and host)."""
    return str(parse_url(url))


def _isatap_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if (int(address) >> 32) & 0xFFFFFFFF in ISATAP_INTERFACE_IDS:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _carried_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address is translated or tunnelled to (none for a plain one)."""
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address.teredo is not None:  # 2001::/32: the server (bits 32-63) and the client (last 32, inverted)
        return list(address.teredo)
    if address.sixtofour is not None:  # 2002::/16: bits 16-47
        return [address.sixtofour]
    if address in NAT64_WELL_KNOWN or address in IPV4_COMPATIBLE or address in IPV4_TRANSLATED:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    return []


def _is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address in NAT64_LOCAL_USE:
            return False
        carried = _carried_ipv4(address)
        if carried:
            # Judged by where it leads (Python's is_global calls 64:ff9b::7f00:1 and ::127.0.0.1
            # global): every IPv4 address it carries must be public. An IPv4-mapped address is
            # that IPv4 address; the others must also pass the IPv6 rules, which keep Teredo
            # (2001::/32, inside Python's non-global 2001::/23) blocked whatever it carries.
            carries_public = all(_is_public(ipv4) for ipv4 in carried)
            if address.ipv4_mapped is not None:
                return carries_public
            return carries_public and address.is_global and not address.is_multicast
        isatap = _isatap_ipv4(address)
        if isatap is not None and not _is_public(isatap):
            return False
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
    try:
        target = parse_url(url)  # an endpoint stored before URLs were checked fails here, on its own
    except InvalidTargetURL as exc:
        raise InvalidTargetURL(f"invalid URL: {exc}") from None
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
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
    if not addresses:
        raise TargetError(f"cannot resolve {host}")
    private = [str(a) for a in addresses if not _is_public(a)]
    if private and not allow_private:
        raise TargetError(f"blocked: {host} resolves to a private or reserved address ({', '.join(private)})")
    extensions = {"sni_hostname": host} if target.scheme == "https" else {}
    return Pinned(target.copy_with(host=str(addresses[0])), {"Host": target.netloc.decode("ascii")}, extensions)
