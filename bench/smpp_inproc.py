"""CPU per send of `kind: smpp` in one process, without HTTP or wrk: MakeSMS called on services
wired by bootstrap (SQLite), the SMPP connection bound to the shared SMPP sink, 32 concurrent
callers; the same with the built-in simulator connection for reference. CPU per send moves far
less with other load than messages per second do.

    /tmp/peers/up-venv/bin/python ../shared/peers/smpp_sink.py 2779 18081 &   # the sink
    PYTHONPATH=src .venv/bin/python bench/smpp_inproc.py --kind smpp --sends 3000
    PYTHONPATH=src .venv/bin/python bench/smpp_inproc.py --kind simulator --sends 3000
    PROF=1 ... (adds a cProfile of the measured sends)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOKEN = "tok-inproc-bench-000001"


def provision(url: str, workdir: Path, kind: str, port: int) -> None:
    conn = ({"name": "velip", "kind": "smpp", "host": "127.0.0.1", "port": port, "system_id": "b", "password": "b",
             "ack_timeout": 5, "final_timeout": 30}
            if kind == "smpp" else {"name": "velip", "kind": "simulator", "ack_timeout": 5, "final_timeout": 30})
    doc = {"connections": [conn],
           "customers": [{"id": 1000, "name": "bench", "balance": "100000000.00", "night_limit": None, "tokens": [TOKEN]}],
           "tariffs": [{"customer": 1000, "prefix": "55", "value": "0.0500"}]}
    path = workdir / "prov.json"
    path.write_text(json.dumps(doc))
    subprocess.run([str(Path(sys.executable).parent / "pombo"), "load", str(path)], check=True,
                   env={**os.environ, "POMBO_DATABASE_URL": url}, capture_output=True)


async def run(kind: str, sends: int, port: int) -> None:
    from pombo.bootstrap import build_services
    from pombo.config import Settings
    from pombo.services.auth import Credentials

    workdir = Path(tempfile.mkdtemp())
    url = f"sqlite:///{workdir}/p.db"
    provision(url, workdir, kind, port)
    services = await build_services(Settings(database_url=url, log_level="ERROR"))
    creds = Credentials(token=TOKEN, basic=None, ip="127.0.0.1")
    await asyncio.sleep(0.5)  # the bind opens

    async def caller(numbers: object) -> None:
        for i in numbers:  # type: ignore[attr-defined]
            answer = await services.make_sms(params={"dest": f"1198{i:07d}", "message": "hello world"}, creds=creds)
            assert answer.code == 0, answer

    warm = iter(range(sends))
    await asyncio.gather(*(caller(warm) for _ in range(32)))
    measured = iter(range(sends, 3 * sends))
    profile = cProfile.Profile() if os.environ.get("PROF") else None
    cpu, wall = time.process_time(), time.perf_counter()
    if profile:
        profile.enable()
    await asyncio.gather(*(caller(measured) for _ in range(32)))
    if profile:
        profile.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(f"{kind}: {cpu / (2 * sends) * 1e6:.0f} us CPU per send, {2 * sends / wall:.0f} sends/s")
    if profile:
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    await services.aclose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["smpp", "simulator"], default="smpp")
    ap.add_argument("--sends", type=int, default=3000)
    ap.add_argument("--port", type=int, default=2779, help="the SMPP sink's port")
    args = ap.parse_args()
    asyncio.run(run(args.kind, args.sends, args.port))


if __name__ == "__main__":
    main()
