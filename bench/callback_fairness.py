"""Callback fairness (issue 16): does one customer's dead callback endpoint delay another's?

Plays the scenario against a real `pombo serve` (SQLite by default, or --database-url):
customer A sends N messages (40) whose `rurl` accepts the connection and never answers; then
customer B sends one message whose `rurl` answers at once. Prints how long B's callback took to
arrive after B's MakeSMS was answered.

    .venv/bin/python bench/callback_fairness.py            # "B's callback arrived after 0.62 s"
    .venv/bin/python bench/callback_fairness.py --json     # {"b_delay": 0.62, ...}

The receivers listen on 127.0.0.1, so the server runs with POMBO_CALLBACK_ALLOW=["127.0.0.0/8"]
(an operator's setting for a private deployment; production refuses loopback).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procs import POMBO as _POMBO
from procs import free_port, start, stop, tail

# the checkout's .venv, else the pombo beside the running interpreter
POMBO = _POMBO if Path(_POMBO).exists() else str(Path(sys.executable).parent / "pombo")
TOKENS = {"a": "tok-fair-customer-a-001", "b": "tok-fair-customer-b-001"}


def provisioning() -> dict[str, Any]:
    """Two customers on the built-in simulated upstream."""
    return {
        "connections": [{"name": "velip", "kind": "simulator", "ack_timeout": 5, "final_timeout": 10}],
        "customers": [
            {"id": 501, "name": "A (dead endpoint)", "sms_provider": "velip", "balance": "100.00",
             "tokens": [TOKENS["a"]]},
            {"id": 502, "name": "B", "sms_provider": "velip", "balance": "100.00", "tokens": [TOKENS["b"]]},
        ],
        "tariffs": [{"customer": c, "prefix": "55", "value": "0.0100"} for c in (501, 502)],
    }


class Receivers:
    """On one loopback port: /stall accepts and never answers; /ok records arrivals."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals: dict[str, float] = {}
        self.stalled = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()

    async def _stall(self, request: web.Request) -> web.Response:
        self.stalled += 1
        await asyncio.Event().wait()  # never
        return web.Response()

    async def _ok(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            cdls_id = str(json.loads(body).get("cdls_id"))
        except ValueError:
            cdls_id = "?"
        self.arrivals.setdefault(cdls_id, time.monotonic())
        return web.Response(text="ok")

    def start(self) -> None:
        def run() -> None:
            asyncio.set_event_loop(self._loop)
            app = web.Application()
            app.router.add_route("*", "/stall", self._stall)
            app.router.add_route("*", "/ok", self._ok)
            runner = web.AppRunner(app, shutdown_timeout=0.1)
            self._loop.run_until_complete(runner.setup())
            self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
            self._ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, daemon=True, name="receivers").start()
        self._ready.wait(10)


def make_sms(base: str, token: str, dest: str, rurl: str) -> dict[str, Any]:
    """One MakeSMS; its `return`."""
    data = urllib.parse.urlencode({"tsid": token, "dest": dest, "message": "fair?", "httpdup": "0",
                                   "rurl": rurl}).encode()
    with urllib.request.urlopen(f"{base}/api/v2/MakeSMS.php", data=data, timeout=10) as resp:
        answer: dict[str, Any] = json.loads(resp.read())["return"]
    return answer


def run(messages: int, wait: float, database_url: str | None, workdir: Path, workers: int = 1) -> dict[str, Any]:
    """The scenario; B's delay in seconds (None when it never came within `wait`)."""
    receivers = Receivers()
    receivers.start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POMBO_")}
    env.update(POMBO_DATABASE_URL=database_url or f"sqlite:///{workdir / 'fair.db'}",
               POMBO_CALLBACK_ALLOW='["127.0.0.0/8"]', POMBO_LOG_LEVEL="WARNING")
    (workdir / "fair.json").write_text(json.dumps(provisioning()))
    loaded = start([POMBO, "load", str(workdir / "fair.json")], log=workdir / "load.log", env=env)
    if loaded.wait(120) != 0:
        raise SystemExit(f"pombo load failed: {tail(workdir / 'load.log')}")
    serve = [POMBO, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    server = start(serve, log=workdir / "serve.log", env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(base, workdir)
        stall = f"http://127.0.0.1:{receivers.port}/stall"
        for i in range(messages):
            answer = make_sms(base, TOKENS["a"], f"1198{i:07d}", stall)
            assert answer["status_code"] == "0", answer
        answer = make_sms(base, TOKENS["b"], "11977770000", f"http://127.0.0.1:{receivers.port}/ok")
        sent_at = time.monotonic()
        assert answer["status_code"] == "0", answer
        cdls_id = answer["cdls_id"]
        while cdls_id not in receivers.arrivals and time.monotonic() - sent_at < wait:
            time.sleep(0.02)
        arrived = receivers.arrivals.get(cdls_id)
        return {"messages": messages, "b_delay": None if arrived is None else round(arrived - sent_at, 3),
                "a_pushes_stalled": receivers.stalled, "waited": wait}
    finally:
        stop(server)


def _wait_up(base: str, workdir: Path) -> None:
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
    parser.add_argument("--messages", type=int, default=40, help="customer A's stalled messages")
    parser.add_argument("--wait", type=float, default=90.0, help="give up on B's callback after this long")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--workers", type=int, default=1, help="pombo serve --workers")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pombo-fair-") as tmp:
        result = run(args.messages, args.wait, args.database_url, Path(tmp), args.workers)
    if args.json:
        print(json.dumps(result))
    elif result["b_delay"] is None:
        print(f"B's callback did not arrive within {args.wait:.0f} s ({result['a_pushes_stalled']} of A's stalled)")
    else:
        print(f"B's callback arrived after {result['b_delay']:.2f} s "
              f"({args.messages} of A's messages stalled, {result['a_pushes_stalled']} of A's pushes hanging)")


if __name__ == "__main__":
    main()
