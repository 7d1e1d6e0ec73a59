"""A Wavy-speaking provider on loopback for the engine's tests (SPEC §8 wire format, §11
behaviours): it records when each message arrived (by correlationId = cdls_id), and can cap its
rate (429 above it), answer 503 with Retry-After, or answer late.

Runs in a thread of its own so a gateway in this process or in a subprocess can load it hard.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from typing import Any

from aiohttp import web

from tests.fakes.upstream import pick_free_port


class WavyProvider:
    """POST /v1/send-sms -> [{"id", "correlationId"}]; GET /v1/sms/status/search for reconciling."""

    def __init__(self) -> None:
        self.port = pick_free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.arrivals: list[tuple[int, float]] = []  # (cdls_id, monotonic) of every accepted send
        self.refused = 0  # 429/503 answers
        self.cap: int | None = None  # answer 429 above this many per sliding second
        self.busy_until = 0.0  # monotonic: answer 503 Retry-After until then
        self.retry_after = 1
        self.delay = 0.0
        self._window: collections.deque[float] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def counts(self) -> collections.Counter[int]:
        """How many times each cdls_id was accepted."""
        with self.lock:
            return collections.Counter(mid for mid, _ in self.arrivals)

    def most_in_a_second(self) -> int:
        """The most sends accepted in any sliding 1-second window."""
        with self.lock:
            times = sorted(t for _, t in self.arrivals)
        most, j = 0, 0
        for i, t in enumerate(times):
            while times[j] <= t - 1.0:
                j += 1
            most = max(most, i - j + 1)
        return most

    async def _send(self, request: web.Request) -> web.Response:
        body: Any = await request.json()
        mid = int(body["correlationId"])
        now = time.monotonic()
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            if now < self.busy_until:
                self.refused += 1
                return web.Response(status=503, headers={"Retry-After": str(self.retry_after)}, text="busy")
            if self.cap is not None:
                while self._window and self._window[0] <= now - 1.0:
                    self._window.popleft()
                if len(self._window) >= self.cap:
                    self.refused += 1
                    return web.Response(status=429, text="rate limited")
                self._window.append(now)
            self.arrivals.append((mid, now))
        return web.json_response([{"id": f"w-{mid}", "correlationId": str(mid)}])

    async def _status(self, request: web.Request) -> web.Response:
        wanted = request.query.get("correlationId", "")
        with self.lock:
            known = any(str(mid) == wanted for mid, _ in self.arrivals)
        if not known:
            return web.Response(status=404, text="not found")
        return web.json_response([{"id": f"w-{wanted}", "correlationId": wanted, "sentStatusCode": 2}])

    def start(self) -> None:
        """Serve in a background thread until stop()."""
        ready = threading.Event()

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/v1/send-sms", self._send)
            app.router.add_get("/v1/sms/status/search", self._status)
            self._runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=1024).start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(10)

    def stop(self) -> None:
        """Stop serving."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
