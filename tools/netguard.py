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


def _normalise(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def address_is_public(ip: IPAddress) -> bool:
    ip = _normalise(ip)
    return ip.is_global and not ip.is_multicast and not ip.is_unspecified


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
