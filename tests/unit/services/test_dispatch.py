"""Dispatcher over the memory store and a scripted upstream: outcomes settle once, WR finishes in
the background, connections follow their configuration, health counts, drain."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from pombo.domain import codes
from pombo.errors import StoreUnavailable
from pombo.services.auth import Credentials
from pombo.services.dispatch import FAILING_AFTER
from tests.unit.services.conftest import (
    DEST,
    IP,
    NOON,
    TOKEN,
    Outcome,
    World,
    base_document,
    connection,
)

UNITS = 10_000


def refunds(world: World, message_id: int) -> list[int]:
    return [r["amount"] for r in world.store.t.ledger if r["message_id"] == message_id and r["cause"] == "refund"]


async def test_ok_settles_and_reports(world: World) -> None:
    assert world.dispatcher.health == {}
    result = await world.send()
    assert result.code == codes.OK
    assert world.message(result.cdls_id)["return_log"] == "scripted"
    health = world.dispatcher.health["velip"]
    assert (health.state, health.sent, health.failed, health.last_ok_at) == ("ok", 1, 0, NOON)
    assert world.outcomes == [("velip", 0, 0)]
    # already settled: a second outcome changes nothing
    assert not await world.store.settle_ok(message_id=result.cdls_id, upstream_id="x", raw="", now=NOON)
    assert not await world.store.settle_failed(message_id=result.cdls_id, raw="", now=NOON)
    assert refunds(world, result.cdls_id) == []


@pytest.mark.parametrize("kind", ["reject", "crash"])
async def test_failures_answer_300_and_refund_exactly_once(world: World, kind: str) -> None:
    world.upstream.script("velip", Outcome(kind, raw="hard error"))
    result = await world.send()
    assert result.code == codes.PROVIDER_ERROR
    assert sorted(refunds(world, result.cdls_id)) == [300, 500]
    assert not await world.store.settle_failed(message_id=result.cdls_id, raw="again", now=NOON)
    assert not await world.store.settle_ok(message_id=result.cdls_id, upstream_id="u", raw="", now=NOON)
    assert sorted(refunds(world, result.cdls_id)) == [300, 500]
    raw = world.message(result.cdls_id)["return_log"]
    assert raw == ("internal error in connection" if kind == "crash" else "hard error")
    assert world.dispatcher.health["velip"].failed == 1 and world.outcomes == [("velip", 300, 1)]


async def test_an_unknown_outcome_answers_wr_stays_charged_and_is_never_sent_again(world: World) -> None:
    # SPEC §11: a timeout after the request went out may have reached the handset
    world.upstream.script("velip", Outcome("timeout", raw="no answer within 2s"))
    result = await world.send()
    assert result.code == codes.WR
    await world.dispatcher.drain(timeout=2)
    row = world.message(result.cdls_id)
    assert (row["status_code"], row["delivery"]) == (codes.WR, "pending")
    assert refunds(world, result.cdls_id) == [] and await world.balance(11) == 50 * UNITS - 500
    assert len(world.upstream.sent()) == 1 and world.store.t.queue == {}
    assert [(a["kind"], a["raw"]) for a in await world.store.attempts(message_id=result.cdls_id)] == [
        ("unknown", "no answer within 2s")]
    assert world.outcomes == [("velip", codes.WR, 1)] and world.dispatcher.health["velip"].by_kind["unknown"] == 1


async def test_ack_timeout_answers_wr_and_the_outcome_lands_later(world: World) -> None:
    world.upstream.script("velip", Outcome(delay=0.3, upstream_id="u-late"), Outcome("reject", delay=0.3))
    late_ok, late_fail = await world.send(), await world.send(dest="11987654322")
    assert (late_ok.code, late_fail.code) == (codes.WR, codes.WR)
    assert world.dispatcher.in_flight == 2 and "velip" not in world.dispatcher.health
    for message_id in (late_ok.cdls_id, late_fail.cdls_id):
        assert world.message(message_id)["status_code"] == codes.WR
    await asyncio.sleep(0.5)
    assert world.dispatcher.in_flight == 0
    assert (world.message(late_ok.cdls_id)["status_code"], world.message(late_ok.cdls_id)["upstream_id"]) == (
        codes.OK, "u-late")
    assert world.message(late_fail.cdls_id)["status_code"] == codes.PROVIDER_ERROR
    assert sorted(refunds(world, late_fail.cdls_id)) == [300, 500]
    assert sorted(o[1] for o in world.outcomes) == [0, 300]


async def test_the_ack_timeout_runs_from_when_the_request_came_in(world: World) -> None:
    """SPEC §11: the caller waits at most ack_timeout in all. A request that came in 0.08 s
    before its message was handed over (ACK is 0.1 s) hears WR 0.02 s after the hand-over, while
    an answer of the provider 0.05 s later still settles the message OK."""
    world.upstream.script("velip", Outcome(delay=0.05, upstream_id="u-slow"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await world.make_sms(
        params={"dest": DEST, "message": "hello"}, creds=Credentials(token=TOKEN, basic=None, ip=IP),
        received_at=started - 0.08,
    )
    waited = loop.time() - started
    assert result.code == codes.WR and waited < 0.045
    await world.dispatcher.drain(timeout=2)
    assert (world.message(result.cdls_id)["status_code"], world.message(result.cdls_id)["upstream_id"]) == (
        codes.OK, "u-slow")


async def test_a_caller_that_goes_away_does_not_stop_the_send(world: World) -> None:
    world.upstream.script("velip", Outcome(delay=0.05))
    task = asyncio.create_task(world.send())
    await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await world.dispatcher.drain(timeout=2)
    [row] = world.store.t.messages.values()
    assert row["status_code"] == codes.OK


async def test_a_store_that_cannot_take_the_outcome_answers_wr_and_records_it_later(world: World) -> None:
    store = world.store
    settle_ok = store.settle_ok
    calls: list[int] = []

    async def flaky(**kwargs: object) -> bool:
        calls.append(1)
        if len(calls) == 1:
            raise StoreUnavailable("database away")
        return await settle_ok(**kwargs)  # type: ignore[arg-type]

    store.settle_ok = flaky  # type: ignore[method-assign]
    result = await world.send()
    assert result.code == codes.WR and world.message(result.cdls_id)["status_code"] == codes.WR
    await world.dispatcher.drain(timeout=2)
    assert len(calls) == 2 and world.message(result.cdls_id)["status_code"] == codes.OK
    assert world.outcomes == [("velip", 0, 0)]


async def test_connection_is_rebuilt_when_its_configuration_changes(world: World) -> None:
    await world.send(dest="11987650001")
    await world.send(dest="11987650002")
    assert len(world.upstream.built) == 1  # same configuration: same connection
    doc = base_document()
    connection(doc, "velip")["final_timeout"] = 3
    await world.provision(doc)
    await world.send(dest="11987650003")
    first, second = world.upstream.built
    assert (len(first.sent), len(second.sent)) == (2, 1)
    assert second.config.final_timeout == 3 and not first.closed
    await world.dispatcher.drain(timeout=1)
    assert first.closed and second.closed  # the retired one too


async def test_health_goes_failing_after_consecutive_failures_and_back(world: World) -> None:
    world.upstream.script("velip", *[Outcome("reject")] * FAILING_AFTER)
    for i in range(FAILING_AFTER - 1):
        assert (await world.send(dest=f"1198765000{i}")).code == codes.PROVIDER_ERROR
    assert world.dispatcher.health["velip"].state == "ok"
    await world.send(dest="11987650009")
    health = world.dispatcher.health["velip"]
    assert (health.state, health.consecutive_failures, health.failed) == ("failing", FAILING_AFTER, FAILING_AFTER)
    assert health.last_failure_at == NOON and health.last_ok_at is None
    world.clock.advance(1)
    assert (await world.send(dest="11987650010")).code == codes.OK
    assert (health.state, health.consecutive_failures, health.sent, health.last_ok_at) == (
        "ok", 0, FAILING_AFTER + 1, NOON + 1)
    assert [o[2] for o in world.outcomes] == [*range(1, FAILING_AFTER + 1), 0]


async def test_drain_waits_for_background_sends_then_closes(world: World) -> None:
    world.upstream.script("velip", Outcome(delay=0.2))
    result = await world.send()
    assert result.code == codes.WR
    await world.dispatcher.drain(timeout=2)
    assert world.message(result.cdls_id)["status_code"] == codes.OK
    assert world.dispatcher.in_flight == 0 and all(c.closed for c in world.upstream.built)


async def test_drain_gives_up_after_its_timeout(world: World) -> None:
    world.upstream.script("velip", Outcome(delay=0.4))
    result = await world.send()
    await world.dispatcher.drain(timeout=0.05)
    assert world.message(result.cdls_id)["status_code"] == codes.WR  # reconciliation owns it
    assert all(c.closed for c in world.upstream.built)
