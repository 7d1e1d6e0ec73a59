"""Capacity of each connection in this process: its engine settings, throughput limiter, window
of sends in flight and health, and where a message of a chain goes now (SPEC §11)."""

from __future__ import annotations

import asyncio

from pombo.domain.catalog import Catalog
from pombo.domain.engine import EngineSettings
from pombo.domain.model import ConnectionConfig
from pombo.ports import Clock, Pacing
from pombo.services.engine.health import Health
from pombo.services.engine.pacing import Limiter, SharedWindow, local_limiter


class Capacity:
    """Per-connection settings, limiters, sends in flight and health."""

    def __init__(self, pacing: Pacing, clock: Clock, *, shared: bool) -> None:
        self._pacing = pacing
        self._pace_clock = clock
        self._shared = shared  # several workers: the store grants throughput
        self._settings: dict[str, tuple[ConnectionConfig, EngineSettings]] = {}
        self._limiters: dict[str, tuple[float, Limiter]] = {}
        self.in_flight_by: dict[str, int] = {}
        self.health: dict[str, Health] = {}
        self.wake = asyncio.Event()  # set when the pump may have something to do

    def settings(self, config: ConnectionConfig) -> EngineSettings:
        """The connection's engine settings (parsed once per configuration)."""
        cached = self._settings.get(config.name)
        if cached is not None and cached[0] is config:
            return cached[1]
        settings = EngineSettings.of(config)
        self._settings[config.name] = (config, settings)
        return settings

    def limiter(self, config: ConnectionConfig) -> Limiter:
        """The throughput limiter of this connection (rebuilt when its throughput changes)."""
        rate = self.settings(config).throughput
        cached = self._limiters.get(config.name)
        if cached is None or cached[0] != rate:
            cached = self._limiters[config.name] = (rate, self._new_limiter(config.name, rate))
        return cached[1]

    def _new_limiter(self, name: str, rate: float) -> Limiter:
        if not self._shared or rate <= 0:
            return local_limiter(rate)
        cap = max(1, int(rate))

        async def grant(want: int) -> int:
            return await self._pacing.grant(connection=name, want=want, rate=cap, now=self._pace_clock.now())

        return SharedWindow(rate, grant, on_tokens=self.wake.set)

    def free(self, config: ConnectionConfig) -> int:
        """Sends that may start on it now: under its window and its throughput."""
        window = self.settings(config).window
        live = self.window_now(config.name)
        if live is not None:
            window = min(window, live)
        window -= self.in_flight_by.get(config.name, 0)
        return min(window, self.limiter(config).available()) if window > 0 else 0

    def window_now(self, name: str) -> int | None:
        """The window the live connection can take at this moment, when it says (an smpp
        connection with binds down: `window` x the bound ones); None: the configured one."""
        return None

    def health_of(self, name: str) -> Health:
        """This process's view of one connection."""
        health = self.health.get(name)
        if health is None:
            health = self.health[name] = Health()
        return health

    def target(self, config: ConnectionConfig, catalog: Catalog | None, now: float) -> ConnectionConfig | None:
        """Where a message of this chain goes now: the head unless skipped, else the first
        usable fallback; None when every one is skipped (the message waits)."""
        health = self.health.get(config.name)
        if health is None or health.usable(now):
            return config
        for name in self.settings(config).fallback:
            other = catalog.connections.get(name) if catalog is not None else None
            if other is not None and other.enabled and self.health_of(name).usable(now):
                return other
        return None
