"""A real gateway for tests: create_app(...) under uvicorn in a thread, on a free loopback port,
with uvicorn's ERROR records collected (an exception escaping the app lands there)."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from pombo.api.app import create_app
from pombo.api.server import PROTOCOL
from pombo.config import Settings


class ErrorLog(logging.Handler):
    """Collects ERROR records of uvicorn (where an exception escaping the app is logged)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def take(self) -> list[str]:
        out = [f"{r.name}: {r.getMessage()} {r.exc_info[1]!r}" if r.exc_info else r.getMessage() for r in self.records]
        self.records.clear()
        return out


@contextlib.contextmanager
def serve(database_url: str, *, http: Any = PROTOCOL, **settings: Any) -> Iterator[tuple[str, int, ErrorLog]]:
    """create_app(Settings(...)) served by uvicorn.Server in a thread, on a free loopback port,
    with the HTTP protocol `pombo serve` uses (or `http`)."""
    # IPPROTO_TCP, so asyncio sets TCP_NODELAY on accepted sockets (protocol 0 makes it skip it)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(Settings(database_url=database_url, **{"log_level": "CRITICAL", **settings}))
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="on", loop="asyncio", http=http,
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    errors = ErrorLog()
    loggers = [logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi")]
    for logger in loggers:
        logger.addHandler(errors)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="pombo-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the gateway did not start: {errors.take()}")
        time.sleep(0.01)
    try:
        yield "127.0.0.1", port, errors
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
        for logger in loggers:
            logger.removeHandler(errors)
