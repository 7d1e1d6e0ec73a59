"""Receipts and inbound messages (SPEC §12): matched by receipted_message_id or `id:` in hex or
decimal, every stat: word, multi-part settling, early receipts, unmatched ones answered, MO."""

from __future__ import annotations

import pytest

from pombo.domain.model import OutboundSms
from pombo.domain.text import encoding_of
from tests.fakes.smsc import Rule
from tests.integration.smpp.conftest import wait_for

DEST = "5511987654321"


def sms(text: str = "hi", message_id: int = 42) -> OutboundSms:
    return OutboundSms(id=message_id, dest=DEST, text=text, encoding=encoding_of(text))


@pytest.mark.parametrize("id_form", ["hex", "lower", "dec", "tlv"])
async def test_receipt_matched_by_any_id_form(connect, smsc, seen, id_form):
    smsc.default = Rule(stat="DELIVRD", id_form=id_form, delay=0.05)
    conn = await connect()
    ack = await conn.send(sms())
    await wait_for(lambda: seen.receipts)
    assert seen.receipts[0][:3] == (42, ack.upstream_id, "delivered")
    assert smsc.deliver_answers == [(0x80000005, 0)]


@pytest.mark.parametrize(
    ("stat", "state"),
    [("ENROUTE", "sent"), ("ACCEPTD", "sent"), ("DELIVRD", "delivered"), ("UNDELIV", "undelivered"),
     ("DELETED", "undelivered"), ("EXPIRED", "expired"), ("REJECTD", "rejected"), ("UNKNOWN", "unknown")],
)
async def test_every_stat_word(connect, smsc, seen, stat, state):
    smsc.default = Rule(stat=stat, delay=0.05)
    conn = await connect()
    await conn.send(sms())
    await wait_for(lambda: seen.receipts)
    assert seen.receipts[0][2] == state


async def test_receipt_as_data_sm_is_answered_data_sm_resp(connect, smsc, seen):
    smsc.default = Rule(stat="DELIVRD", as_data_sm=True, delay=0.05)
    conn = await connect()
    await conn.send(sms())
    await wait_for(lambda: seen.receipts)
    assert seen.receipts[0][2] == "delivered" and smsc.deliver_answers == [(0x80000103, 0)]


async def test_multipart_delivered_only_when_every_part_is(connect, smsc, seen):
    smsc.default = Rule(stat="DELIVRD", delay=0.05)
    conn = await connect()
    ack = await conn.send(sms("a" * 400))  # 3 parts
    await wait_for(lambda: len(seen.receipts) == 3)
    assert [r[2] for r in seen.receipts] == [None, None, "delivered"]
    assert {r[:2] for r in seen.receipts} == {(42, ack.part_ids[0])}


async def test_multipart_any_failed_part_makes_it_that_state(connect, smsc, seen):
    conn = await connect()
    smsc.default = Rule(stat="DELIVRD", delay=0.3)
    original = smsc._submit

    def second_undelivered(session, sm):
        smsc.default = Rule(stat="UNDELIV", delay=0.05) if len(smsc.submits) == 1 else Rule(stat="DELIVRD", delay=0.3)
        return original(session, sm)

    smsc._submit = second_undelivered
    await conn.send(sms("a" * 400))
    await wait_for(lambda: len(smsc.deliver_answers) == 3)
    assert next(r[2] for r in seen.receipts) == "undelivered"
    assert all(r[0] == 42 for r in seen.receipts[:1])
    # the parts delivered after the failure no longer name the message (it is settled)
    assert [r[0] for r in seen.receipts[1:]] == [None, None]


async def test_receipt_before_the_submit_sm_resp_is_kept_and_applied(connect, smsc, seen):
    smsc.default = Rule(stat="DELIVRD", receipt_first=True)
    conn = await connect()
    ack = await conn.send(sms())
    await wait_for(lambda: seen.receipts)
    assert seen.receipts[0][:3] == (42, ack.upstream_id, "delivered")
    assert smsc.deliver_answers == [(0x80000005, 0)]


async def test_unknown_id_is_handed_over_by_upstream_id_and_answered(connect, smsc, seen):
    await connect()
    status = await smsc.receipt(smsc.bound()[0], Rule(stat="DELIVRD"), "00FFEE", DEST)
    assert status == 0
    assert seen.receipts == [(None, "00FFEE", "delivered", seen.receipts[0][3])]


async def test_receipt_without_any_id_is_answered(connect, smsc, seen):
    await connect()
    assert await smsc.mo(DEST, "Pombo", b"stat:DELIVRD", esm_class=0x04) == 0
    assert seen.receipts == []


async def test_services_failing_answers_temporary_error(connect, smsc, seen):
    await connect()
    seen.fail_receipts = True
    status = await smsc.receipt(smsc.bound()[0], Rule(stat="DELIVRD"), "00FFEE", DEST)
    assert status == 0x64  # ESME_RX_T_APPN: the SMSC sends it again later


async def test_mo_messages_are_handed_over_and_answered(connect, smsc, seen):
    await connect()
    assert await smsc.mo("5511988887777", "28000", "SAIR {já}".encode("utf-16-be"), coding=8) == 0
    assert await smsc.mo("5511988887777", "28000", bytes([0x53, 0x1B, 0x65, 0x00])) == 0  # S€@ in GSM
    assert [(s, d, t) for s, d, t, _raw in seen.inbound] == [
        ("5511988887777", "28000", "SAIR {já}"), ("5511988887777", "28000", "S€@")]


async def test_mo_with_udh_drops_the_header(connect, smsc, seen):
    await connect()
    assert await smsc.mo("5511988887777", "28000", b"\x05\x00\x03\x01\x02\x01" + b"Oi", esm_class=0x40) == 0
    assert seen.inbound[0][2] == "Oi"
