"""SIGKILL of `pombo serve` with submit_sm in flight on an SMPP connection (SPEC §11, §12):

- the fake SMSC answers each submit_sm 0.4 s late, the window is 20: at the kill some messages
  were accepted, some written and unanswered (in flight), most waiting in the queue;
- after the restart every waiting message reaches the SMSC once; nothing that was written
  before the kill is written again (every destination is seen at most once);
- receipts the SMSC sends after the restart, on the new bind, settle the messages it accepted
  before the kill; every deliver_sm is answered;
- no refund, balances equal the ledger; /healthz and /metrics show the bind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.fakes.smsc import FakeSmsc, Rule
from tests.fakes.upstream import pick_free_port
from tests.integration.smpp.conftest import wait_for
from tests.integration.test_crash import wait_healthy
from tests.integration.test_engine_crash import POMBO, query, serve

TOKEN = "tok-shop-0000000001"
N = 300


def document(port: int) -> dict[str, Any]:
    return {
        "connections": [{"name": "claro", "kind": "smpp", "host": "127.0.0.1", "port": port, "system_id": "pombo",
                         "password": "s3cr3t", "binds": 1, "window": 20, "enquire_link": 5,
                         "ack_timeout": 0.02, "final_timeout": 10}],
        "customers": [{"id": 11, "name": "Loja", "sms_provider": "claro", "balance": "1000.00",
                       "night_limit": None, "tokens": [TOKEN]}],
        "tariffs": [{"customer": 11, "prefix": "55", "value": "0.0800"}],
    }


async def offer(base: str) -> dict[int, str]:
    """N sends to distinct destinations; cdls_id -> the destination as the SMSC sees it."""
    sent: dict[int, str] = {}
    numbers = iter(range(N))

    async def caller(client: aiohttp.ClientSession) -> None:
        for i in numbers:
            dest = f"1197{i:07d}"
            params = {"tsid": TOKEN, "dest": dest, "message": "sem volta"}
            async with client.get(f"{base}/api/v2/MakeSMS.php", params=params) as resp:
                answer = (await resp.json())["return"]
            assert answer["status_code"] in ("0", "1"), answer
            sent[int(answer["cdls_id"])] = "55" + dest

    async with aiohttp.ClientSession() as client:
        await asyncio.gather(*(caller(client) for _ in range(32)))
    return sent


# SIGKILL and restart under load: a long scenario (`make test-slow`, CI)
pytestmark = pytest.mark.slow


async def test_sigkill_with_submits_in_flight_then_restart(database_url: str, tmp_path: Path) -> None:
    smsc = FakeSmsc()
    await smsc.start()
    smsc.default = Rule(answer_delay=0.4)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(document(smsc.port)))
    env = {**os.environ, "POMBO_DATABASE_URL": database_url, "POMBO_LOG_LEVEL": "WARNING",
           "POMBO_RECONCILE_EVERY": "3600"}
    loaded = subprocess.run([POMBO, "load", str(tmp_path / "p.yaml")], env=env, capture_output=True, check=False)
    assert loaded.returncode == 0, loaded.stderr
    port = pick_free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve(env, port, 1, tmp_path / "server.log")
    try:
        await wait_healthy(base)
        sent = await offer(base)
        await wait_for(lambda: len(smsc.submits) >= 60, timeout=20)
        os.killpg(server.pid, signal.SIGKILL)
        while server.poll() is None:
            await asyncio.sleep(0.02)
        before = list(smsc.submits)  # everything written before the kill
        await wait_for(lambda: not smsc.bound())
        queued = {r[0] for r in query(database_url, "SELECT message_id FROM upstream_queue")}
        known = dict(query(database_url, "SELECT id, upstream_id FROM messages WHERE upstream_id IS NOT NULL"))
        in_flight = {s.dest for s in before} - {sent[m] for m in known}
        assert len(sent) == N and len(queued) >= 100, f"{len(queued)} waiting at the kill"
        assert in_flight, "nothing was in flight at the kill"
        assert not {sent[m] for m in queued} & {s.dest for s in before}  # waiting ones never went

        server = serve(env, port, 1, tmp_path / "server.log")
        await wait_healthy(base)
        await wait_for(lambda: len(smsc.bound()) == 1)
        smsc.default = Rule()  # answer at once now
        deadline = time.monotonic() + 60
        while not {sent[m] for m in queued} <= {s.dest for s in smsc.submits} and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        # the SMSC now reports on what it accepted before the kill, on the new bind
        session = smsc.bound()[0]
        for s in before:
            assert await smsc.receipt(session, Rule(stat="DELIVRD"), s.message_id, s.dest) == 0
        async with aiohttp.ClientSession() as client:
            async with client.get(f"{base}/healthz") as resp:
                health = await resp.json()
            async with client.get(f"{base}/metrics") as resp:
                metrics = await resp.text()
        await asyncio.sleep(1.0)  # anything sent twice would have arrived by now
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            while server.poll() is None:
                await asyncio.sleep(0.05)
        await smsc.stop()

    seen = Counter(s.dest for s in smsc.submits)
    assert max(seen.values()) == 1  # nothing written twice: not the in-flight ones, not any
    assert {sent[m] for m in queued} <= set(seen)  # every waiting one went after the restart
    assert set(seen) <= set(sent.values())
    rows = {r[0]: r[1:] for r in query(database_url, "SELECT id, status_code, delivery, upstream_id FROM messages")}
    assert len(rows) == N
    by_dest = {s.dest: s for s in smsc.submits}
    for message_id in known:
        assert rows[message_id][:2] == (0, "delivered"), rows[message_id]  # receipts after the restart
    for message_id, dest in sent.items():
        if dest in in_flight:  # written, never answered to us: never again, still charged
            assert rows[message_id][0] == 1 and rows[message_id][2] is None
        elif message_id not in known:  # sent after the restart
            assert rows[message_id][0] == 0 and rows[message_id][2] == by_dest[dest].message_id
    assert query(database_url, "SELECT count(*) FROM ledger WHERE cause = 'refund'") == [(0,)]
    sums = query(database_url, "SELECT c.id, c.balance, COALESCE((SELECT sum(amount) FROM ledger l "
                               "WHERE l.customer_id = c.id), 0) FROM customers c")
    assert all(balance == ledger for _, balance, ledger in sums)
    assert [b["state"] for b in health["connections"]["claro"]["binds"]] == ["bound"]
    assert 'pombo_smpp_binds{connection="claro",state="bound"} 1.0' in metrics
