"""Binds (SPEC §12): bind_transceiver with the credentials, N binds, enquire_link both ways,
re-bind with backoff, unbind at close, generic_nack, and no password in a repr or a log."""

from __future__ import annotations

import asyncio
import logging

import pytest
import structlog
from structlog.testing import LogCapture

from pombo.adapters.connections.smpp import SmppConnection, SmppHooks
from pombo.adapters.connections.smpp import connection as connection_module
from pombo.adapters.connections.smpp import session as session_module
from pombo.domain.model import OutboundSms
from pombo.errors import NotSent
from tests.fakes.smsc import HEADER
from tests.integration.smpp.conftest import smpp_config, wait_for


async def test_binds_transceiver_sessions_with_the_credentials(connect, smsc):
    conn = await connect(binds=3)
    assert conn.bind_states() == ["bound"] * 3
    assert [a[1:] for a in smsc.bind_attempts] == [("pombo", "s3cr3t", "VMA")] * 3
    assert len(smsc.bound()) == 3


async def test_submits_spread_over_the_binds(connect, smsc):
    conn = await connect(binds=2)
    smsc.default.answer = False
    sends = [asyncio.create_task(conn.send(OutboundSms(i, "5511987654321", "x", "GSM-7"))) for i in range(4)]
    await wait_for(lambda: len(smsc.submits) == 4)
    assert sorted(b.free for b in conn.binds if b) == [98, 98]
    for task in sends:
        task.cancel()


async def test_close_unbinds_every_bind(connect, smsc):
    conn = await connect(binds=2)
    await conn.close()
    assert smsc.unbinds == 2
    assert conn.bind_states() == ["down", "down"]


async def test_enquire_link_every_n_seconds_and_the_smscs_is_answered(connect, smsc):
    await connect(enquire_link=0.1)
    await wait_for(lambda: smsc.enquire_links >= 3, timeout=2)
    assert await smsc.enquire() == 0


async def test_unanswered_enquire_link_drops_the_bind_and_it_comes_back(connect, smsc):
    conn = await connect(enquire_link=0.2)
    smsc.answer_enquire = False
    await wait_for(lambda: conn.bind_states() != ["bound"], timeout=2)
    smsc.answer_enquire = True
    await wait_for(lambda: conn.bind_states() == ["bound"] and len(smsc.bind_attempts) == 2, timeout=3)


async def test_dropped_bind_is_reopened_after_one_second(connect, smsc):
    conn = await connect()
    smsc.drop_all()
    await wait_for(lambda: conn.bind_states() == ["down"])
    await wait_for(lambda: conn.bind_states() == ["bound"], timeout=3)
    gap = smsc.bind_attempts[1][0] - smsc.bind_attempts[0][0]
    assert len(smsc.bind_attempts) == 2 and gap >= 1.0


async def test_refused_bind_backs_off_doubling(smsc, seen):
    smsc.bind_status = 0x0E  # ESME_RINVPASWD
    conn = SmppConnection(smpp_config(smsc.port), hooks=SmppHooks(seen.on_receipt, seen.on_inbound))
    conn.start()
    await wait_for(lambda: len(smsc.bind_attempts) == 3, timeout=5)
    times = [a[0] for a in smsc.bind_attempts]
    assert 0.9 <= times[1] - times[0] < 1.5 and 1.9 <= times[2] - times[1] < 2.5
    with pytest.raises(NotSent, match="no live bind"):
        await conn.send(OutboundSms(1, "5511987654321", "x", "GSM-7"))
    await conn.close()


def test_backoff_is_capped_at_sixty_seconds():
    assert (SmppConnection.backoff_first, SmppConnection.backoff_max) == (1.0, 60.0)


async def test_unknown_command_from_the_smsc_gets_generic_nack(connect, smsc):
    await connect()
    session = smsc.bound()[0]
    loop = asyncio.get_running_loop()
    answer = loop.create_future()
    seq = session.send(0x00000103 + 0x1000)  # not a command SMPP 3.4 has
    session.answers[seq] = answer
    command, status = await asyncio.wait_for(answer, 2)
    assert (command, status) == (0x80000000, 0x03)  # generic_nack, ESME_RINVCMDID


async def test_password_never_in_repr_or_logs(smsc, seen, monkeypatch):
    # the modules' own loggers, replaced by a capturing one at every level (structlog caches
    # configured loggers on first use, and another test may have configured a higher level)
    capture = LogCapture()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(), processors=[capture], wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG)
    )
    for module in (connection_module, session_module):
        monkeypatch.setattr(module, "log", logger)
    smsc.bind_status = 0x0E
    conn = SmppConnection(smpp_config(smsc.port), hooks=SmppHooks(seen.on_receipt))
    conn.start()
    await wait_for(lambda: len(smsc.bind_attempts) >= 1)
    await wait_for(lambda: bool(capture.entries))  # the refused bind is logged (not at once under load)
    await conn.close()
    assert "s3cr3t" not in repr(conn) and "s3cr3t" not in repr(conn.config)
    assert capture.entries and "s3cr3t" not in str(capture.entries)
    assert HEADER.size == 16
