#!/usr/bin/env python3
"""A clean caller's latency with a big brute-force log (issue 15, item 2), on PostgreSQL.

    PYTHONPATH=src .venv/bin/python bench/auth_log.py                    # this tree
    .venv/bin/python bench/auth_log.py --tree /path/to/other/checkout    # another tree's code

1. Drops and recreates the database $BENCH_PG_DB_AUTH (pombo_bench_auth), `pombo load`s one
   customer on the built-in simulator connection, then preloads --rows failed attempts that are
   one to three days old (COPY; random IPs, usernames and codes 100/102/140): useless to every
   rule, but there.
2. Starts `pombo serve --workers 2` of the chosen tree (POMBO_TRUSTED_PROXIES=["127.0.0.1"], so
   X-Forwarded-For names the caller; background jobs as --jobs says).
3. For --seconds: --clean concurrent clients send MakeSMS with a valid token from one address,
   while one client sends --fail-rate wrong tokens per second, each from a random address of
   10.0.0.0/16 (so none is ever blocked, and every failure NOTIFYs every worker).
4. Prints the clean caller's requests, p50, p95 and p99 (ms), and the row count at the end.

Standard library plus the venv's aiohttp and psycopg.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procs import free_port, start, stop_all, tail

PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
PG_ADMIN_DB = os.environ.get("BENCH_PG_ADMIN_DB", "test")
SCRATCH = Path(os.environ.get("BENCH_SCRATCH", "/tmp/pombo-bench"))
CLEAN_TOKEN = "bench-clean-token-000001"
CLEAN_IP = "192.0.2.10"
_dests = itertools.count(random.Random().randrange(10**7))  # a new destination for every send


def pombo_cmd(tree: Path) -> tuple[list[str], dict[str, str]]:
    """How to run the `pombo` command of `tree` (its src/ first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    return [sys.executable, "-c", "from pombo.cli import main; main()"], env


def recreate(db: str) -> str:
    import psycopg

    with psycopg.connect(f"{PG_URL}/{PG_ADMIN_DB}", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{db}"')
    return f"{PG_URL}/{db}"


def provisioning(customers: int = 1, users: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The simulator connection and `customers` customers (ids from 1000), one token each."""
    rows = [
        {"id": 1000 + i, "name": f"bench{i}", "sms_provider": "sim", "balance": "100000000.00",
         "tokens": [CLEAN_TOKEN if i == 0 else f"bench-token-{i:08d}"]}
        for i in range(customers)
    ]
    if users:
        rows[0]["users"] = users
    return {
        "connections": [{"name": "sim", "kind": "simulator", "ack_timeout": 5, "final_timeout": 10}],
        "customers": rows,
        "tariffs": [{"customer": 1000 + i, "prefix": "55", "value": "0.0500"} for i in range(customers)],
    }


def load(tree: Path, url: str, doc: dict[str, Any], scratch: Path) -> None:
    cmd, env = pombo_cmd(tree)
    path = scratch / "provisioning.json"
    path.write_text(json.dumps(doc))
    env["POMBO_DATABASE_URL"] = url
    subprocess.run([*cmd, "load", str(path)], env=env, check=True, stdout=subprocess.DEVNULL)


def preload_failures(url: str, rows: int) -> None:
    """`rows` failed attempts one to three days old, by COPY."""
    import psycopg

    rng = random.Random(15)
    now = time.time()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy("COPY auth_failures (ip, username, code, created_at) FROM STDIN") as copy:
            buf = io.StringIO()
            for i in range(rows):
                ip = f"172.16.{rng.randrange(256)}.{rng.randrange(256)}"
                user = f"user{rng.randrange(50_000)}" if i % 3 == 0 else "\\N"
                code = (100, 102, 140)[i % 3]
                buf.write(f"{ip}\t{user}\t{code}\t{now - 86_400 - rng.random() * 172_800:.3f}\n")
                if i % 100_000 == 99_999:
                    copy.write(buf.getvalue())
                    buf = io.StringIO()
            copy.write(buf.getvalue())
        conn.commit()
        conn.execute("ANALYZE auth_failures")


def serve(tree: Path, url: str, *, workers: int, jobs: bool, scratch: Path, extra: dict[str, str] | None = None
          ) -> int:
    cmd, env = pombo_cmd(tree)
    port = free_port()
    env.update({
        "POMBO_DATABASE_URL": url, "POMBO_TRUSTED_PROXIES": '["127.0.0.1"]', "POMBO_LOG_LEVEL": "WARNING",
        "POMBO_BACKGROUND_JOBS": "true" if jobs else "false", **(extra or {}),
    })
    args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers > 1:
        args += ["--workers", str(workers)]
    log = scratch / "serve.log"
    proc = start([*cmd, *args], log=log, env=env)
    import urllib.request

    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return port
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("serve died:\n" + tail(log)) from None
        time.sleep(0.2)
    raise SystemExit("serve does not answer:\n" + tail(log))


async def clean_clients(port: int, seconds: float, conns: int, tokens: list[str], ip: str = CLEAN_IP
                        ) -> tuple[list[float], dict[str, int]]:
    """`conns` clients sending MakeSMS for `seconds`, round robin over `tokens`: latencies (s)
    and answers by status_code."""
    import aiohttp

    latencies: list[float] = []
    answers: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    url = f"http://127.0.0.1:{port}/api/v2/MakeSMS.php"

    async def client(n: int, session: aiohttp.ClientSession) -> None:
        i = 0
        while time.perf_counter() < deadline:
            i += 1
            token = tokens[(n + i * conns) % len(tokens)]
            params = {"tsid": token, "dest": f"55119{next(_dests) % 10**8:08d}", "message": "hello"}
            start_at = time.perf_counter()
            async with session.get(url, params=params, headers={"X-Forwarded-For": ip}) as r:
                body = await r.json(content_type=None)
            latencies.append(time.perf_counter() - start_at)
            code = str(body.get("return", body).get("status_code"))
            answers[code] = answers.get(code, 0) + 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conns + 4)) as session:
        await asyncio.gather(*(client(n, session) for n in range(conns)))
    return latencies, answers


async def failing_client(port: int, seconds: float, rate: float) -> int:
    """Wrong tokens at `rate` per second, each from a random address: how many were sent."""
    import aiohttp

    if rate <= 0:
        return 0
    rng = random.Random(7)
    sent = 0
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() < deadline:
            ip = f"10.0.{rng.randrange(256)}.{rng.randrange(256)}"
            url = f"http://127.0.0.1:{port}/api/v2/MakeSMS.php?tsid=wrong-token-{sent:08d}&dest=5511987650001&message=x"
            async with session.get(url, headers={"X-Forwarded-For": ip}) as r:
                await r.read()
            sent += 1
            await asyncio.sleep(1 / rate)
    return sent


def percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    return {"requests": len(ordered), "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clean", type=int, default=4, help="concurrent clean clients")
    parser.add_argument("--fail-rate", type=float, default=20, help="failed attempts per second")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--jobs", choices=("on", "off"), default="off", help="background jobs (the prune among them)")
    parser.add_argument("--db", default=os.environ.get("BENCH_PG_DB_AUTH", "pombo_bench_auth"))
    args = parser.parse_args()
    scratch = SCRATCH / f"{time.strftime('%Y%m%d-%H%M%S')}-auth-log"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        url = recreate(args.db)
        load(args.tree, url, provisioning(), scratch)
        started = time.perf_counter()
        preload_failures(url, args.rows)
        print(f"preloaded {args.rows} old failures in {time.perf_counter() - started:.1f}s", flush=True)
        port = serve(args.tree, url, workers=args.workers, jobs=args.jobs == "on", scratch=scratch)
        asyncio.run(clean_clients(port, 2, args.clean, [CLEAN_TOKEN]))  # warm-up

        async def run() -> tuple[list[float], dict[str, int], int]:
            clean = asyncio.create_task(clean_clients(port, args.seconds, args.clean, [CLEAN_TOKEN]))
            failed = await failing_client(port, args.seconds, args.fail_rate)
            latencies, answers = await clean
            return latencies, answers, failed

        latencies, answers, failed = asyncio.run(run())
        import psycopg

        with psycopg.connect(url) as conn:
            left = conn.execute("SELECT count(*) FROM auth_failures").fetchone()
        print(json.dumps({"tree": str(args.tree), "jobs": args.jobs, **percentiles(latencies), "answers": answers,
                          "failed_attempts": failed, "auth_failures_rows_at_end": left[0] if left else None}))
    finally:
        stop_all()


if __name__ == "__main__":
    main()
