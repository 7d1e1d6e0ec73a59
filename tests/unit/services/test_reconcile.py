"""Reconciler over the memory store: orphans are claimed once, asked about, settled or marked
unknown, never resent; TWW-like connections are polled."""

from __future__ import annotations

import pytest

from pombo.domain import codes, delivery
from pombo.domain.delivery import StatusReport
from pombo.ports import AcceptSpec, UpstreamTimeout
from pombo.services.reconcile import GIVE_UP_AFTER, GRACE
from tests.unit.services.conftest import NDEST, World, WorldMaker

FINAL_TIMEOUT = 2.0  # the longest final_timeout of the default world's connections
PAST_GRACE = FINAL_TIMEOUT + GRACE + 1


async def orphan(world: World, connection: str, *, dest: str = NDEST) -> int:
    """A message accepted and charged whose sending process died before it was settled."""
    spec = AcceptSpec(customer_id=11, user_id=None, dest=dest, text="hi", ctid=None, cp_id=None, cd_id=None,
                      sender=None, connection=connection, httpdup=0, night_since=None, night_limit=None,
                      debits=[(11, 500), (10, 300)], cost=0, segments=1, encoding="GSM-7",
                      now=world.clock.now())
    message_id = await world.store.accept(spec)
    assert isinstance(message_id, int)
    return message_id


def refunds(world: World, message_id: int) -> list[int]:
    return sorted(r["amount"] for r in world.store.t.ledger if r["message_id"] == message_id
                  and r["cause"] == "refund")


@pytest.mark.parametrize("connection", ["velip", "kannel", "http"])
async def test_kinds_without_a_status_query_become_unknown_and_stay_charged(world: World, connection: str) -> None:
    message_id = await orphan(world, connection)
    world.clock.advance(PAST_GRACE)
    assert await world.reconciler.run_once() == {"ok": 0, "failed": 0, "unknown": 1, "later": 0}
    row = world.message(message_id)
    assert (row["status_code"], row["delivery"]) == (codes.WR, delivery.UNKNOWN)
    assert refunds(world, message_id) == [] and world.upstream.sent() == []  # never resent


async def test_young_messages_and_settled_ones_are_not_orphans(world: World) -> None:
    young = await orphan(world, "kannel")
    settled = (await world.send(dest="11987654322")).cdls_id
    world.clock.advance(PAST_GRACE - 2)
    assert sum((await world.reconciler.run_once()).values()) == 0
    world.clock.advance(2)
    assert (await world.reconciler.run_once())["unknown"] == 1
    assert world.message(young)["delivery"] == delivery.UNKNOWN
    assert world.message(settled)["delivery"] == delivery.PENDING


async def test_accepted_at_the_provider_settles_ok_with_its_delivery_state(world: World) -> None:
    message_id = await orphan(world, "wavy")
    world.upstream.statuses[message_id] = StatusReport(message_id, "w-9", ("sent", "delivered"), raw="found it")
    world.clock.advance(PAST_GRACE)
    assert (await world.reconciler.run_once())["ok"] == 1
    row = world.message(message_id)
    assert (row["status_code"], row["upstream_id"], row["delivery"], row["return_log"]) == (
        codes.OK, "w-9", delivery.DELIVERED, "reconciled: found it")
    assert refunds(world, message_id) == []


async def test_refused_at_the_provider_is_300_refunded(world: World) -> None:
    message_id = await orphan(world, "tww")
    world.upstream.statuses[message_id] = StatusReport(message_id, None, (), accepted=False, raw="NOK")
    world.clock.advance(PAST_GRACE)
    assert (await world.reconciler.run_once())["failed"] == 1
    row = world.message(message_id)
    assert (row["status_code"], row["delivery"], row["return_log"]) == (300, "rejected", "reconciled: NOK")
    assert refunds(world, message_id) == [300, 500]


async def test_not_found_waits_then_is_300_refunded(worlds: WorldMaker) -> None:
    world: World = await worlds(not_found_after=120.0)
    message_id = await orphan(world, "wavy")
    world.upstream.statuses[message_id] = None
    world.clock.advance(PAST_GRACE)
    assert (await world.reconciler.run_once())["later"] == 1
    assert sum((await world.reconciler.run_once()).values()) == 0  # claimed for a minute
    world.clock.advance(61)
    assert (await world.reconciler.run_once())["later"] == 1  # still young for "not found"
    assert world.message(message_id)["status_code"] == codes.WR
    world.clock.advance(61)
    assert (await world.reconciler.run_once())["failed"] == 1
    row = world.message(message_id)
    assert (row["status_code"], row["return_log"]) == (300, "not found at the provider when reconciling")
    assert refunds(world, message_id) == [300, 500]


async def test_a_provider_that_cannot_be_asked_is_retried_then_unknown(world: World) -> None:
    message_id = await orphan(world, "wavy")
    world.upstream.statuses[message_id] = UpstreamTimeout()
    world.clock.advance(PAST_GRACE)
    assert (await world.reconciler.run_once())["later"] == 1
    world.clock.advance(GIVE_UP_AFTER)
    assert (await world.reconciler.run_once())["unknown"] == 1
    assert world.message(message_id)["delivery"] == delivery.UNKNOWN


async def test_a_message_of_a_removed_connection_is_unknown(world: World) -> None:
    message_id = await orphan(world, "gone")
    world.clock.advance(PAST_GRACE)
    assert (await world.reconciler.run_once())["unknown"] == 1
    assert world.message(message_id)["delivery"] == delivery.UNKNOWN


async def test_poll_applies_unread_reports_of_pollable_connections(world: World) -> None:
    message_id = await orphan(world, "tww")
    await world.store.settle_ok(message_id=message_id, upstream_id="t-1", raw="OK", now=world.clock.now())
    world.upstream.unread["tww"] = [StatusReport(None, "t-1", ("delivered",), raw="CL")]
    assert await world.reconciler.poll() == 1
    assert world.message(message_id)["delivery"] == delivery.DELIVERED
    assert await world.reconciler.poll() == 0  # read once
