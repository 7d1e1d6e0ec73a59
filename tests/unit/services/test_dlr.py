"""DeliveryReports over the memory store: the secret, each kind's payload, forward-only moves,
unknown ids (SPEC §8)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from structlog.testing import capture_logs

from pombo.domain import codes, delivery
from pombo.domain.delivery import StatusReport
from pombo.services.dlr import Forbidden
from tests.unit.services.conftest import ACK, Outcome, World, WorldMaker, base_document, customer


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
                                            ("x", "pending"), ("34", "expired"), ("66", "pending"),
                                            ("12", "sent"), ("0", "pending")])
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


RECEIPT = "id:7f3a sub:001 dlvrd:000 submit date:2401021530 done date:2401021531 stat:{} err:000 text:Seu codigo"


@pytest.mark.parametrize(
    ("typ", "stat", "state"),
    [("4", "ENROUTE", "sent"), ("4", "ACCEPTD", "sent"), ("1", "DELIVRD", "delivered"), ("2", "UNDELIV", "undelivered"),
     ("2", "DELETED", "undelivered"), ("34", "EXPIRED", "expired"), ("2", "REJECTD", "rejected"),
     ("2", "rejectd", "rejected"), ("2", "UNKNOWN", "pending"), ("2", "BOGUS", "undelivered")],
)
async def test_kannel_receipt_text_decides_over_the_mask(worlds: WorldMaker, typ: str, stat: str, state: str) -> None:
    world, [message_id] = await routed(worlds, "kannel")
    answer = RECEIPT.format(stat)
    await push(world, "kannel", id=str(message_id), type=typ, answer=answer)
    assert world.message(message_id)["delivery"] == state
    report = world.store.t.reports[-1]
    assert report["raw"] == f"id={message_id}&type={typ}&answer={answer}"  # the receipt is kept as it came
    assert report["state"] == ("unknown" if stat == "UNKNOWN" else state)  # unknown is kept, moves nothing


@pytest.mark.parametrize(("typ", "answer"), [("16", "NACK/0x0000000b/Invalid Destination Address"),
                                             ("2", RECEIPT.format("REJECTD"))])
async def test_a_kannel_rejection_refunds_once_and_keeps_ok(worlds: WorldMaker, typ: str, answer: str) -> None:
    world, [message_id] = await routed(worlds, "kannel")
    assert world.message(message_id)["status_code"] == codes.OK
    assert await push(world, "kannel", id=str(message_id), type=typ, answer=answer) == 1
    assert await push(world, "kannel", id=str(message_id), type="16") == 0  # once
    assert sorted(r["amount"] for r in world.store.t.ledger
                  if r["message_id"] == message_id and r["cause"] == "refund") == [300, 500]
    assert (await world.balance(11), await world.balance(10)) == (500_000, 1_000_000)  # as before the send
    assert (world.message(message_id)["status_code"], world.message(message_id)["delivery"]) == (codes.OK, "rejected")


@pytest.mark.parametrize(("typ", "state"), [("2", "undelivered"), ("34", "expired")])
async def test_undelivered_and_expired_are_not_refunded(worlds: WorldMaker, typ: str, state: str) -> None:
    world, [message_id] = await routed(worlds, "kannel")
    assert await push(world, "kannel", id=str(message_id), type=typ) == 1
    assert world.message(message_id)["delivery"] == state
    assert [r for r in world.store.t.ledger if r["cause"] == "refund"] == []


async def test_a_report_settles_a_waiting_message_ok(worlds: WorldMaker) -> None:
    doc = base_document()
    customer(doc, 11)["sms_provider"] = "kannel"
    world = await worlds(doc)
    world.upstream.script("kannel", Outcome(delay=ACK * 4))  # answers after the caller heard WR
    sent = await world.send()
    assert sent.code == codes.WR and world.message(sent.cdls_id)["status_code"] == codes.WR
    assert await push(world, "kannel", id=str(sent.cdls_id), type="8", answer="ACK/") == 1
    row = world.message(sent.cdls_id)
    assert (row["status_code"], row["delivery"], row["return_log"]) == (codes.OK, "sent", f"id={sent.cdls_id}&type=8&answer=ACK/")
    await asyncio.sleep(ACK * 6)  # the late acceptance finds it settled: nothing changes
    assert (world.message(sent.cdls_id)["status_code"], world.message(sent.cdls_id)["delivery"]) == (codes.OK, "sent")
    assert [r for r in world.store.t.ledger if r["cause"] == "refund"] == []


async def test_a_report_after_unknown_still_moves_the_message(worlds: WorldMaker) -> None:
    world, [message_id] = await routed(worlds, "kannel")
    world.message(message_id).update(status_code=codes.WR, delivery=delivery.UNKNOWN)  # as a lost outcome leaves it
    assert await push(world, "kannel", id=str(message_id), type="34") == 1
    assert (world.message(message_id)["status_code"], world.message(message_id)["delivery"]) == (codes.OK, "expired")


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


# ------------------------------------------------------------ Kannel's parts against the charge (issue 13)


async def long_on_kannel(worlds: WorldMaker, *bodies: str) -> tuple[World, list[int]]:
    doc = base_document()
    customer(doc, 11).update(sms_provider="kannel", max_length=1000)
    world = await worlds(doc)
    ids = []
    for i, body in enumerate(bodies):
        result = await world.send(dest=f"1198765432{i}", message=body)
        assert result.code == codes.OK
        ids.append(result.cdls_id)
    return world, ids


async def test_kannel_reporting_fewer_parts_than_charged_is_warned_once(worlds: WorldMaker) -> None:
    """A Kannel at its sendsms-user defaults sends a 2-segment body as one 160-character part:
    one final receipt comes back. Once the receipts settle, a warning names the message and
    the numbers (never the text or a secret), and the connection's count grows by one."""
    world, [short, full, single] = await long_on_kannel(worlds, "x" * 300, "ação " * 20, "hi")
    assert [world.message(i)["segments"] for i in (short, full, single)] == [2, 2, 1]
    for message_id, receipts in ((short, 1), (full, 2), (single, 1)):
        assert await push(world, "kannel", id=str(message_id), type="8", answer="ACK/") in (0, 1)  # not a part
        for _ in range(receipts):
            await push(world, "kannel", id=str(message_id), type="1", answer="id:9 sub:001 dlvrd:001 stat:DELIVRD")
    assert await world.dlr.settle_parts() == 0  # too early: another part's receipt may still come
    world.clock.advance(61)
    with capture_logs() as logs:
        assert await world.dlr.settle_parts() == 1
        assert await world.dlr.settle_parts() == 0  # once
    [event] = [e for e in logs if e["event"] == "kannel_parts_short"]
    assert (event["log_level"], event["connection"], event["cdls_id"]) == ("warning", "kannel", short)
    assert (event["charged_segments"], event["reported_parts"]) == (2, 1)
    assert "x" * 20 not in str(event) and "kannel-secret" not in str(event)
    warning = world.store.t.part_warnings["kannel"]
    assert (warning["count"], warning["message_id"], warning["segments"], warning["parts"]) == (1, short, 2, 1)
    assert world.store.t.kannel_parts == {}


async def test_a_kannel_report_settles_the_parts_of_earlier_messages(worlds: WorldMaker) -> None:
    world, [first, second] = await long_on_kannel(worlds, "y" * 200, "z" * 200)
    await push(world, "kannel", id=str(first), type="2")
    world.clock.advance(61)
    with capture_logs() as logs:
        await push(world, "kannel", id=str(second), type="1")  # judges the first, not the second yet
    assert [e["cdls_id"] for e in logs if e["event"] == "kannel_parts_short"] == [first]
    assert list(world.store.t.kannel_parts) == [second]


async def test_parts_are_counted_for_kannel_connections_only(worlds: WorldMaker) -> None:
    doc = base_document()
    customer(doc, 11).update(sms_provider="http", max_length=1000)
    world = await worlds(doc)
    result = await world.send(message="w" * 200)
    await push(world, "http", id=str(result.cdls_id), status="delivered")
    assert world.store.t.kannel_parts == {}
