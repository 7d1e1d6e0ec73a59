"""What keeping rejections costs under a flood of bad requests (issue 17).

In one process, on services wired by bootstrap (SQLite by default, `--database-url` for
PostgreSQL): MakeSMS requests that fail check 240 (an invalid number), answered with and without
the recording the API adds (`RejectionRecorder.record`), alternately, CPU time per request; then
the write of one flush after a flood from one customer and from `--customers` customers (what a
5-second flush writes is bounded by the buffers, not by the flood's rate).

    .venv/bin/python bench/rejections.py --requests 50000
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

TOKEN = "tok-rejections-bench-01"


def provision(url: str, workdir: Path) -> None:
    doc = {
        "connections": [{"name": "velip", "kind": "simulator"}],
        "customers": [{"id": 1000, "name": "bench", "balance": "100.00", "tokens": [TOKEN]}],
        "tariffs": [{"customer": 1000, "prefix": "55", "value": "0.0500"}],
    }
    path = workdir / "prov.json"
    path.write_text(json.dumps(doc))
    pombo = Path(sys.executable).parent / "pombo"
    subprocess.run([str(pombo), "load", str(path)], check=True, env={**os.environ, "POMBO_DATABASE_URL": url},
                   capture_output=True)


async def run(url: str, requests: int, customers: int) -> None:
    from pombo.bootstrap import build_services
    from pombo.config import Settings
    from pombo.services.auth import Credentials

    services = await build_services(Settings(database_url=url, background_jobs=False, log_level="WARNING"))
    creds = Credentials(token=TOKEN, basic=None, ip="127.0.0.1")
    recorder = services.rejections

    async def flood(n: int, keep: bool) -> float:
        cpu = time.process_time()
        for i in range(n):
            params = {"dest": f"12{i:05d}", "message": "hello world", "tsid": TOKEN}
            result = await services.make_sms(params=params, creds=creds)
            assert result.code == 240, result
            if keep:  # what api/app.py adds to a rejected MakeSMS
                recorder.record(customer_id=result.customer_id, code=result.code, status=result.status,
                                ip=creds.ip, credential="tok-reject…", params=params)
        return time.process_time() - cpu

    await flood(2000, True)  # warm up
    await recorder.flush()
    rounds, chunk = 10, max(1, requests // 10)
    base = kept = 0.0
    for _ in range(rounds):
        base += await flood(chunk, False)
        kept += await flood(chunk, True)
    n = rounds * chunk
    print(f"rejected MakeSMS (240), {n} each way: {base / n * 1e6:.1f} us CPU without keeping, "
          f"{kept / n * 1e6:.1f} us with (+{(kept - base) / n * 1e6:.2f} us, {(kept / base - 1) * 100:+.1f}%)")
    cpu, wall = time.process_time(), time.perf_counter()
    await recorder.flush()
    print(f"flush after {n} rejections of 1 customer: {(time.perf_counter() - wall) * 1000:.1f} ms wall, "
          f"{(time.process_time() - cpu) * 1000:.1f} ms CPU")

    for i in range(requests):  # a flood spread over many customers (recorded directly)
        recorder.record(customer_id=1 + i % customers, code=102, status="SID not found", ip="203.0.113.9",
                        credential="tok-unknow…", params={"dest": "5511999990000", "message": "x" * 100, "tsid": "x"})
    cpu, wall = time.process_time(), time.perf_counter()
    await recorder.flush()
    rows = len(await services.store.recent_rejections(customer_id=None, code=None, search=None, limit=10**6))
    print(f"flush after {requests} rejections of {customers} customers: {(time.perf_counter() - wall) * 1000:.1f} ms "
          f"wall, {(time.process_time() - cpu) * 1000:.1f} ms CPU; {rows} rejections stored in all")
    await services.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        provision(url, Path(tmp))
        asyncio.run(run(url, args.requests, args.customers))


if __name__ == "__main__":
    main()
