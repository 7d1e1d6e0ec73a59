"""The upstream engine on the memory store (SPEC §11): not sent goes back to wait and is retried
(backoff, Retry-After), failover after 5 not sent with a probe 30 s later, rejected and unknown
are never tried elsewhere, window and throughput hold, waiting messages are served fairly and
high priority first, and what waits too long expires with a refund."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pombo.domain import codes
from pombo.domain.engine import (
    PACE_AHEAD,
    SKIP_AFTER,
    SKIP_FOR,
    begin_before,
    cannot_begin_within,
    certainly_late,
    pace,
    pace_batch,
)
from tests.unit.services.conftest import (
    ACK,
    OTHER_TOKEN,
    Outcome,
    World,
    WorldMaker,
    base_document,
    connection,
    customer,
)

UNITS = 10_000
SHOP_PRICE = 500  # 0.0500


async def until(check: Callable[[], Any], timeout: float = 5.0) -> None:
    """Wait (real time) until `check()` is true."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def refunds(world: World, message_id: int) -> list[int]:
    return [r["amount"] for r in world.store.t.ledger if r["message_id"] == message_id and r["cause"] == "refund"]


def status(world: World, message_id: int) -> int:
    return int(world.message(message_id)["status_code"])


def with_fallback(**velip: Any) -> dict[str, Any]:
    doc = base_document()
    connection(doc, "velip").update(fallback=["matrix"], **velip)
    doc["costs"].append({"connection": "matrix", "prefix": "55", "cost": "0.0200"})
    return doc


async def test_not_sent_waits_in_the_queue_and_goes_again_after_the_backoff(world: World) -> None:
    world.upstream.script("velip", Outcome("not_sent", raw="connection refused"))
    result = await world.send()
    assert result.code == codes.WR  # the caller's ack_timeout passed while it waited
    assert set(world.store.t.queue) == {result.cdls_id} and status(world, result.cdls_id) == codes.WR
    await asyncio.sleep(0.2)
    assert len(world.upstream.sent("velip")) == 1  # not before the backoff (0.5 s)
    world.clock.advance(0.5)
    await until(lambda: status(world, result.cdls_id) == codes.OK)
    assert len(world.upstream.sent("velip")) == 2 and world.store.t.queue == {}
    assert refunds(world, result.cdls_id) == []
    kinds = [(a["kind"], a["raw"]) for a in await world.store.attempts(message_id=result.cdls_id)]
    assert kinds == [("not_sent", "connection refused"), ("claimed", None)]
    assert world.dispatcher.health["velip"].by_kind == {"ok": 1, "not_sent": 1, "rejected": 0, "unknown": 0}


async def test_retry_after_is_honoured(world: World) -> None:
    world.upstream.script("velip", Outcome("not_sent", raw="503", retry_after=10))
    result = await world.send()
    world.clock.advance(5)
    await asyncio.sleep(0.2)
    assert len(world.upstream.sent("velip")) == 1
    world.clock.advance(5)
    await until(lambda: status(world, result.cdls_id) == codes.OK)


async def test_a_quick_retry_still_answers_the_caller_in_time(worlds: WorldMaker) -> None:
    doc = base_document()
    connection(doc, "velip")["ack_timeout"] = 2
    world = await worlds(doc)
    world.upstream.script("velip", Outcome("not_sent"))

    async def later() -> None:
        await asyncio.sleep(0.2)
        world.clock.advance(1)

    result, _ = await asyncio.gather(world.send(), later())
    assert result.code == codes.OK


async def test_five_not_sent_skip_the_connection_its_messages_go_to_the_fallback(worlds: WorldMaker) -> None:
    world = await worlds(with_fallback())
    world.upstream.script("velip", *[Outcome("not_sent", raw="refused")] * SKIP_AFTER)
    first = [await world.send(dest=f"1198765000{i}") for i in range(SKIP_AFTER)]
    assert world.dispatcher.health["velip"].state == "skipped"
    # the five waiting ones go to the fallback at once, and so does a new one
    new = await world.send(dest="11987650009")
    assert new.code == codes.OK
    for r in first:
        await until(lambda r=r: status(world, r.cdls_id) == codes.OK)
    assert len(world.upstream.sent("velip")) == SKIP_AFTER and len(world.upstream.sent("matrix")) == SKIP_AFTER + 1
    row = world.message(new.cdls_id)
    # the price stays the first connection's; connection and cost are the fallback's
    assert (row["connection"], row["cost"], row["value"]) == ("matrix", 200, SHOP_PRICE)
    assert await world.balance(11) == 50 * UNITS - (SKIP_AFTER + 1) * SHOP_PRICE
    # 30 s later one message probes the skipped connection; it answers, so it is back
    world.clock.advance(SKIP_FOR)
    probe = await world.send(dest="11987650010")
    assert probe.code == codes.OK and world.message(probe.cdls_id)["connection"] == "velip"
    assert world.dispatcher.health["velip"].state == "ok"


