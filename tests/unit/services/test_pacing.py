"""The in-process sliding window (services/engine/pacing.py): when the k-th next send can begin.
The engine answers a queued caller WR at once when its turn cannot come before its deadline
(SPEC §11); that needs a lower bound that is also tight, or callers are held for nothing."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from pombo.services.engine.pacing import NoCap, SharedWindow, SlidingWindow


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _greedy_start(window: SlidingWindow, clock: Clock, ahead: int) -> float:
    """Seconds until the (ahead+1)-th send begins when every send begins as soon as it may."""
    start = clock.t
    for _ in range(ahead + 1):
        while window.available() <= 0:
            clock.t = min(t for t in window._began) + window.period + 1e-9  # the oldest leaves
        window.take(1)
        window.began()
    return clock.t - start


@settings(max_examples=200, deadline=None)
@given(
    rate=st.sampled_from([0.5, 1, 3, 10, 500]),
    history=st.lists(st.floats(min_value=0.0, max_value=0.3), max_size=40),
    ahead=st.integers(min_value=0, max_value=60),
)
def test_wait_for_is_when_the_turn_comes_for_greedy_sends(rate: float, history: list[float], ahead: int) -> None:
    clock = Clock()
    window = SlidingWindow(rate, clock=clock)
    for gap in history:  # sends begun at random moments in the past
        clock.t += gap
        if window.available() > 0:
            window.take(1)
            window.began()
    bound = window.wait_for(ahead)
    actual = _greedy_start(window, clock, ahead)
    assert bound <= actual + 1e-6  # a lower bound: a caller told WR could not have been answered
    assert actual - bound < 1e-6 or ahead >= window.capacity  # and exact within one period


def test_reserved_sends_hold_their_places() -> None:
    clock = Clock()
    window = SlidingWindow(2, clock=clock)
    window.take(2)  # claimed, not begun yet
    assert window.wait_for(0) == 1.0  # they begin now at the earliest: a period for the next
    assert window.wait_for(2) == 2.0
    assert NoCap().wait_for(10**6) == 0.0


def test_the_shared_window_counts_the_tokens_in_hand_then_the_rate() -> None:
    # other workers share the schedule, so only the tokens in hand are certain; past them the
    # rate, less one grant (the schedule may run that far ahead of now)
    window = SharedWindow(100, grant=lambda n: asyncio.sleep(0, result=0), clock=Clock())
    assert window.batch == 3
    assert window.wait_for(0) == 0.0 and window.wait_for(2) == 0.0  # one grant's worth may come now
    assert window.wait_for(103) == 1.0
    window._tokens = 10
    assert window.wait_for(12) == 0.0 and window.wait_for(113) == 1.0
