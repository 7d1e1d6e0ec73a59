"""Against a real peer not written here: Jasmin 0.11.1's SMPP server (../shared/peers).

Pombo binds to Jasmin as an ESME (user bench/benchpwd from jasmin_provision.py), submits a
single and a 3-part message; Jasmin routes them to the shared SMPP sink, whose /count must grow
by exactly the parts sent. Skipped, with the reason, when Jasmin is not installed or not running
(`../shared/peers/setup.sh` then `JASMIN_FIX_1236=1 ../shared/peers/jasmin_up.sh`).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import urllib.request
from pathlib import Path

import pytest

from pombo.adapters.connections.smpp import SmppConnection, SmppHooks
from pombo.domain.model import ConnectionConfig, OutboundSms
from pombo.domain.text import encoding_of, segments
from tests.integration.smpp.conftest import Seen, wait_for

JASMIN_VENV = Path("/tmp/peers/jasmin-venv/bin/jasmind.py")
SMPP_PORT, SINK_COUNT = 2775, "http://127.0.0.1:18081/count"


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _sink_total() -> int:
    with urllib.request.urlopen(SINK_COUNT, timeout=2) as answer:
        return int(json.loads(answer.read())["total"])


def _missing() -> str | None:
    if not JASMIN_VENV.exists():
        return "Jasmin 0.11.1 is not installed (../shared/peers/setup.sh)"
    if not (_listening(SMPP_PORT) and _listening(18081)):
        return "Jasmin's SMPP server (:2775) or the SMPP sink (:18081) is not running (../shared/peers/jasmin_up.sh)"
    return None


# CI (.ci/run) installs and starts Jasmin and sets POMBO_TEST_REQUIRE_JASMIN=1: there a missing
# peer is a failure, not a skip
REQUIRED = os.environ.get("POMBO_TEST_REQUIRE_JASMIN") == "1"
MISSING = _missing()
pytestmark = [pytest.mark.skipif(MISSING is not None and not REQUIRED, reason=MISSING or "")]


@pytest.fixture(autouse=True)
def _peer_is_there() -> None:
    if MISSING is not None:
        pytest.fail(f"POMBO_TEST_REQUIRE_JASMIN=1 but {MISSING}")


async def test_submits_through_jasmin_reach_the_sink():
    seen = Seen()
    config = ConnectionConfig(name="jasmin", kind="smpp", url="smpp://127.0.0.1:2775", username="bench",
                              password="benchpwd", final_timeout=10.0,
                              options={"host": "127.0.0.1", "port": SMPP_PORT, "binds": 2, "window": 10})
    conn = SmppConnection(config, hooks=SmppHooks(seen.on_receipt, seen.on_inbound))
    conn.start()
    try:
        await wait_for(lambda: conn.bind_states() == ["bound", "bound"], timeout=10)
        before = _sink_total()
        texts = ["Pombo via Jasmin {ok}", "Ação " + "x" * 150]  # 1 GSM part, 3 UCS-2 parts
        acks = [await conn.send(OutboundSms(i, "5511987654321", t, encoding_of(t), sender="Pombo"))
                for i, t in enumerate(texts, start=1)]
        assert [len(a.part_ids) for a in acks] == [segments(t) for t in texts] == [1, 3]
        assert all(a.upstream_id for a in acks)
        want = before + sum(segments(t) for t in texts)
        await wait_for(lambda: _sink_total() >= want, timeout=20)
        await asyncio.sleep(0.5)
        assert _sink_total() == want  # every part once, nothing twice
    finally:
        await conn.close()
