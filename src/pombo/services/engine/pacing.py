"""Pacing (SPEC §11): `throughput` as an exact sliding 1-second window in this process, and the
port a limiter shared by several workers implements."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol


class Limiter(Protocol):
    """Hands out the right to send one message now, `throughput` per sliding second."""

    def available(self) -> int:
        """How many sends may start now without breaking the cap (a large number: no cap)."""
        ...

    def take(self, n: int) -> None:
        """Spend `n` (never more than available())."""
        ...

    def give_back(self, n: int) -> None:
        """Return the last `n` taken and not used (a claim found fewer messages)."""
        ...


UNCAPPED = 1 << 30


class NoCap:
    """throughput 0: always available."""

    def available(self) -> int:
        """No cap."""
        return UNCAPPED

    def take(self, n: int) -> None:
        """Nothing to count."""

    def give_back(self, n: int) -> None:
        """Nothing to count."""


class SlidingWindow:
    """At most `capacity` starts in any `period` seconds (capacity/period = the rate): the times
    of the last `capacity` starts are kept, so the cap holds over every window, not per tick."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = max(1, math.floor(rate))
        self.period = self.capacity / rate  # 1 s for rates >= 1; 0.5/s: 1 per 2 s
        self._starts: deque[float] = deque()
        self._clock = clock

    def available(self) -> int:
        """Starts allowed now."""
        since = self._clock() - self.period
        starts = self._starts
        while starts and starts[0] <= since:
            starts.popleft()
        return self.capacity - len(starts)

    def take(self, n: int) -> None:
        """Record `n` starts now."""
        now = self._clock()
        self._starts.extend([now] * n)

    def give_back(self, n: int) -> None:
        """Forget the last `n` starts."""
        for _ in range(min(n, len(self._starts))):
            self._starts.pop()

    def next_free_in(self) -> float:
        """Seconds until one more start is allowed (0 when one is now)."""
        if self.available() > 0:
            return 0.0
        return max(0.0, self._starts[0] + self.period - self._clock())


def local_limiter(rate: float, *, clock: Callable[[], float] = time.monotonic) -> Limiter:
    """The in-process limiter for a connection's throughput (0: none)."""
    return SlidingWindow(rate, clock=clock) if rate > 0 else NoCap()
