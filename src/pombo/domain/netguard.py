"""Where a customer callback (or a per-message `rurl`) may go: http(s) to a public address only.

Pombo posts to URLs its customers name, so a URL naming loopback, a private network, a
link-local or multicast address, or a cloud metadata service would let any customer with send
rights make Pombo reach inside the operator's network. The operator may allow named ranges
for a private deployment (POMBO_CALLBACK_ALLOW); the metadata addresses stay refused anyway.
The address checked is the one connected to (services/urlguard.py), so DNS rebinding does not
pass a check made earlier.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# cloud instance metadata: AWS/GCP/Azure/OpenStack, AWS ECS, AWS IPv6, Alibaba, Oracle
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
MAX_URL = 2000


class UrlRefused(ValueError):
    """A callback URL Pombo will not call."""


def networks(items: Iterable[str]) -> tuple[IPNetwork, ...]:
    """The operator's allowed ranges (POMBO_CALLBACK_ALLOW) as networks."""
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items)


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _public(ip: IPAddress) -> bool:
    return ip.is_global and not (
        ip.is_multicast or ip.is_loopback or ip.is_link_local or ip.is_private
        or ip.is_reserved or ip.is_unspecified
    )


def address_allowed(address: str | IPAddress, allow: tuple[IPNetwork, ...] = ()) -> bool:
    """Whether Pombo may connect to this address for a callback."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    except ValueError:
        return False
    inner = _embedded_v4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    if ip in METADATA or (inner is not None and inner in METADATA):
        return False
    if inner is not None:  # the IPv4 address is the one reached: it alone decides
        return any(inner in net for net in allow) or _public(inner)
    return any(ip in net for net in allow) or _public(ip)


def callback_host(url: str) -> str:
    """The host of an http(s) callback URL; UrlRefused for anything else."""
    if len(url) > MAX_URL or any(c.isspace() for c in url):
        raise UrlRefused("not a URL")
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises on a bad port
    except ValueError as exc:
        raise UrlRefused("not a URL") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise UrlRefused("http(s) only")
    if not host:
        raise UrlRefused("no host")
    return host


def literal_address(host: str) -> IPAddress | None:
    """The address when the host is written as one (not a name to resolve)."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
