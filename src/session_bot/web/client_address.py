"""Who the client is: the direct peer, or what a trusted reverse proxy says it is.

The address picks the subscribe rate-limit bucket and is stored as consent proof, so a header
anyone can send must not decide it. X-Forwarded-For counts only when the peer is a proxy named in
``SESSION_BOT_TRUSTED_PROXIES``; then the right-most address that is not one of those proxies is
the client (everything left of it was written by the client itself and proves nothing).

uvicorn must not rewrite the peer from the header first (``proxy_headers=False``); otherwise the
peer seen here is already the header's word.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from starlette.requests import Request

Network = IPv4Network | IPv6Network


@functools.lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ip_network(c, strict=False) for c in cidrs)


def _address(text: str) -> IPv4Address | IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6]:port
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        addr = ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _trusted(addr: IPv4Address | IPv6Address, networks: Sequence[Network]) -> bool:
    return any(addr.version == n.version and addr in n for n in networks)


def forwarded_client(
    peer: str | None, forwarded_for: Sequence[str], proxies: Sequence[str]
) -> str | None:
    """The client's address given the direct ``peer``, the X-Forwarded-For header values (in
    order) and the trusted proxies (CIDR strings)."""
    if peer is None or not proxies:
        return peer
    networks = _networks(tuple(proxies))
    peer_addr = _address(peer)
    if peer_addr is None or not _trusted(peer_addr, networks):
        return peer
    hops = [h for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        addr = _address(hop)
        if addr is None:
            # Our own proxy writes addresses; garbage this far right means the header is not
            # what we think it is, so nothing further left is believed either.
            return peer
        if not _trusted(addr, networks):
            return str(addr)
    # Every hop is one of our proxies: the left-most is the closest to the client we know.
    first = _address(hops[0]) if hops else None
    return str(first) if first is not None else peer


def client_address(request: Request, proxies: Sequence[str]) -> str | None:
    peer = request.client.host if request.client else None
    return forwarded_client(peer, request.headers.getlist("x-forwarded-for"), proxies)
