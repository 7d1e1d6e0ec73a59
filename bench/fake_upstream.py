#!/usr/bin/env python3
"""A lean fake Kannel upstream for the benchmark (loopback only).

    GET|POST /cgi-bin/sendsms -> 202 "0: Accepted for delivery" after --delay-ms, counted
    GET /count                -> {"total": N, "uptime_s": ..., "delay_ms": ...}  (not counted)
    POST /reset               -> zero the counter                              (not counted)
    anything else             -> 404

aiohttp's low-level server (no router, no access log), uvloop when importable, so that it
stays far from being the bottleneck. SIGTERM/SIGINT exit cleanly and print the final count.

    python bench/fake_upstream.py --port 18080 --delay-ms 0
"""

from __future__ import annotations

import argparse
import asyncio
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
    args = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
        flavour = "uvloop"
    except ImportError:
        flavour = "asyncio"
    asyncio.run(serve(args.host, args.port, args.delay_ms / 1000.0, flavour))


async def serve(host: str, port: int, delay: float, flavour: str) -> None:
    count = 0
    started = time.time()

    def snapshot() -> bytes:
        return json.dumps(
            {"total": count, "uptime_s": round(time.time() - started, 3), "delay_ms": delay * 1000}
        ).encode()

    async def handler(request: web.BaseRequest) -> web.Response:
        nonlocal count
        path = request.path
        if path == "/cgi-bin/sendsms":
            count += 1
            if delay > 0:
                await asyncio.sleep(delay)
            return web.Response(status=202, body=ACCEPTED, content_type="text/plain")
        if path == "/count":
            return web.Response(body=snapshot(), content_type="application/json")
        if path == "/reset" and request.method == "POST":
            count = 0
            return web.Response(body=b"reset\n", content_type="text/plain")
        return web.Response(status=404, body=b"not found\n", content_type="text/plain")

    loop = asyncio.get_running_loop()
    server = web.Server(handler, access_log=None)
    srv = await loop.create_server(server, host, port, backlog=4096, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"fake_upstream ({flavour}) on http://{host}:{port} delay_ms={delay * 1000:g}",
        file=sys.stderr,
        flush=True,
    )
    await stop.wait()
    print(f"fake_upstream final: {snapshot().decode()}", file=sys.stderr, flush=True)
    srv.close()
    await server.shutdown(1.0)


if __name__ == "__main__":
    main()
