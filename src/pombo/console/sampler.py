"""Rejected sends per minute, from this process's Prometheus counters.

A rejection (codes 1xx and 2xx, 400, 413, 503) writes no log row, so the database cannot tell
how many there were; the counter of MakeSMS answers can. The sampler reads it every few
seconds once the console has been opened and keeps an hour of per-minute differences.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from pombo import metrics
from pombo.domain import codes

EVERY = 5.0
KEEP_MINUTES = 61
LOGGED = frozenset({codes.OK, codes.WR, codes.PROVIDER_ERROR})  # these are in the message log


def read_rejections() -> dict[int, float]:
    """{code: answers so far} of MakeSMS answers that wrote no log row."""
    out: dict[int, float] = {}
    for family in metrics.ANSWERS.collect():
        for sample in family.samples:
            if not sample.name.endswith("_total") or sample.labels.get("endpoint") != "MakeSMS":
                continue
            label = sample.labels.get("code", "")
            if not label.isdigit():
                continue
            code = int(label)
            if code not in LOGGED:
                out[code] = out.get(code, 0.0) + sample.value
    return out


class RejectionSampler:
    """Per-minute differences of the rejection counters."""

    def __init__(self, read: Callable[[], dict[int, float]] = read_rejections) -> None:
        self._read = read
        self._last: dict[int, float] | None = None
        self.minutes: dict[int, dict[int, int]] = {}
        self.task: asyncio.Task[None] | None = None

    def observe(self, now: float) -> None:
        """Attribute what the counters gained since the last look to the current minute."""
        current = self._read()
        if self._last is not None:
            minute = int(now // 60)
            for code, value in current.items():
                gained = int(value - self._last.get(code, 0.0))
                if gained > 0:
                    bucket = self.minutes.setdefault(minute, {})
                    bucket[code] = bucket.get(code, 0) + gained
            for old in [m for m in self.minutes if m <= minute - KEEP_MINUTES]:
                del self.minutes[old]
        self._last = current

    def start(self, clock: Callable[[], float], tasks: list[asyncio.Task[None]]) -> None:
        """Sample in the background; the task joins the services' tasks, cancelled at shutdown."""
        if self.task is not None:
            return
        self.observe(clock())

        async def loop() -> None:
            while True:
                await asyncio.sleep(EVERY)
                with contextlib.suppress(Exception):  # a metrics hiccup must not end sampling
                    self.observe(clock())

        self.task = asyncio.get_running_loop().create_task(loop())
        tasks.append(self.task)
