"""The send path's CPU cost in one process, without HTTP, wrk or a fake upstream: MakeSMS called
directly on services wired by bootstrap, SQLite, the built-in simulator connection.

For comparing two commits on a busy machine: CPU time per send moves far less with other load
than requests per second do. Run it with each tree first on PYTHONPATH, alternately:

    PYTHONPATH=/path/to/tree/src .venv/bin/python bench/inproc.py --sends 20000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOKEN = "tok-inproc-bench-000001"


def provision(url: str, workdir: Path, *, night: bool = False) -> None:
    # --night: inside the night window at any hour (00:00-23:59) with a cap never reached
    cap = {"night_limit": 1_000_000_000, "night_window": "00:00-23:59"} if night else {"night_limit": None}
    doc = {
        "connections": [{"name": "velip", "kind": "simulator", "ack_timeout": 5, "final_timeout": 30}],
        "customers": [{"id": 1000, "name": "bench", "balance": "100000000.00", **cap, "tokens": [TOKEN]}],
        "tariffs": [{"customer": 1000, "prefix": "55", "value": "0.0500"}],
    }
    path = workdir / "prov.json"
    path.write_text(json.dumps(doc))
    pombo = Path(sys.executable).parent / "pombo"
    subprocess.run([str(pombo), "load", str(path)], check=True, env={**os.environ, "POMBO_DATABASE_URL": url},
                   capture_output=True)


async def run(url: str, sends: int, concurrency: int) -> tuple[float, float]:
    from pombo.bootstrap import build_services
    from pombo.config import Settings
    from pombo.services.auth import Credentials

    services = await build_services(Settings(database_url=url, background_jobs=False, log_level="WARNING"))
    creds = Credentials(token=TOKEN, basic=None, ip="127.0.0.1")
    counter = iter(range(sends))
    codes: dict[int, int] = {}

    async def worker() -> None:
        for i in counter:
            params = {"dest": f"1198{i:07d}", "message": "hello world", "tsid": TOKEN}
            result = await services.make_sms(params=params, creds=creds)
            codes[result.code] = codes.get(result.code, 0) + 1

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await services.aclose()
    if codes != {0: sends}:
        raise SystemExit(f"unexpected answers: {codes}")
    return cpu, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sends", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--night", action="store_true", help="the customer inside its night window, capped")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/inproc.db"
        provision(url, Path(tmp), night=args.night)
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
        cpu, wall = asyncio.run(run(url, args.sends, args.concurrency))
    print(f"{args.sends} sends: {cpu / args.sends * 1e6:.0f} µs CPU per send, {args.sends / wall:,.0f} sends/s wall")


if __name__ == "__main__":
    main()
