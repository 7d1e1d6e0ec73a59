"""Pacing (SPEC §11): `throughput` as an exact sliding 1-second window in this process, and the
port a limiter shared by several workers implements."""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

from pombo.domain.engine import PACE_AHEAD, pace_batch


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

    def wait_for(self, ahead: int) -> float:
        """A lower bound of the seconds before a send with `ahead` sends to begin before it can
        begin (what the caller of a queued message could hear in time)."""
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

    def wait_for(self, ahead: int) -> float:
        """No cap: nothing to wait for."""
        return 0.0


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

    def wait_for(self, ahead: int) -> float:
        """From the window's state: the first available() begin now, the next ones as the sends
        begun in the last period leave it one by one, and every one after those only when a
        send that begins from now on has left it (a period later, a period per `capacity`)."""
        free = self.available()
        if ahead < free:
            return 0.0
        j = ahead - free
        began = self._began
        if j < len(began):
            return max(0.0, began[j] + self.period - self._clock())
        return self.period * (1 + (j - len(began)) // self.capacity)


Grant = Callable[[int], Awaitable[int]]  # want -> granted (the store's Pacing.grant, bound)


class SharedWindow:
    """`throughput` across every worker: sends begin only on tokens the store granted on the
    connection's even schedule (engine.pace: at most rate x (1 + PACE_AHEAD) + 1 in any sliding
    second), fetched one grant at a time and good for VALID seconds (an unused token lapses, so
    no worker spends an old grant in a later second)."""

    VALID = 0.04

    def __init__(self, rate: float, grant: Grant, *, on_tokens: Callable[[], None] = lambda: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = max(1, math.floor(rate))
        self.batch = pace_batch(rate)
        self._grant = grant
        self._on_tokens = on_tokens
        self._clock = clock
        self._tokens = 0
        self._reserved = 0
        self._expires = 0.0
        self._asking: asyncio.Future[None] | None = None
        self._quiet_until = 0.0  # the schedule is ahead: do not ask again before this

    def available(self) -> int:
        """Tokens in hand (asking the store for more when they run out)."""
        now = self._clock()
        if now >= self._expires:
            self._tokens = min(self._tokens, self._reserved)  # the unreserved ones lapse
        free = self._tokens - self._reserved
        if free <= 0 and self._asking is None and now >= self._quiet_until:
            self._asking = asyncio.ensure_future(self._ask())
        return max(0, free)

    def take(self, n: int) -> None:
        """Reserve `n` tokens in hand."""
        self._reserved += n

    def began(self) -> None:
        """A reserved send begins: its token is spent."""
        self._reserved = max(0, self._reserved - 1)
        self._tokens = max(0, self._tokens - 1)

    def give_back(self, n: int) -> None:
        """Unreserve `n` (they stay in hand until they lapse)."""
        self._reserved = max(0, self._reserved - n)

    def wait_for(self, ahead: int) -> float:
        """Other workers share the schedule: only the tokens in hand are known, then the rate
        (less one grant: the schedule may run that far ahead)."""
        more = ahead - max(0, self._tokens - self._reserved) - self.batch
        return max(0.0, more / self.rate)

    async def _ask(self) -> None:
        try:
            granted = await self._grant(self.batch)
        except Exception:  # the store away: nothing is granted; the pump asks again later
            granted = 0
        finally:
            self._asking = None
        if granted:
            self._tokens += granted
            self._expires = self._clock() + self.VALID
            self._on_tokens()
        else:
            self._quiet_until = self._clock() + PACE_AHEAD / 2  # asked again before the schedule passes


def local_limiter(rate: float, *, clock: Callable[[], float] = time.monotonic) -> Limiter:
    """The in-process limiter for a connection's throughput (0: none)."""
    return SlidingWindow(rate, clock=clock) if rate > 0 else NoCap()
