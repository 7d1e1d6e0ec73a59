"""Submits (SPEC §12): TON/NPI, data_coding, UDH parts equal to `segments`, outcome kinds."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from pombo.domain import gsm7
from pombo.domain.model import OutboundSms
from pombo.domain.text import encoding_of, segments
from pombo.errors import NotSent, OutcomeUnknown, UpstreamRejected, UpstreamTimeout
from tests.fakes.smsc import Rule
from tests.integration.smpp.conftest import wait_for

DEST = "5511987654321"


def sms(text: str, sender: str | None = None, dest: str = DEST) -> OutboundSms:
    return OutboundSms(id=7, dest=dest, text=text, encoding=encoding_of(text), sender=sender)


@pytest.mark.parametrize(
    ("sender", "source", "ton", "npi"),
    [("Pombo", "Pombo", 5, 0), ("Loja 1", "Loja 1", 5, 0), ("28000", "28000", 3, 0),
     ("123456", "123456", 3, 0), ("1234567", "1234567", 1, 1), ("5511988887777", "5511988887777", 1, 1),
     ("+5511988887777", "5511988887777", 1, 1)],
)
async def test_source_ton_npi(connect, smsc, sender, source, ton, npi):
    conn = await connect()
    await conn.send(sms("hi", sender))
    sub = smsc.submits[0]
    assert (sub.source, sub.source_ton, sub.source_npi) == (source, ton, npi)
    assert (sub.dest, sub.dest_ton, sub.dest_npi) == (DEST, 1, 1)
    assert sub.registered_delivery == 1 and sub.esm_class == 0


async def test_source_addr_setting_when_no_from_and_dest_ton_npi(connect, smsc):
    conn = await connect(source_addr="29292", dest_ton=2, dest_npi=0)
    await conn.send(sms("hi"))
    sub = smsc.submits[0]
    assert (sub.source, sub.source_ton, sub.source_npi, sub.dest_ton, sub.dest_npi) == ("29292", 3, 0, 2, 0)


async def test_gsm7_is_unpacked_septets_with_escapes(connect, smsc):
    conn = await connect()
    await conn.send(sms("@£é{€}\n"))
    sub = smsc.submits[0]
    assert sub.data_coding == 0
    assert sub.short_message == bytes([0x00, 0x01, 0x05, 0x1B, 0x28, 0x1B, 0x65, 0x1B, 0x29, 0x0A])


async def test_ucs2_is_utf16be(connect, smsc):
    conn = await connect()
    await conn.send(sms("ação 😀"))
    sub = smsc.submits[0]
    assert sub.data_coding == 8 and sub.short_message == "ação 😀".encode("utf-16-be")


BODIES = [
    "a" * 160, "a" * 161, "a" * 153 * 3, "a" * (153 * 3 + 1),
    "a" * 152 + "€" + "b" * 10,  # an escape pair at the part boundary moves whole to part 2
    "€" * 80, "€" * 81,
    "ã" * 70, "ã" * 71, "ã" * 67 * 2, "ã" * (67 * 2 + 1),
    "ã" * 66 + "😀" + "x" * 10,  # a surrogate pair at the boundary moves whole to part 2
    "😀" * 35, "😀" * 36,
]


@pytest.mark.parametrize("text", BODIES, ids=lambda t: f"{len(t)}x{t[-1]}")
async def test_parts_equal_segments_and_reassemble(connect, smsc, text):
    conn = await connect()
    ack = await conn.send(sms(text))
    subs = smsc.submits
    assert len(subs) == segments(text)
    assert ack.part_ids == tuple(s.message_id for s in subs) and ack.upstream_id == subs[0].message_id
    if len(subs) == 1:
        assert subs[0].esm_class == 0
        return
    refs = set()
    rebuilt = ""
    for seq, sub in enumerate(subs, start=1):
        udh, payload = sub.short_message[:6], sub.short_message[6:]
        assert sub.esm_class == 0x40 and udh[:3] == b"\x05\x00\x03" and udh[4:] == bytes([len(subs), seq])
        refs.add(udh[3])
        if sub.data_coding == 0:
            assert len(payload) <= 153 and not payload.endswith(b"\x1b")
            rebuilt += gsm7.decode(payload)
        else:
            assert sub.data_coding == 8 and len(payload) <= 134
            rebuilt += payload.decode("utf-16-be")  # strict: a split surrogate pair would raise
    assert len(refs) == 1 and rebuilt == text


async def test_reference_changes_between_messages(connect, smsc):
    conn = await connect()
    await conn.send(sms("a" * 200))
    await conn.send(sms("a" * 200))
    assert smsc.submits[0].short_message[3] != smsc.submits[2].short_message[3]


@pytest.mark.parametrize("status", [0x58, 0x14])
async def test_throttled_and_queue_full_are_not_sent(connect, smsc, status):
    conn = await connect()
    smsc.default = Rule(status=status)
    with pytest.raises(NotSent) as caught:
        await conn.send(sms("hi"))
    assert caught.value.raw == {0x58: "ESME_RTHROTTLED (0x00000058)", 0x14: "ESME_RMSGQFUL (0x00000014)"}[status]


@pytest.mark.parametrize(("status", "raw"), [(0x0B, "ESME_RINVDSTADR (0x0000000B)"), (0x45, "ESME_RSUBMITFAIL (0x00000045)"),
                                             (0x0400, "ESME_UNKNOWN (0x00000400)")])
async def test_other_errors_are_rejected_with_the_name(connect, smsc, status, raw):
    conn = await connect()
    smsc.default = Rule(status=status)
    with pytest.raises(UpstreamRejected) as caught:
        await conn.send(sms("hi"))
    assert caught.value.raw == raw and not isinstance(caught.value, NotSent)


async def test_no_answer_within_final_timeout_is_unknown(connect, smsc):
    conn = await connect(final_timeout=0.5)
    smsc.default = Rule(answer=False)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(UpstreamTimeout, match=r"no submit_sm_resp within 0\.5s"):
        await conn.send(sms("hi"))
    assert 0.45 < loop.time() - start < 1.5
    assert len(smsc.submits) == 1


async def test_bind_lost_while_waiting_is_unknown(connect, smsc):
    conn = await connect()
    smsc.default = Rule(drop=True)
    with pytest.raises(OutcomeUnknown, match="bind lost after submit_sm was written"):
        await conn.send(sms("hi"))


async def test_no_live_bind_is_not_sent(connect, smsc):
    conn = await connect()
    await smsc.stop()
    await wait_for(lambda: conn.bind_states() == ["down"])
    with pytest.raises(NotSent, match="no live bind"):
        await conn.send(sms("hi"))
    assert len(smsc.submits) == 0


async def test_window_full_until_final_timeout_is_not_sent(connect, smsc):
    conn = await connect(window=2, final_timeout=1.0)
    smsc.default = Rule(answer=False)
    waiting = [asyncio.create_task(conn.send(sms("hi"))) for _ in range(2)]
    await wait_for(lambda: len(smsc.submits) == 2)
    conn.config = dataclasses.replace(conn.config, final_timeout=0.3)  # the third gives up first
    with pytest.raises(NotSent, match="window full"):
        await conn.send(sms("third"))
    assert len(smsc.submits) == 2
    for task in waiting:
        with pytest.raises(UpstreamTimeout):
            await task


async def test_window_slot_freed_by_an_answer_is_reused(connect, smsc):
    conn = await connect(window=1)
    smsc.rules["5511900000001"] = Rule(answer=False)
    slow = asyncio.create_task(conn.send(sms("hi", dest="5511900000001")))
    await wait_for(lambda: len(smsc.submits) == 1)
    blocked = asyncio.create_task(conn.send(sms("next")))
    await asyncio.sleep(0.1)
    assert len(smsc.submits) == 1  # waits for the slot
    slow.cancel()
    await blocked
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert len(smsc.submits) == 2


async def test_later_part_refused_is_rejected_naming_the_accepted_parts(connect, smsc):
    conn = await connect()
    smsc.default = Rule()
    original = smsc._submit

    def second_throttled(session, sm):
        if len(smsc.submits) == 1:
            smsc.rules[sm.dest] = Rule(status=0x58)
        return original(session, sm)

    smsc._submit = second_throttled
    with pytest.raises(UpstreamRejected, match=r"part 2/2: ESME_RTHROTTLED \(0x00000058\); accepted A"):
        await conn.send(sms("a" * 200))