async def test_a_failed_probe_skips_it_again(worlds: WorldMaker) -> None:
    world = await worlds(with_fallback())
    world.upstream.script("velip", *[Outcome("not_sent")] * (SKIP_AFTER + 1))
    for i in range(SKIP_AFTER):
        await world.send(dest=f"1198765000{i}")
    world.clock.advance(SKIP_FOR)
    probe = await world.send(dest="11987650010")
    assert probe.code == codes.WR or world.message(probe.cdls_id)["connection"] == "matrix"
    health = world.dispatcher.health["velip"]
    assert health.state == "skipped" and health.skipped_until == world.clock.now() + SKIP_FOR
    await until(lambda: status(world, probe.cdls_id) == codes.OK)
    assert world.message(probe.cdls_id)["connection"] == "matrix"


async def test_without_a_fallback_a_connection_is_never_skipped(world: World) -> None:
    world.upstream.script("velip", *[Outcome("not_sent")] * (SKIP_AFTER + 2))
    for i in range(SKIP_AFTER + 2):
        await world.send(dest=f"1198765000{i}")
    health = world.dispatcher.health["velip"]
    assert health.skipped_until is None and health.state == "failing"


async def test_rejected_and_unknown_are_never_tried_elsewhere(worlds: WorldMaker) -> None:
    world = await worlds(with_fallback())
    world.upstream.script("velip", Outcome("reject", raw="NOK"), Outcome("unknown", raw="reset after writing"))
    rejected, unknown = await world.send(dest="11987650001"), await world.send(dest="11987650002")
    assert rejected.code == codes.PROVIDER_ERROR and sorted(refunds(world, rejected.cdls_id)) == [300, 500]
    assert unknown.code == codes.WR and refunds(world, unknown.cdls_id) == []
    await asyncio.sleep(0.2)
    world.clock.advance(60)
    await asyncio.sleep(0.2)
    assert world.upstream.sent("matrix") == [] and len(world.upstream.sent("velip")) == 2
    assert status(world, unknown.cdls_id) == codes.WR and world.store.t.queue == {}


async def test_the_window_caps_sends_in_flight(worlds: WorldMaker) -> None:
    doc = base_document()
    connection(doc, "velip")["window"] = 2
    world = await worlds(doc)
    world.upstream.script("velip", *[Outcome(delay=0.15)] * 6)
    results = await asyncio.gather(*(world.send(dest=f"1198765000{i}") for i in range(6)))
    await until(lambda: all(status(world, r.cdls_id) == codes.OK for r in results))
    assert world.upstream.most_in_flight["velip"] == 2


async def test_throughput_holds_in_every_sliding_second(worlds: WorldMaker) -> None:
    doc = base_document()
    connection(doc, "velip")["throughput"] = 40
    world = await worlds(doc)
    results = await asyncio.gather(*(world.send(dest=f"119876{i:05d}") for i in range(100)))
    await until(lambda: all(status(world, r.cdls_id) == codes.OK for r in results), timeout=10)
    times = sorted(t for name, _, t in world.upstream.started if name == "velip")
    assert len(times) == 100
    most = max(sum(1 for t in times[i:] if t < start + 1.0) for i, start in enumerate(times))
    assert most <= 40
    assert times[-1] - times[0] >= 1.0  # 100 at 40/s cannot all go in the first seconds


async def test_a_burst_does_not_hold_another_customers_message_longer_than_its_share(worlds: WorldMaker) -> None:
    doc = base_document()
    connection(doc, "velip")["throughput"] = 100
    world = await worlds(doc)
    burst = [asyncio.ensure_future(world.send(dest=f"119876{i:05d}")) for i in range(300)]
    await asyncio.sleep(0.3)  # 100 went at once, 200 wait in the queue
    assert len(world.store.t.queue) == 200
    single = await world.send(token=OTHER_TOKEN, dest="11987659999")
    await until(lambda: status(world, single.cdls_id) == codes.OK)
    assert len(world.store.t.queue) >= 100  # the burst is still waiting: it was not held behind it
    order = [mid for name, mid, _ in world.upstream.started if name == "velip"]
    # round robin: it goes in the first turns of the next claim, not after the burst's 200
    assert order.index(single.cdls_id) <= 100 + 1
    await asyncio.gather(*burst)


