"""Inbound intake (SPEC §14, issue 14): how many MO pushes a second one `pombo serve` stores.

Plays Kannel's sms-service get-url (`/mo/velip/SECRET?from=%p&to=%P&text=%a&time=%t`) against a
real `pombo serve` on SQLite (or --database-url): `--clients` concurrent connections push for
`--seconds`, each push a new handset message to a provisioned short code (routed by `numbers`,
one in a hundred an opt-out word by default, so the block list changes under load too). Every push is answered
only after its row is committed; the answers are counted and timed, and the stored rows are
counted at the end (nothing acknowledged may be missing).

    .venv/bin/python bench/inbound_intake.py                 # "1,234 MO/s, p50 12 ms, p99 40 ms"
    .venv/bin/python bench/inbound_intake.py --json
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procs import POMBO as _POMBO
from procs import free_port, start, stop, tail

POMBO = _POMBO if Path(_POMBO).exists() else str(Path(sys.executable).parent / "pombo")
SECRET = "mo-bench-secret"
NUMBERS = itertools.count(10_000_000)  # every push of the process a new handset (warm-up too)


def provisioning() -> dict[str, Any]:
    """One Kannel-like connection and a customer owning the short code 28000."""
    return {
        "connections": [{"name": "velip", "kind": "kannel", "url": "http://127.0.0.1:9", "username": "u", "password": "p",
                         "dlr_secret": SECRET}],
        "customers": [{"id": 601, "name": "MO bench", "sms_provider": "velip", "balance": "10.00",
                       "numbers": ["28000"], "tokens": ["tok-mo-bench-000001"]}],
        "tariffs": [{"customer": 601, "prefix": "55", "value": "0.0100"}],
    }


async def push(base: str, clients: int, seconds: float, opt_every: int = 100) -> tuple[int, int, list[float]]:
    """(acknowledged, failed, latencies) of `clients` closed loops pushing for `seconds`."""
    numbers = NUMBERS
    ok = failed = 0
    latencies: list[float] = []
    end = time.monotonic() + seconds

    async def loop(session: aiohttp.ClientSession) -> None:
        nonlocal ok, failed
        while time.monotonic() < end:
            n = next(numbers)
            text = "SAIR" if opt_every and n % opt_every == 0 else f"Sim, confirmo {n}"
            params = {"from": f"119{n:08d}", "to": "28000", "text": text, "time": "2026-12-01 10:00:00"}
            started = time.perf_counter()
            async with session.get(f"{base}/mo/velip/{SECRET}", params=params) as r:
                await r.read()
                if r.status == 200:
                    ok += 1
                else:
                    failed += 1
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(loop(session) for _ in range(clients)))
    return ok, failed, latencies


def run(clients: int, seconds: float, database_url: str | None, workdir: Path, workers: int,
        opt_every: int = 100) -> dict[str, Any]:
    port = free_port()
    db_path = workdir / "mo.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POMBO_")}
    env.update(POMBO_DATABASE_URL=database_url or f"sqlite:///{db_path}", POMBO_LOG_LEVEL="WARNING")
    (workdir / "mo.json").write_text(json.dumps(provisioning()))
    loaded = start([POMBO, "load", str(workdir / "mo.json")], log=workdir / "load.log", env=env)
    if loaded.wait(120) != 0:
        raise SystemExit(f"pombo load failed: {tail(workdir / 'load.log')}")
    server = start([POMBO, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
                   log=workdir / "serve.log", env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base, workdir)
        asyncio.run(push(base, 4, 1.0))  # warm up
        began = time.monotonic()
        ok, failed, latencies = asyncio.run(push(base, clients, seconds, opt_every))
        elapsed = time.monotonic() - began
    finally:
        stop(server)
    stored = None
    if database_url is None:
        with sqlite3.connect(db_path) as db:
            stored = db.execute("SELECT count(*) FROM inbound").fetchone()[0]
    latencies.sort()

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1) if latencies else 0.0

    return {"clients": clients, "seconds": round(elapsed, 2), "acknowledged": ok, "failed": failed,
            "mo_per_s": round(ok / elapsed), "p50_ms": pct(0.50), "p99_ms": pct(0.99), "stored": stored}


def _wait_up(base: str, workdir: Path) -> None:
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"pombo serve did not start: {tail(workdir / 'serve.log')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent pushing connections")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1, help="pombo serve --workers")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--opt-out-every", type=int, default=100, help="one push in N is SAIR (0: none)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pombo-mo-") as tmp:
        result = run(args.clients, args.seconds, args.database_url, Path(tmp), args.workers, args.opt_out_every)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['mo_per_s']:,} MO/s over {result['seconds']} s with {result['clients']} clients, "
              f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms; acknowledged {result['acknowledged']}, "
              f"stored {result['stored']}, failed {result['failed']}")
    if result["stored"] is not None and result["stored"] < result["acknowledged"]:  # (+ the warm-up's)
        raise SystemExit("an acknowledged message is missing")


if __name__ == "__main__":
    main()
