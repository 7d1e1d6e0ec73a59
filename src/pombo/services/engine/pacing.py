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
        """Reserve `n` (never more than available())."""
        ...

    def began(self) -> None:
        """One reserved send starts now: its second counts from here, not from the reservation
        (the cap is what the provider sees)."""
        ...

    def give_back(self, n: int) -> None:
        """Return `n` reserved and not used (a claim found fewer messages)."""
        ...


UNCAPPED = 1 << 30


class NoCap:
    """throughput 0: always available."""

    def available(self) -> int:
        """No cap."""
        return UNCAPPED

    def take(self, n: int) -> None:
        """Nothing to count."""

    def began(self) -> None:
        """Nothing to count."""

    def give_back(self, n: int) -> None:
        """Nothing to count."""


class SlidingWindow:
    """At most `capacity` sends begin in any `period` seconds (capacity/period = the rate): the
    times the last `capacity` sends began are kept, so the cap holds over every window, not per
    tick; sends reserved and not yet begun count too."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = max(1, math.floor(rate))
        self.period = self.capacity / rate  # 1 s for rates >= 1; 0.5/s: 1 per 2 s
        self._began: deque[float] = deque()
        self._reserved = 0
        self._clock = clock

    def available(self) -> int:
        """Sends that may be reserved now."""
        since = self._clock() - self.period
        began = self._began
        while began and began[0] <= since:
            began.popleft()
        return self.capacity - len(began) - self._reserved

    def take(self, n: int) -> None:
        """Reserve `n`."""
        self._reserved += n

    def began(self) -> None:
        """A reserved send begins now."""
        self._reserved = max(0, self._reserved - 1)
        self._began.append(self._clock())

    def give_back(self, n: int) -> None:
        """Return `n` reserved and not used."""
        self._reserved = max(0, self._reserved - n)


def local_limiter(rate: float, *, clock: Callable[[], float] = time.monotonic) -> Limiter:
    """The in-process limiter for a connection's throughput (0: none)."""
    return SlidingWindow(rate, clock=clock) if rate > 0 else NoCap()
