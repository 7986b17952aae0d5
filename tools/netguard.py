"""Outbound request guard for ``http_fetch``: host allowlist and address checks.

The name is checked against the allowlist, then resolved, and every address
it resolves to must be public (unless staff allowed private ones); the
request then goes to that checked address, so a second resolution (DNS
rebinding) cannot swap in another one.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The URL may not be fetched; the message says why."""


def host_allowed(host: str, patterns: list[str]) -> bool:
    """Exact names, ``*.example.com`` (subdomains only) or ``*`` (any host)."""
    host = host.lower().rstrip(".")
    for raw in patterns:
        pattern = raw.strip().lower().rstrip(".")
        if not pattern:
            continue
        if pattern == "*" or pattern == host:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False


# IPv6 ranges that carry an IPv4 address a gateway or the kernel would reach.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known prefix: the last 32 bits
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")  # SIIT (RFC 2765): the last 32 bits
_REFUSED_V6 = (
    ipaddress.IPv6Network("fec0::/10"),  # site-local (deprecated): routed as private where still used
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible (deprecated), :: and ::1 included
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # local-use NAT64: the embedding varies
    ipaddress.IPv6Network("2001::/32"),  # Teredo
)


def _normalise(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a NAT64 (64:ff9b::/96), IPv4-translated (::ffff:0:0:0/96) or 6to4
    (2002::/16) address leads to."""
    if ip in _NAT64 or ip in _IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def _public(ip: IPAddress) -> bool:
    return ip.is_global and not ip.is_multicast and not ip.is_unspecified


def address_is_public(ip: IPAddress) -> bool:
    """Public, and for the IPv6 transition ranges, the IPv4 address inside is public too."""
    ip = _normalise(ip)
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in net for net in _REFUSED_V6):
            return False
        inner = _embedded_ipv4(ip)
        if inner is not None:
            return _public(inner)
    return _public(ip)


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    address: str


def resolve_checked(host: str, port: int, *, allow_private: bool) -> Target:
    """Resolve ``host`` and check every address; the first one is the one to connect to."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise Refused(f"Could not resolve {host!r}.") from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses:
        raise Refused(f"{host!r} resolves to no address.")
    if not allow_private:
        for ip in addresses:
            if not address_is_public(ip):
                raise Refused(
                    f"{host!r} resolves to {ip}, a private, loopback, link-local or reserved address; "
                    "refused (staff can allow private addresses for this tool)."
                )
    return Target(host=host, port=port, address=str(_normalise(addresses[0])))
