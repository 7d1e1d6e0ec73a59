"""DeliveryReports over the memory store: the secret, each kind's payload, forward-only moves,
unknown ids (SPEC §8)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pombo.domain import delivery
from pombo.domain.delivery import StatusReport
from pombo.services.dlr import Forbidden
from tests.unit.services.conftest import World, WorldMaker, base_document, customer


async def routed(worlds: WorldMaker, name: str, sends: int = 1) -> tuple[World, list[int]]:
    """A world whose customer 11 sends through `name`, with `sends` messages accepted there."""
    doc = base_document()
    customer(doc, 11)["sms_provider"] = name
    world = await worlds(doc)
    ids = [(await world.send(dest=f"1198765432{i}")).cdls_id for i in range(sends)]
    return world, ids


async def push(world: World, connection: str, *, secret: str | None = None, body: Any = None,
               **params: str) -> int:
    raw = b"" if body is None else orjson.dumps(body)
    return await world.dlr.receive(connection=connection, secret=secret or f"{connection}-secret",
                                   params=params, body=raw)


@pytest.mark.parametrize(("connection", "secret"), [("kannel", "wrong"), ("kannel", ""), ("nope", "x"),
                                                    ("kannel", "kannel-secret\x00"), ("velip", "")])
async def test_unknown_connection_or_wrong_secret_is_forbidden_and_changes_nothing(
    worlds: WorldMaker, connection: str, secret: str
) -> None:
    world, [message_id] = await routed(worlds, "kannel")
    with pytest.raises(Forbidden):
        await world.dlr.receive(connection=connection, secret=secret, params={"id": str(message_id), "type": "1"},
                                body=b"")
    assert world.store.t.reports == [] and world.message(message_id)["delivery"] == delivery.PENDING


async def test_the_provisioned_secret_is_accepted(worlds: WorldMaker) -> None:
    world, [message_id] = await routed(worlds, "kannel")
    assert await push(world, "kannel", id=str(message_id), type="1") == 1
    assert world.message(message_id)["delivery"] == delivery.DELIVERED


@pytest.mark.parametrize(
    ("item", "states"),
    [({"sentStatusCode": 2}, "sent"), ({"sentStatusCode": 101}, "expired"), ({"sentStatusCode": 150}, "rejected"),
     ({"sentStatusCode": 301}, "rejected"), ({"sentStatusCode": 2, "deliveredStatusCode": 4}, "delivered"),
     ({"sentStatusCode": "2", "deliveredStatusCode": "104"}, "undelivered"), ({"sentStatusCode": 999}, "pending"),
     ({}, "pending")],
)
async def test_wavy_states(worlds: WorldMaker, item: dict[str, Any], states: str) -> None:
    world, [message_id] = await routed(worlds, "wavy")
    await push(world, "wavy", body={"correlationId": str(message_id), **item})
    assert world.message(message_id)["delivery"] == states
    assert len(world.store.t.reports) == max(1, len([k for k in item if k]))


async def test_wavy_list_payload_and_lookup_by_upstream_id(worlds: WorldMaker) -> None:
    world, [first, second] = await routed(worlds, "wavy", sends=2)
    moved = await push(world, "wavy", body=[
        {"correlationId": str(first), "sentStatusCode": 2, "deliveredStatusCode": 4},
        {"id": f"up-{second}", "sentStatusCode": 2},
    ])
    assert moved == 3
    assert world.message(first)["delivery"] == delivery.DELIVERED
    assert world.message(second)["delivery"] == delivery.SENT
    assert world.message(first)["sent_at"] == world.message(first)["final_at"] == world.clock.now()


async def test_wavy_body_that_is_not_json_is_kept_and_moves_nothing(worlds: WorldMaker) -> None:
    world, [message_id] = await routed(worlds, "wavy")
    moved = await world.dlr.receive(connection="wavy", secret="wavy-secret", params={}, body=b"{not json")
    assert moved == 0 and world.message(message_id)["delivery"] == delivery.PENDING
    [report] = world.store.t.reports
    assert (report["message_id"], report["state"], report["raw"]) == (None, None, "\n{not json")


@pytest.mark.parametrize(("typ", "state"), [("1", "delivered"), ("2", "undelivered"), ("8", "sent"),
                                            ("16", "rejected"), ("4", "pending"), ("", "pending"),
                                            ("x", "pending")])
async def test_kannel_types(worlds: WorldMaker, typ: str, state: str) -> None:
    world, [message_id] = await routed(worlds, "kannel")
    moved = await push(world, "kannel", id=str(message_id), type=typ)
    assert world.message(message_id)["delivery"] == state and moved == (state != "pending")
    assert world.store.t.reports[-1]["raw"] == f"id={message_id}&type={typ}"


async def test_kannel_type_is_a_bit_mask(worlds: WorldMaker) -> None:
    world, [message_id] = await routed(worlds, "kannel")
    await push(world, "kannel", id=str(message_id), type="34")
    assert world.message(message_id)["delivery"] == delivery.EXPIRED


async def test_kannel_receipt_stat_decides(worlds: WorldMaker) -> None:
    world, [message_id] = await routed(worlds, "kannel")
    await push(world, "kannel", id=str(message_id), type="2", answer="id:1 sub:001 dlvrd:000 stat:REJECTD err:000")
    assert world.message(message_id)["delivery"] == delivery.REJECTED


@pytest.mark.parametrize(("fields", "state"), [({"st": "DELIVRD"}, "delivered"), ({"st": "expired"}, "expired"),
                                               ({"st": "Sent"}, "sent"), ({"st": "BOGUS"}, "pending"),
                                               ({"status": "DELIVRD"}, "pending")])
async def test_http_template_mapping(worlds: WorldMaker, fields: dict[str, str], state: str) -> None:
    world, [message_id] = await routed(worlds, "http")
    await push(world, "http", ref=str(message_id), **fields)
    assert world.message(message_id)["delivery"] == state


async def test_http_template_reads_a_json_body_too(worlds: WorldMaker) -> None:
    world, [message_id] = await routed(worlds, "http")
    assert await push(world, "http", body={"ref": message_id, "st": "DELIVRD"}) == 1
    assert world.message(message_id)["delivery"] == delivery.DELIVERED


async def test_states_only_move_forward(worlds: WorldMaker) -> None:
    world, [message_id] = await routed(worlds, "kannel")
    assert await push(world, "kannel", id=str(message_id), type="8") == 1  # pending -> sent
    assert await push(world, "kannel", id=str(message_id), type="8") == 0  # sent again: nothing
    assert await push(world, "kannel", id=str(message_id), type="1") == 1  # sent -> delivered
    sent_at = world.message(message_id)["sent_at"]
    for typ in ("8", "2", "16"):
        world.clock.advance(1)
        assert await push(world, "kannel", id=str(message_id), type=typ) == 0  # final never changes
    row = world.message(message_id)
    assert (row["delivery"], row["sent_at"]) == (delivery.DELIVERED, sent_at)
    assert len(world.store.t.reports) == 6  # every report is kept, moved or not


async def test_pending_may_jump_to_a_final_state(worlds: WorldMaker) -> None:
    world, [message_id] = await routed(worlds, "kannel")
    assert await push(world, "kannel", id=str(message_id), type="2") == 1
    row = world.message(message_id)
    assert (row["delivery"], row["final_at"], row["sent_at"]) == (delivery.UNDELIVERED, world.clock.now(), None)


@pytest.mark.parametrize("ref", ["999999", "0", "-1", "abc", ""])
async def test_unknown_ids_are_kept_without_a_message(worlds: WorldMaker, ref: str) -> None:
    world, [message_id] = await routed(worlds, "kannel")
    assert await push(world, "kannel", id=ref, type="1") == 0
    assert world.store.t.reports[-1]["message_id"] is None
    assert world.message(message_id)["delivery"] == delivery.PENDING


async def test_a_report_on_another_connection_does_not_touch_the_message(worlds: WorldMaker) -> None:
    world, [message_id] = await routed(worlds, "kannel")
    assert await push(world, "http", ref=str(message_id), st="DELIVRD") == 0
    assert world.message(message_id)["delivery"] == delivery.PENDING


async def test_apply_moves_state_by_state_and_counts(worlds: WorldMaker) -> None:
    world, [message_id] = await routed(worlds, "tww")
    report = StatusReport(message_id, None, (delivery.SENT, delivery.DELIVERED), raw="CL")
    assert await world.dlr.apply("tww", [report, StatusReport(None, "nobody", ())]) == 2
    assert world.message(message_id)["delivery"] == delivery.DELIVERED
    assert [r["state"] for r in world.store.t.reports] == ["sent", "delivered", None]


async def test_a_rejected_report_refunds_the_chain_once(worlds: WorldMaker) -> None:
    world, [message_id] = await routed(worlds, "kannel")
    await push(world, "kannel", id=str(message_id), type="16")
    await push(world, "kannel", id=str(message_id), type="16")
    refunds = sorted(r["amount"] for r in world.store.t.ledger
                     if r["message_id"] == message_id and r["cause"] == "refund")
    assert refunds == [300, 500]
    assert world.message(message_id)["status_code"] == 0  # the caller was told OK
