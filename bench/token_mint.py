#!/usr/bin/env python3
"""Other customers' latency while one user mints tokens with GetUserID tsid=1 (issue 15, item 3).

    .venv/bin/python bench/token_mint.py                                  # this tree, SQLite
    .venv/bin/python bench/token_mint.py --tree /path/to/other/checkout   # another tree's code
    .venv/bin/python bench/token_mint.py --db pg --workers 2              # PostgreSQL

1. A fresh database with --customers customers on the built-in simulator connection (one token
   each); the first also has a user `minter`.
2. `pombo serve` of the chosen tree (1 process on SQLite unless --workers).
3. Two phases of --seconds each, --clean clients sending MakeSMS round robin over every other
   customer's token: first alone, then while one client makes --mints GetUserID tsid=1 calls
   (HTTP Basic as `minter`) spread evenly over the phase.
4. Prints p50/p95/p99 of the other customers' requests in each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from auth_log import SCRATCH, clean_clients, load, percentiles, provisioning, recreate, serve
from procs import stop_all

MINTER = ("minter", "minter-password")


async def minting(port: int, seconds: float, calls: int) -> dict[str, int]:
    """`calls` GetUserID tsid=1 calls spread over `seconds`: answers by status_code."""
    import aiohttp

    answers: dict[str, int] = {}
    auth = "Basic " + base64.b64encode(":".join(MINTER).encode()).decode()
    url = f"http://127.0.0.1:{port}/api/v2/GetUserID.php?tsid=1"
    start = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        for i in range(calls):
            delay = start + i * seconds / calls - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            async with session.get(url, headers={"Authorization": auth, "X-Forwarded-For": "192.0.2.77"}) as r:
                body = await r.json(content_type=None)
            code = str(body.get("return", body).get("status_code"))
            answers[code] = answers.get(code, 0) + 1
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clean", type=int, default=8)
    parser.add_argument("--mints", type=int, default=200)
    parser.add_argument("--db", choices=("sqlite", "pg"), default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    scratch = SCRATCH / f"{time.strftime('%Y%m%d-%H%M%S')}-token-mint"
    scratch.mkdir(parents=True, exist_ok=True)
    url = recreate("pombo_bench_mint") if args.db == "pg" else f"sqlite:///{scratch / 'pombo.db'}"
    doc = provisioning(args.customers, users=[{"username": MINTER[0], "password": MINTER[1], "send": True}])
    others = [c["tokens"][0] for c in doc["customers"][1:]]
    try:
        load(args.tree, url, doc, scratch)
        port = serve(args.tree, url, workers=args.workers, jobs=True, scratch=scratch,
                     extra={"POMBO_TRUSTED_PROXIES": '["127.0.0.1"]'})
        asyncio.run(clean_clients(port, 3, args.clean, others))  # warm-up

        async def phase(mints: int) -> tuple[list[float], dict[str, int], dict[str, int]]:
            clean = asyncio.create_task(clean_clients(port, args.seconds, args.clean, others))
            minted = await minting(port, args.seconds, mints) if mints else {}
            latencies, answers = await clean
            return latencies, answers, minted

        alone = asyncio.run(phase(0))
        with_mints = asyncio.run(phase(args.mints))
        print(json.dumps({
            "tree": str(args.tree), "db": args.db, "customers": args.customers,
            "alone": {**percentiles(alone[0]), "answers": alone[1]},
            "while_minting": {**percentiles(with_mints[0]), "answers": with_mints[1], "mint_answers": with_mints[2]},
        }))
    finally:
        stop_all()
        os.environ.pop("POMBO_DATABASE_URL", None)


if __name__ == "__main__":
    main()
