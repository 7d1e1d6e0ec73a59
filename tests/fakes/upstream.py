"""A fake upstream provider on loopback that speaks the four wire formats (SPEC §8).

It records every request it receives and answers according to a per-kind behaviour, so tests
can check the exact wire format and every failure policy against real HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json as jsonlib
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

KINDS = ("wavy", "tww", "kannel", "http")
# status queries: Wavy's status search, TWW's StatusSMS (one SeuNum) and StatusSMSNaoLido (unread)
QUERY_KINDS = ("wavy-status", "tww-status", "tww-unread")
MODES = ("ok", "error", "custom", "reset", "hang", "echo")

TWW_NS = "https://www.twwwireless.com.br/reluzcap/wsreluzcap"


def tww_body(text: str) -> str:
    """The XML answer of TWW's EnviaSMS around `text` (OK, NOK, Erro, NA)."""
    return f'<?xml version="1.0" encoding="utf-8"?>\n<string xmlns="{TWW_NS}">{text}</string>'


def pick_free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Received:
    """One request as the fake upstream saw it."""

    kind: str  # "wavy" | "tww" | "kannel" | "http"
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    form: dict[str, str]
    json: Any  # parsed JSON body or None
    body: bytes
    outcome: str = ""  # how the fake answered: a mode of behave(), or "limited" (429 over the cap)
    at: float = 0.0  # time.monotonic() when it arrived


@dataclass(frozen=True)
class _Behaviour:
    mode: str = "ok"
    status: int | None = None
    body: str | bytes | None = None
    delay: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()


