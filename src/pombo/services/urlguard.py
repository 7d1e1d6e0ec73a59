"""The callback address rule (domain/netguard.py) applied at request time and at connect time.

At MakeSMS time a `rurl` whose host is, or resolves to, a refused address is answered 400. A
name that does not resolve then is accepted: DNS may be briefly down, and the push checks again
anyway. At push time the resolver below checks every address a name resolves to and aiohttp
connects only to those checked addresses, so a name that resolves to a public address when the
message is accepted and to loopback when the push goes (DNS rebinding) is still refused.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterable

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from pombo.domain.netguard import (
    UrlRefused,
    address_allowed,
    callback_host,
    literal_address,
    networks,
)

RESOLVE_TIMEOUT = 2.0
VERDICT_TTL = 60.0
MAX_VERDICTS = 4096


class AddressRefused(OSError):
    """A callback host resolved to an address Pombo will not connect to."""


class UrlGuard:
    """The operator's allowed ranges and a short-lived cache of names' verdicts."""

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.allow = networks(allow)
        self._verdicts: dict[str, tuple[float, bool]] = {}

    def allowed(self, address: str) -> bool:
        """Whether a resolved address may be connected to."""
        return address_allowed(address, self.allow)

    async def url_allowed(self, url: str) -> bool:
        """Whether a callback URL may be accepted now (http(s), to an allowed address)."""
        try:
            host = callback_host(url)
        except UrlRefused:
            return False
        literal = literal_address(host)
        if literal is not None:
            return address_allowed(literal, self.allow)
        return await self._name_allowed(host.lower())

    async def _name_allowed(self, host: str) -> bool:
        now = time.monotonic()
        cached = self._verdicts.get(host)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT):
                infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError, UnicodeError):
            return True  # unresolvable now: the push's own check decides (see the module doc)
        verdict = all(self.allowed(str(info[4][0])) for info in infos)
        if len(self._verdicts) >= MAX_VERDICTS:
            self._verdicts.clear()
        self._verdicts[host] = (now + VERDICT_TTL, verdict)
        return verdict

    def resolver(self) -> AbstractResolver:
        """An aiohttp resolver that refuses names resolving to any refused address."""
        return GuardedResolver(self)


class GuardedResolver(AbstractResolver):
    """Resolves with aiohttp's default resolver, then checks every address it got."""

    def __init__(self, guard: UrlGuard) -> None:
        self._guard = guard
        self._inner: AbstractResolver | None = None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The addresses of `host`, all allowed, or AddressRefused."""
        if self._inner is None:
            self._inner = DefaultResolver()
        infos = await self._inner.resolve(host, port, family)
        refused = [info["host"] for info in infos if not self._guard.allowed(info["host"])]
        if refused:
            # one refused address refuses the name: connecting to "the other one" is a gamble
            raise AddressRefused(f"callback address not allowed: {host} -> {refused[0]}")
        return infos

    async def close(self) -> None:
        """Release the inner resolver."""
        if self._inner is not None:
            await self._inner.close()
