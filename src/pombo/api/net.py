"""Who is calling: the client's address behind trusted proxies (the API and the console share it).

Imports nothing of the app or the console, so both can use it without an import circle.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Collection

from starlette.requests import Request


def client_ip(request: Request, trusted_proxies: Collection[str]) -> str:
    """The socket's peer, or X-Forwarded-For's last hop when the peer is a trusted proxy."""
    peer = request.client.host if request.client else "0.0.0.0"
    if peer in trusted_proxies:
        forwarded = request.headers.get("x-forwarded-for", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        if hops:
            return _address(hops[-1]) or peer
    return peer


def _address(hop: str) -> str | None:
    """'203.0.113.7', '203.0.113.7:4711', '[2001:db8::1]:4711' -> the address; else None.

    Only an address is kept: it keys the brute-force counters and is matched to allow-lists.
    """
    candidates = [hop]
    if hop.startswith("["):
        candidates.append(hop[1:].partition("]")[0])
    elif hop.count(":") == 1:
        candidates.append(hop.partition(":")[0])
    for candidate in candidates:
        if "%" in candidate:  # an IPv6 zone is any text: not a key to count failures by
            continue
        with contextlib.suppress(ValueError):
            return str(ipaddress.ip_address(candidate))
    return None
