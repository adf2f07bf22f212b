"""Who the client is, for throttling: the TCP peer, or what a trusted proxy says it saw.

``X-Forwarded-For`` is believed only from a configured proxy (``SIGNOFF_TRUSTED_PROXIES``):
anyone else could write any address in it and so escape a throttle or pin it on someone
else. From a trusted proxy the client is the right-most address that is not itself a trusted
proxy: entries to its left were written by the client and prove nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
UNKNOWN = "unknown"


def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address in network for network in proxies)


def client_ip(peer: str | None, forwarded_for: Iterable[str], proxies: Sequence[Network]) -> str:
    """The client's address: ``peer`` unless it is a trusted proxy; then the right-most
    untrusted entry of the ``X-Forwarded-For`` headers (all of them, in order). A proxy that
    sent no usable entry leaves the proxy as the client."""
    address = _address(peer) if peer else None
    if address is None:
        return UNKNOWN
    if not _trusted(address, proxies):
        return str(address)
    hops = [hop for header in forwarded_for for hop in header.split(",")]
    for hop in reversed(hops):
        forwarded = _address(hop)
        if forwarded is None:
            break  # not written by a proxy of ours
        if not _trusted(forwarded, proxies):
            return str(forwarded)
        address = forwarded
    return str(address)


def throttle_key(ip: str) -> str:
    """The key one client is counted under: its address, or for IPv6 its /64 network (one
    subscriber usually holds a whole /64, so counting single addresses would count nothing)."""
    address = _address(ip)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return ip