@pytest.mark.parametrize(
    ("ahead", "rate", "seconds", "hopeless"),
    [
        (0, 2, 0.1, False),  # first in line: it may begin at once
        (1, 2, 0.1, False),  # two may begin in the same second
        (2, 2, 0.1, True),  # the third begins a second after the first at the soonest
        (499, 500, 0.25, False),
        (500, 500, 0.25, True),
        (1000, 500, 1.5, True),
        (1000, 500, 2.0, False),
        (1, 0.5, 1.9, True),  # 0.5/s: one every 2 s
        (1, 0.5, 2.0, False),
        (10_000, 0, 0.1, False),  # no cap: nothing is certain
        (0, 10, -0.01, True),  # the deadline has passed
    ],
)
def test_cannot_begin_within(ahead: int, rate: float, seconds: float, hopeless: bool) -> None:
    assert cannot_begin_within(ahead, rate, seconds) is hopeless


@pytest.mark.parametrize(
    ("ahead", "priority", "others", "before"),
    [
        (0, 0, [], 0),
        (3, 0, [], 3),  # its own customer's first
        (0, 0, [(5, 0)], 0),  # first in its line: another customer's messages need not go first
        (2, 0, [(5, 0), (1, 0)], 2 + 2 + 1),  # two full rounds: each other customer's first two (or fewer)
        (2, 0, [(5, 1)], 2 + 5),  # higher priority: all of it goes first
        (2, 1, [(5, 0)], 2),  # lower priority: none of it
        (3, 0, [(9, 0)] * 10, 12),  # counting stops at `enough`
    ],
)
def test_begin_before(ahead: int, priority: int, others: list[tuple[int, int]], before: int) -> None:
    assert begin_before(ahead, priority, others, enough=12) == before


@pytest.mark.parametrize(("rate", "seconds"), [(2, 0.1), (500, 0.25), (0.5, 1.9), (0.5, 2.0), (7.5, 3.3), (1, 0)])
def test_certainly_late_is_where_cannot_begin_within_holds(rate: float, seconds: float) -> None:
    enough = certainly_late(rate, seconds)
    assert all(cannot_begin_within(n, rate, seconds) for n in range(enough, enough + 50))


@settings(max_examples=300, deadline=None)
@given(
    rate=st.integers(min_value=1, max_value=2000),
    asks=st.lists(st.tuples(st.floats(min_value=0, max_value=0.05), st.integers(min_value=0, max_value=200)),
                  min_size=1, max_size=300),
)
def test_pace_keeps_every_sliding_second_within_its_stated_burst(rate: int, asks: list[tuple[float, int]]) -> None:
    # workers asking at random moments for random amounts: what is granted in any sliding second
    # never passes rate x (1 + PACE_AHEAD) + 1, and no grant holds more than pace_batch(rate)
    now, due, granted = 1_780_000_000.0, 0.0, []  # an epoch: its rounding too
    for gap, want in asks:
        now += gap
        n, due = pace(due, now, want, rate)
        assert 0 <= n <= min(want, pace_batch(rate))
        granted += [now] * n
    for i, t in enumerate(granted):
        inside = sum(1 for u in granted[i:] if u < t + 1.0)
        assert inside <= rate * (1 + PACE_AHEAD) + 1


@pytest.mark.parametrize("rate", [1, 7, 100, 300, 500, 2000])
def test_pace_gives_the_whole_rate_to_callers_that_ask_often_enough(rate: int) -> None:
    # asking every PACE_AHEAD / 2 (what SharedWindow does when refused): no send slot is lost
    now, due, total = 1_780_000_000.0, 0.0, 0
    while now < 1_780_000_010.0:
        n, due = pace(due, now, 10**6, rate)
        total += n
        now += PACE_AHEAD / 2
    assert rate * 10 <= total <= rate * (10 + PACE_AHEAD) + 1


async def _window_frees_within_ack(world: World) -> float:
    """Two sends at 2/s fill the window; wait until it frees ACK/2 from now (the loop's clock)."""
    first = [await world.send(dest=f"1198765000{i}") for i in range(2)]  # the fast path, 2 in this second
    assert [r.code for r in first] == [codes.OK, codes.OK]
    await asyncio.sleep(1.0 - ACK / 2)
    return asyncio.get_running_loop().time()


