"""Customer callbacks: each state change of a message pushed to the customer's URL.

Events come from the store's outbox (written with the change itself), so nothing is lost on a
crash; delivery is at least once, in order per message, with an `event_id` to de-duplicate.
Retries back off exponentially; their state (attempts, next try) lives in the database and
survives a restart; after `max_tries` the event is marked failed and the next one goes.
"""

from __future__ import annotations

import asyncio
import base64
import random
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import aiohttp
import orjson
import structlog

from pombo.domain import codes
from pombo.domain.model import CallbackConfig
from pombo.ports import Catalogs, Clock, Outbox
from pombo.services.status import iso, render

log = structlog.get_logger("pombo.callbacks")

DEFAULT = CallbackConfig(url="")

class CallbackStore(Catalogs, Outbox, Protocol):
    """What the callback sender needs: the configuration and the outbox."""


def payload(event: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """What the customer receives for one state change: the message as GetSMSStatus shows it,
    with the status and delivery state of this change, its event id and when it happened."""
    code = int(event["status_code"])
    return {
        **render(event["message"], tz),
        "status": codes.TEXTS[code],
        "status_code": str(code),
        "delivery": event["delivery"],
        "event_id": event["event_id"],
        "occurred_at": iso(event["occurred_at"], tz),
    }


class CallbackSender:
    """Sends due callback events."""

    def __init__(
        self,
        *,
        store: CallbackStore,
        clock: Clock,
        tz: ZoneInfo,
        max_tries: int = 8,
        base_delay: float = 2.0,
        max_delay: float = 600.0,
        timeout: float = 10.0,
        concurrency: int = 16,
    ) -> None:
        self._store = store
        self._clock = clock
        self._tz = tz
        self._max_tries = max_tries
        self._base = base_delay
        self._max_delay = max_delay
        self._timeout = timeout
        self._limit = asyncio.Semaphore(concurrency)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run_once(self) -> int:
        """Send every event that is due now; returns how many were tried."""
        events = await self._store.due_callbacks(now=self._clock.now(), lease=self._timeout + 5, limit=200)
        if events:
            catalog = await self._store.catalog()
            await asyncio.gather(*(self._deliver(e, catalog) for e in events))
        return len(events)

    async def _deliver(self, event: dict[str, Any], catalog: Any) -> None:
        customer = catalog.customers.get(event["customer_id"])
        config = customer.callback if customer is not None and customer.callback else DEFAULT
        body = payload(event, self._tz)
        async with self._limit:
            error = await self._post(event["url"], config, body)
        now = self._clock.now()
        if error is None:
            await self._store.callback_done(event_id=event["id"], now=now)
            return
        tries = int(event["attempts"]) + 1
        next_at = None if tries >= self._max_tries else now + self._delay(tries)
        await self._store.callback_retry(event_id=event["id"], error=error, next_at=next_at, now=now)
        log.info("callback_failed", cdls_id=event["message_id"], tries=tries, final=next_at is None, error=error[:100])

    def _delay(self, tries: int) -> float:
        # exponential with jitter, so a recovering endpoint is not hit by every event at once
        delay: float = min(self._max_delay, self._base * 2 ** (tries - 1))
        return delay * random.uniform(0.8, 1.2)

    async def _post(self, url: str, config: CallbackConfig, body: dict[str, Any]) -> str | None:
        """None on a 2xx answer, else what went wrong."""
        headers = dict(config.headers)
        if config.username or config.password:
            token = base64.b64encode(f"{config.username}:{config.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        fields = {k: "" if v is None else str(v) for k, v in body.items()}
        kwargs: dict[str, Any] = {"headers": headers, "allow_redirects": False}
        if config.method.upper() == "GET":
            kwargs["params"] = fields
        elif config.format == "form":
            kwargs["data"] = fields
        else:
            kwargs["data"] = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            session = self._get_session()
            async with session.request(config.method.upper(), url, **kwargs) as resp:
                await resp.read()
                return None if 200 <= resp.status < 300 else f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"[:300]

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        return self._session
