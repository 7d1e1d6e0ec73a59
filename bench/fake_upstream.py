#!/usr/bin/env python3
"""A lean fake Kannel upstream for the benchmark (loopback only).

    GET|POST /cgi-bin/sendsms -> 202 "0: Accepted for delivery" after --delay-ms, counted;
                                 with --cap N: 429 (Retry-After: 1) beyond N in any sliding second
    GET /count                -> {"total": N, "uptime_s": ..., "delay_ms": ..., "limited": 429s,
                                  "distinct": cdls_ids seen, "dups": ids accepted twice or more,
                                  "peak_1s": most accepted in any sliding second}  (not counted)
    POST /reset               -> zero the counters                             (not counted)
    POST /outage?seconds=S    -> go away for S seconds: the port is closed and every open
                                 connection dropped (a connect is refused), then it listens again
    anything else             -> 404

aiohttp's low-level server (no router, no access log), uvloop when importable, so that it
stays far from being the bottleneck. SIGTERM/SIGINT exit cleanly and print the final count.

    python bench/fake_upstream.py --port 18080 --delay-ms 0
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import signal
import sys
import time

from aiohttp import web

ACCEPTED = b"0: Accepted for delivery"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--delay-ms", type=float, default=0.0)
    ap.add_argument("--cap", type=int, default=0, help="429 beyond this many per sliding second (0: none)")
    args = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
        flavour = "uvloop"
    except ImportError:
        flavour = "asyncio"
    asyncio.run(serve(args.host, args.port, args.delay_ms / 1000.0, flavour, args.cap))


def cdls_id(request: web.BaseRequest) -> str:
    """The cdls_id Pombo's kannel connection puts in its dlr-url (`...?id=N&type=%d...`)."""
    dlr = request.query.get("dlr-url", "")
    return dlr.split("id=", 1)[1].split("&", 1)[0] if "id=" in dlr else ""


class Upstream:
    """The counters, the cap and the listening socket of one fake Kannel."""

    def __init__(self, host: str, port: int, delay: float, cap: int) -> None:
        self.host, self.port, self.delay, self.cap = host, port, delay, cap
        self.started = time.time()
        self.reset()
        self._server: web.Server | None = None
        self._srv: asyncio.AbstractServer | None = None

    def reset(self) -> None:
        self.count = self.limited = self.dups = self.peak = 0
        self.seen: set[str] = set()
        self.window: collections.deque[float] = collections.deque()  # accepted in the last second

    def snapshot(self) -> bytes:
        return json.dumps(
            {"total": self.count, "uptime_s": round(time.time() - self.started, 3), "delay_ms": self.delay * 1000,
             "limited": self.limited, "distinct": len(self.seen), "dups": self.dups, "peak_1s": self.peak}
        ).encode()

    async def send(self, request: web.BaseRequest) -> web.Response:
        now = time.monotonic()
        while self.window and self.window[0] <= now - 1.0:
            self.window.popleft()
        if self.cap and len(self.window) >= self.cap:
            self.limited += 1
            return web.Response(status=429, body=b"rate limited", headers={"Retry-After": "1"})
        self.window.append(now)
        self.peak = max(self.peak, len(self.window))
        self.count += 1
        mid = cdls_id(request)
        if mid in self.seen:
            self.dups += 1
        self.seen.add(mid)
        if self.delay > 0:
            await asyncio.sleep(self.delay)
        return web.Response(status=202, body=ACCEPTED, content_type="text/plain")

    async def handler(self, request: web.BaseRequest) -> web.Response:
        path = request.path
        if path == "/cgi-bin/sendsms":
            return await self.send(request)
        if path == "/count":
            return web.Response(body=self.snapshot(), content_type="application/json")
        if path == "/reset" and request.method == "POST":
            self.reset()
            return web.Response(body=b"reset\n", content_type="text/plain")
        if path == "/outage" and request.method == "POST":
            seconds = float(request.query.get("seconds", "10"))
            loop = asyncio.get_running_loop()
            loop.call_soon(lambda: loop.create_task(self.outage(seconds)))
            return web.Response(body=b"going away\n", content_type="text/plain")
        return web.Response(status=404, body=b"not found\n", content_type="text/plain")

    async def listen(self) -> None:
        self._server = web.Server(self.handler, access_log=None)
        self._srv = await asyncio.get_running_loop().create_server(
            self._server, self.host, self.port, backlog=4096, reuse_address=True
        )

    async def close(self, grace: float) -> None:
        assert self._srv is not None and self._server is not None
        self._srv.close()
        await self._server.shutdown(grace)  # every kept-alive connection goes too

    async def outage(self, seconds: float) -> None:
        await self.close(0.1)
        print(f"fake_upstream down for {seconds:g} s", file=sys.stderr, flush=True)
        await asyncio.sleep(seconds)
        await self.listen()
        print("fake_upstream back", file=sys.stderr, flush=True)


async def serve(host: str, port: int, delay: float, flavour: str, cap: int = 0) -> None:
    upstream = Upstream(host, port, delay, cap)
    await upstream.listen()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"fake_upstream ({flavour}) on http://{host}:{port} delay_ms={delay * 1000:g} cap={cap or 'none'}",
        file=sys.stderr,
        flush=True,
    )
    await stop.wait()
    print(f"fake_upstream final: {upstream.snapshot().decode()}", file=sys.stderr, flush=True)
    await upstream.close(1.0)


if __name__ == "__main__":
    main()