def _timed(world: World) -> Callable[..., Awaitable[tuple[int, float]]]:
    """world.send, answering (code, seconds it took)."""

    async def timed(**params: str) -> tuple[int, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await world.send(**params)
        return result.code, loop.time() - started

    return timed


async def test_a_caller_whose_message_cannot_begin_in_time_hears_wr_at_once(worlds: WorldMaker) -> None:
    """SPEC §11: the caller waits at most ack_timeout. At 2/s with the window freeing ACK/2 from
    now, the customer's next two messages begin in time (held, then OK); a third has those two
    before it and the window frees again only a second after they begin: its caller hears WR as
    soon as it is queued, not at the deadline. Every message still reaches the provider once."""
    doc = base_document()
    connection(doc, "velip")["throughput"] = 2
    world = await worlds(doc)
    await _window_frees_within_ack(world)
    timed = _timed(world)
    queued = [asyncio.ensure_future(timed(dest=f"1198765001{i}")) for i in range(3)]
    answers = await asyncio.gather(*queued)
    assert [code for code, _ in answers[:2]] == [codes.OK, codes.OK]  # held: each began in time
    assert all(ACK / 4 < wait < ACK for _, wait in answers[:2])
    assert answers[2][0] == codes.WR and answers[2][1] < ACK / 4  # WR at once
    await until(lambda: len(world.upstream.sent("velip")) == 5, timeout=10)
    ids = [sms.id for sms in world.upstream.sent("velip")]
    assert len(ids) == len(set(ids)) == 5


async def test_the_other_customers_turns_count_before_a_caller_is_held(worlds: WorldMaker) -> None:
    """The round robin serves each waiting customer in turn: at 2/s with the window freeing
    ACK/2 from now, one message of customer A waiting and one of B's, B's second has B's first
    and A's turn before it: the two places that free in time go to those, so its caller hears WR
    once it is queued (counting B's own alone, it was held). Every message still reaches the
    provider once."""
    doc = base_document()
    connection(doc, "velip")["throughput"] = 2
    world = await worlds(doc)
    await _window_frees_within_ack(world)
    timed = _timed(world)
    a_first = asyncio.ensure_future(timed(dest="11987650011"))
    await asyncio.sleep(0)
    b_first = asyncio.ensure_future(timed(token=OTHER_TOKEN, dest="11987650098"))
    await asyncio.sleep(0)
    code, wait = await timed(token=OTHER_TOKEN, dest="11987650099")
    assert code == codes.WR and wait < ACK / 4  # B's first and A's turn before it: WR at once
    assert [(await a_first)[0], (await b_first)[0]] == [codes.OK, codes.OK]  # first in their lines: in time
    await until(lambda: len(world.upstream.sent("velip")) == 5, timeout=10)
    ids = [sms.id for sms in world.upstream.sent("velip")]
    assert len(ids) == len(set(ids)) == 5


async def test_high_priority_is_served_before_normal(worlds: WorldMaker) -> None:
    doc = base_document()
    connection(doc, "velip")["throughput"] = 50
    customer(doc, 20)["priority"] = "high"
    world = await worlds(doc)
    burst = [asyncio.ensure_future(world.send(dest=f"119876{i:05d}")) for i in range(120)]
    await asyncio.sleep(0.2)
    urgent = await world.send(token=OTHER_TOKEN, dest="11987659999")
    await until(lambda: status(world, urgent.cdls_id) == codes.OK)
    order = [mid for name, mid, _ in world.upstream.started if name == "velip"]
    assert order.index(urgent.cdls_id) == 50  # the first one out of the queue
    await asyncio.gather(*burst)


async def test_a_message_waiting_longer_than_max_queue_time_expires_refunded_once(worlds: WorldMaker) -> None:
    doc = base_document()
    connection(doc, "velip")["max_queue_time"] = 30
    world = await worlds(doc)
    world.upstream.script("velip", Outcome("not_sent", raw="503", retry_after=600))
    result = await world.send()
    world.clock.advance(31)
    await until(lambda: status(world, result.cdls_id) == codes.PROVIDER_ERROR, timeout=3)
    row = world.message(result.cdls_id)
    assert (row["return_log"], row["delivery"]) == ("expired in queue", "rejected")
    assert sorted(refunds(world, result.cdls_id)) == [300, 500] and world.store.t.queue == {}
    await asyncio.sleep(1.2)
    assert sorted(refunds(world, result.cdls_id)) == [300, 500]
    assert len(world.upstream.sent("velip")) == 1


async def test_the_report_shows_every_configured_connection_with_its_queue(world: World) -> None:
    world.upstream.script("velip", Outcome("not_sent", raw="503", retry_after=60))
    await world.send()
    world.clock.advance(12)
    report = await world.dispatcher.report()
    assert set(report) == {"velip", "matrix", "flash", "wavy", "tww", "kannel", "http"}
    assert report["matrix"]["state"] == "idle" and report["matrix"]["queue"] == 0
    velip = report["velip"]
    assert (velip["state"], velip["queue"], velip["oldest_age"]) == ("ok", 1, 12.0)
    assert velip["outcomes"]["not_sent"] == 1
    assert {"consecutive_failures", "sent", "failed", "in_flight"} <= set(velip)
    assert (velip["throughput"], velip["window"], velip["skipped_for"]) == (0.0, 100, 0.0)
    assert isinstance(velip["fallback"], list)