class FakeUpstream:
    """An aiohttp.web server on 127.0.0.1 speaking wavy, tww, kannel and http-template."""

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self.url = ""
        self._lock = threading.Lock()
        self._requests: list[Received] = []
        self._behaviours: dict[str, _Behaviour] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._release: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wavy_status: dict[str, dict[str, Any]] = {}  # correlationId -> status fields
        self._tww_status: dict[str, str] = {}  # SeuNum -> TWW status code
        self._tww_unread: list[tuple[str, str]] = []
        self._cap: tuple[int, str] | None = None  # (sends per second, Retry-After of the 429)
        self._taken: deque[float] = deque()  # when each send within the last second was taken

    def set_wavy_status(self, correlation_id: str, **fields: Any) -> None:
        """What Wavy's status search answers for a correlationId (e.g. deliveredStatusCode=4)."""
        with self._lock:
            self._wavy_status.setdefault(correlation_id, {}).update(fields)

    def set_tww_status(self, seunum: str, status: str) -> None:
        """What TWW's StatusSMS answers for a SeuNum (CL, OK, E1...)."""
        with self._lock:
            self._tww_status[seunum] = status

    def queue_tww_unread(self, seunum: str, status: str) -> None:
        """A status that TWW's StatusSMSNaoLido hands out once."""
        with self._lock:
            self._tww_unread.append((seunum, status))

    # -- what tests read and set ------------------------------------------------------------

    @property
    def requests(self) -> list[Received]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def received(self, kind: str) -> list[Received]:
        """The requests received for one kind."""
        return [r for r in self.requests if r.kind == kind]

    def behave(
        self,
        kind: str,
        *,
        mode: str = "ok",
        status: int | None = None,
        body: str | bytes | None = None,
        delay: float = 0.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Set how the fake answers `kind` from now on.

        mode: "ok" (a realistic success), "error" (a realistic hard error: wavy 400 JSON,
        tww <string>NOK</string>, kannel 403 "Authorization failed for sendsms", http 200
        {"status": "error"}), "custom" (status, default 200, and body as given; a 3xx also
        gets a Location back to this server), "reset" (close the connection without an
        answer), "hang" (never answer), "echo" (a 500 error page quoting the whole request
        line, as some gateways' debug pages do). `delay` seconds pass before any of them.
        `headers` go with a custom answer (e.g. {"Retry-After": "7"} on a 503).
        """
        if kind not in KINDS + QUERY_KINDS:
            raise ValueError(f"unknown kind {kind!r}")
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        with self._lock:
            self._behaviours[kind] = _Behaviour(mode, status, body, delay, tuple((headers or {}).items()))

    def limit_rate(self, per_second: int | None, *, retry_after: str = "1") -> None:
        """Take at most `per_second` sends (any kind) in any sliding second; answer the rest
        429 with this Retry-After, as a provider's rate cap does. None lifts the cap."""
        with self._lock:
            self._cap = None if per_second is None else (per_second, retry_after)
            self._taken.clear()

    def accepted(self, kind: str) -> list[Received]:
        """The requests of `kind` answered with the kind's success (what reached the handset)."""
        return [r for r in self.received(kind) if r.outcome == "ok"]

    def reset(self) -> None:
        """Forget the requests received, every behaviour set and the rate cap."""
        with self._lock:
            self._requests.clear()
            self._behaviours.clear()
            self._cap = None
            self._taken.clear()

    # -- lifecycle in the current loop -------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1 in the running loop."""
        self._release = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        site = web.SockSite(self._runner, sock, backlog=1024)
        await site.start()
        self._port = sock.getsockname()[1]  # a restart (refuse_for) listens on the same port
        self.url = f"http://127.0.0.1:{self._port}"

    async def refuse_for(self, seconds: float) -> None:
        """Go away: close the port and every open connection (a connect is refused), and listen
        again on the same port after `seconds`, in the running loop."""
        await self.stop()
        loop = asyncio.get_running_loop()
        loop.call_later(seconds, lambda: loop.create_task(self.start()))

    async def stop(self) -> None:
        """Stop listening and release any hanging handler."""
        if self._release is not None:
            self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- lifecycle in a thread of its own ----------------------------------------------------

    def start_in_thread(self) -> None:
        """Run the server on its own loop in a daemon thread (for e2e tests)."""
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # report to the starting thread
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-upstream", daemon=True)
        self._thread.start()
        started.wait(10)
        if failure:
            raise failure[0]

    def stop_thread(self) -> None:
        """Stop the server started by start_in_thread and join its thread."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None
        self._loop = None

    # -- the server side ---------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        kind = kind_of(request.method, request.path)
        body = await request.read()
        received = Received(
            kind=kind,
            method=request.method,
            path=request.path,
            headers=dict(request.headers),
            query=dict(request.query),
            form=await _form_of(request),
            json=_json_of(request, body),
            body=body,
            at=time.monotonic(),
        )
        with self._lock:
            self._requests.append(received)
            behaviour = self._behaviours.get(kind, _Behaviour())
            limited = kind in KINDS and self._over_the_cap()
            received.outcome = "limited" if limited else behaviour.mode
        if limited:
            assert self._cap is not None
            headers = {"Retry-After": self._cap[1]}
            return web.json_response({"error": "rate limit exceeded"}, status=429, headers=headers)
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if behaviour.mode == "hang":
            assert self._release is not None
            await self._release.wait()
            return await _drop(request)
        if behaviour.mode == "reset":
            return await _drop(request)
        if behaviour.mode == "custom":
            status = 200 if behaviour.status is None else behaviour.status
            raw = behaviour.body if behaviour.body is not None else b""
            data = raw.encode() if isinstance(raw, str) else raw
            # a redirect points back here, so a client that follows it shows up twice
            headers = dict(behaviour.headers)
            if 300 <= status < 400:
                headers["Location"] = "/redirected"
            return web.Response(
                status=status, body=data, content_type="text/plain", headers=headers
            )
        if behaviour.mode == "error":
            return _error_answer(kind)
        if behaviour.mode == "echo":
            page = f"<html><body><h1>500 Internal Error</h1><p>{html.escape(request.method + ' ' + request.raw_path)}</p></body></html>"
            return web.Response(status=500, text=page, content_type="text/html")
        return self.ok_answer(kind, received)

    def _over_the_cap(self) -> bool:
        """Under the lock: whether one more send now exceeds the rate cap (else it is taken)."""
        if self._cap is None:
            return False
        now = time.monotonic()
        while self._taken and now - self._taken[0] >= 1.0:
            self._taken.popleft()
        if len(self._taken) >= self._cap[0]:
            return True
        self._taken.append(now)
        return False

    def ok_answer(self, kind: str, received: Received) -> web.Response:
        """The kind's success answer to `received` (a query kind answers its status)."""
        if kind in QUERY_KINDS:
            return _status_answer_for(self, kind, received)
        if kind == "wavy":
            correlation = (received.json or {}).get("correlationId")
            answer = [{"id": str(uuid.uuid4()), "correlationId": correlation}]
            with self._lock:
                self._wavy_status.setdefault(str(correlation), {}).setdefault("id", answer[0]["id"])
            return web.json_response(answer)
        if kind == "tww":
            return web.Response(text=tww_body("OK"), content_type="text/xml")
        if kind == "kannel":
            return web.Response(status=202, text="0: Accepted for delivery")
        with self._lock:
            n = next(self._ids)
        return web.json_response({"status": "ok", "id": f"m-{n}"})


def _status_answer_for(fake: FakeUpstream, kind: str, received: Received) -> web.Response:
    with fake._lock:
        if kind == "wavy-status":
            key = received.query.get("correlationId", "")
            record = fake._wavy_status.get(key)
            found = [] if record is None else [{"correlationId": key, "sentStatusCode": 2, **record}]
            return web.json_response(found)
        if kind == "tww-status":
            seunum = received.form.get("SeuNum", "")
            sent = any(r.kind == "tww" and r.form.get("SeuNum") == seunum for r in fake._requests)
            status = fake._tww_status.get(seunum, "OK" if sent else None)
            rows = [] if status is None else [(seunum, status)]
        else:
            rows, fake._tww_unread = fake._tww_unread[:400], fake._tww_unread[400:]
    return web.Response(text=_tww_rows(rows), content_type="text/xml")


def kind_of(method: str, path: str) -> str:
    """Which kind a request is, by its method and path."""
    if method == "POST" and path == "/v1/send-sms":
        return "wavy"
    if path == "/v1/sms/status/search":
        return "wavy-status"
    if path.endswith("/StatusSMS"):
        return "tww-status"
    if path.endswith("/StatusSMSNaoLido"):
        return "tww-unread"
    if path.endswith("/EnviaSMS"):
        return "tww"
    if method == "GET" and path == "/cgi-bin/sendsms":
        return "kannel"
    return "http"


async def _form_of(request: web.Request) -> dict[str, str]:
    if request.content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return {}
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _json_of(request: web.Request, body: bytes) -> Any:
    if "json" not in request.content_type or not body:
        return None
    try:
        return jsonlib.loads(body)
    except ValueError:
        return None


def _error_answer(kind: str) -> web.Response:
    if kind == "wavy":
        error = {"errorCode": 400, "errorMessage": "Invalid destination"}
        return web.json_response(error, status=400)
    if kind == "tww":
        return web.Response(text=tww_body("NOK"), content_type="text/xml")
    if kind == "kannel":
        return web.Response(status=403, text="Authorization failed for sendsms")
    return web.json_response({"status": "error"})


async def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without answering anything."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    # The handler must return something; the write to the closed transport goes nowhere.
    with contextlib.suppress(Exception):
        request.protocol.force_close()
    raise asyncio.CancelledError


def _tww_rows(rows: list[tuple[str, str]]) -> str:
    items = "".join(
        f"<StatusSMS><seunum>{n}</seunum><celular>5511987654321</celular><mensagem>x</mensagem>"
        f"<status>{st}</status><datarec>2026-11-24T10:00:00</datarec><op>VIVO</op></StatusSMS>"
        for n, st in rows
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<DataSet xmlns="' + TWW_NS + '">'
        f'<diffgr:diffgram xmlns:diffgr="urn:schemas-microsoft-com:xml-diffgram-v1">'
        f'<OutDataSet xmlns="">{items}</OutDataSet></diffgr:diffgram></DataSet>'
    )
