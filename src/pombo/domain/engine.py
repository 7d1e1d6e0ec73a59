"""The upstream engine's rules without I/O (SPEC §11): a connection's engine settings, the
retry backoff, and the order connections are tried in."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from pombo.domain.model import ConnectionConfig

DEFAULT_WINDOW = 100
DEFAULT_MAX_QUEUE_TIME = 3600.0
BACKOFF_FIRST = 0.5  # seconds before the first retry of a "not sent" attempt
BACKOFF_MAX = 30.0
SKIP_AFTER = 5  # "not sent" in a row that skip a connection that has a fallback
SKIP_FOR = 30.0  # seconds a skipped connection is left alone (then one message probes it)
HIGH, NORMAL = 1, 0  # queue priorities
PACE_AHEAD = 0.02  # seconds ahead of the even schedule a shared grant may reach (pace())


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """throughput (0: no cap), window, fallback, max_queue_time of one connection."""

    throughput: float = 0.0
    window: int = DEFAULT_WINDOW
    fallback: tuple[str, ...] = ()
    max_queue_time: float = DEFAULT_MAX_QUEUE_TIME

    @classmethod
    def of(cls, config: ConnectionConfig) -> EngineSettings:
        """The settings kept in the connection's options (absent: the defaults). An smpp
        connection's `window` is per bind: the engine lets `window` x `binds` be in flight."""
        o = config.options
        fallback = o.get("fallback") or ()
        window = int(o.get("window") or DEFAULT_WINDOW)
        if config.kind == "smpp":
            window *= max(1, int(o.get("binds") or 1))
        return cls(
            throughput=float(o.get("throughput") or 0),
            window=window,
            fallback=(fallback,) if isinstance(fallback, str) else tuple(fallback),
            max_queue_time=float(o.get("max_queue_time") or DEFAULT_MAX_QUEUE_TIME),
        )


def backoff(attempts: int, retry_after: float | None) -> float:
    """Seconds before the next try after `attempts` "not sent" outcomes; the provider's
    Retry-After wins when it asks for longer."""
    delay: float = min(BACKOFF_FIRST * 2.0 ** max(attempts - 1, 0), BACKOFF_MAX)
    return max(delay, retry_after or 0.0)


def pace(due: float, now: float, want: int, rate: int) -> tuple[int, float]:
    """A grant of sends shared by every worker, on an even schedule (the generic cell rate
    algorithm): `due` is when the next send is due (the schedule is one send per 1/rate
    seconds); a grant reaches at most PACE_AHEAD seconds ahead of it. Returns (granted, the
    next due). Sends begun when granted number at most rate x (1 + PACE_AHEAD) + 1 in any
    sliding second (307 at 300/s), spread evenly: a worker that begins its grant late adds one
    grant's worth, not a second's. A schedule left behind by a quiet spell restarts at now
    (no credit is saved up)."""
    due = max(due, now)
    if want <= 0 or rate <= 0 or due > now + PACE_AHEAD:
        return 0, due
    # 1e-3: an epoch in seconds carries ~2e-7 s of rounding, a thousandth of a send at 5,000/s
    n = min(want, int((now + PACE_AHEAD - due) * rate + 1e-3) + 1)
    return n, due + n / rate


def pace_batch(rate: float) -> int:
    """The most one grant of pace() can hold at `rate`: what a worker asks for at a time."""
    return int(max(1, math.floor(rate)) * PACE_AHEAD + 1e-3) + 1


def priority_of(level: str) -> int:
    """The queue priority of a customer's `priority` setting."""
    return HIGH if level == "high" else NORMAL


def begin_before(ahead: int, priority: int, others: Iterable[tuple[int, int]], enough: int) -> int:
    """The fewest messages certain to begin before a waiting one. The queue serves higher
    priority first, then in rounds (SPEC §11 fair share: each customer's n-th waiting message
    in round n): before it go the `ahead` messages of its own customer, every waiting message
    of a customer of higher priority, and, of each other customer of its priority, the first
    min(waiting, ahead). `others`: (messages waiting, priority) of each other customer; counting
    stops once it reaches `enough` (more makes no difference to the caller)."""
    before = ahead
    for waiting, their_priority in others:
        if their_priority > priority:
            before += waiting
        elif their_priority == priority:
            before += min(waiting, ahead)
        if before >= enough:
            break
    return before


def certainly_late(rate: float, seconds: float) -> int:
    """A count of messages ahead from which `cannot_begin_within(count, rate, seconds)` holds
    (for rate > 0): counting further changes nothing."""
    return math.ceil(rate * max(seconds, 0.0)) + max(1, int(rate)) + 1


def cannot_begin_within(ahead: int, rate: float, seconds: float) -> bool:
    """True when a waiting message cannot begin within `seconds`: `ahead` messages of the same
    customer and chain wait before it, due now (a customer's messages leave the queue in their
    order), and at most floor(rate) sends begin in any second on the fastest connection of the
    chain (`rate`; 0: no cap, so nothing is certain). Its caller need not be held for an answer
    that cannot come in time (SPEC §11: WR)."""
    if rate <= 0 or seconds < 0:
        return rate > 0
    capacity = max(1, int(rate))  # as the sliding window counts: `capacity` per `period`
    period = capacity / rate
    return (ahead // capacity) * period > seconds
