"""Customer callbacks: each state change of a message pushed to the customer's URL.

Events come from the store's outbox (written with the change itself), so nothing is lost on a
crash; delivery is at least once, in order per message, with an `event_id` to de-duplicate.
Retries back off exponentially; their state (attempts, next try) lives in the database and
survives a restart; after `max_tries` the event is marked failed and the next one goes.

Fair across customers: each customer has its own few push slots (a slow or dead endpoint holds
only its own customer's), the outbox is claimed a few events per customer at a time with the
customers taking turns, every push runs on its own task (the loop never waits for a batch), and
an endpoint that keeps not answering is left alone for a while (its events wait, unclaimed, without
counting a try). Pushes go only to allowed addresses (services/urlguard.py), and the customer's
credentials and headers only to the customer's own configured URL, never to a request's `rurl`.
"""

from __future__ import annotations

import asyncio
import base64
import random
from typing import Any, Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import aiohttp
import orjson
import structlog

from pombo.domain import codes
from pombo.domain.model import CallbackConfig
from pombo.domain.netguard import UrlRefused, callback_host, literal_address
from pombo.domain.scrub import Scrubber, scrubber_for
from pombo.errors import StoreUnavailable, new_error_id
from pombo.ports import Catalogs, Clock, Outbox
from pombo.services.inbound import render_inbound
from pombo.services.status import iso, render
from pombo.services.urlguard import AddressRefused, UrlGuard

log = structlog.get_logger("pombo.callbacks")

DEFAULT = CallbackConfig(url="")
CLAIM_LIMIT = 500
ENDPOINT_BASE_PAUSE = 1.0
ENDPOINT_MAX_PAUSE = 300.0


class CallbackStore(Catalogs, Outbox, Protocol):
    """What the callback sender needs: the configuration and the outbox."""


def payload(event: dict[str, Any], tz: ZoneInfo, scrub: Scrubber | None = None) -> dict[str, Any]:
    """What the customer receives for one state change: the message as GetSMSStatus shows it,
    with the status and delivery state of this change, its event id and when it happened. An
    inbound message (SPEC §14) is pushed as the event `mo`: the message as GetSMSReply shows it."""
    if event.get("inbound") is not None:
        return {
            "event": "mo",
            **render_inbound(event["inbound"], tz),
            "event_id": event["event_id"],
            "occurred_at": iso(event["occurred_at"], tz),
        }
    code = int(event["status_code"])
    return {
        **render(event["message"], tz, scrub=scrub or Scrubber(())),
        "status": codes.TEXTS[code],
        "status_code": str(code),
        "delivery": event["delivery"],
        "event_id": event["event_id"],
        "occurred_at": iso(event["occurred_at"], tz),
    }


def endpoint_of(url: str) -> str:
    """scheme://host:port: what one endpoint's backoff is kept by."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{parts.port or ''}"
    except ValueError:
        return url


def request_options(url: str, config: CallbackConfig, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The method and aiohttp options of one push. The customer's credentials and headers go
    only to its own configured URL: a per-message rurl gets the payload and nothing else."""
    own = bool(config.url) and url == config.url
    headers = dict(config.headers) if own else {}
    if own and (config.username or config.password):
        token = base64.b64encode(f"{config.username}:{config.password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    fields = {k: "" if v is None else str(v) for k, v in body.items()}
    kwargs: dict[str, Any] = {"headers": headers, "allow_redirects": False}
    method = config.method.upper()
    if method == "GET":
        kwargs["params"] = fields
    elif config.format == "form":
        kwargs["data"] = fields
    else:
        kwargs["data"] = orjson.dumps(body)
        headers["Content-Type"] = "application/json"
    return method, kwargs


class CallbackSender:
    """Sends due callback events."""

    def __init__(
        self,
        *,
        store: CallbackStore,
        clock: Clock,
        tz: ZoneInfo,
        guard: UrlGuard,
        max_tries: int = 8,
        base_delay: float = 2.0,
        max_delay: float = 600.0,
        timeout: float = 10.0,
        per_customer: int = 4,
    ) -> None:
        self._store = store
        self._clock = clock
        self._tz = tz
        self._guard = guard
        self._max_tries = max_tries
        self._base = base_delay
        self._max_delay = max_delay
        self._timeout = timeout
        self._per_customer = per_customer
        self._lease = 2 * timeout + 5  # a claimed event may wait for its customer's slot, then push
        self._slots: dict[int, asyncio.Semaphore] = {}
        self._held: dict[int, int] = {}  # claimed and not finished, per customer
        self._paused: dict[str, tuple[int, float]] = {}  # endpoint -> (failures in a row, until)
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Stop the pushes in flight (their events are retried after the lease) and close."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def pump(self) -> list[asyncio.Task[None]]:
        """Claim what is due and start each push on its own task; does not wait for them."""
        now = self._clock.now()
        events = await self._store.due_callbacks(
            now=now, lease=self._lease, limit=CLAIM_LIMIT, per_customer=4 * self._per_customer
        )
        if not events:
            return []
        catalog = await self._store.catalog()
        scrub = scrubber_for(catalog)
        started = []
        for event in events:
            customer_id = int(event["customer_id"])
            busy = self._held.get(customer_id, 0) >= 4 * self._per_customer
            if busy or self._paused_until(endpoint_of(event["url"]), now):
                continue  # left claimed: it comes back when its lease ends, no try counted
            self._held[customer_id] = self._held.get(customer_id, 0) + 1
            task = asyncio.create_task(self._deliver(event, catalog, scrub, claimed_at=now))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started.append(task)
        return started

    async def run_once(self) -> int:
        """Send every event that is due now and wait for those pushes; how many were tried."""
        tasks = await self.pump()
        await asyncio.gather(*tasks)
        return len(tasks)

    def _paused_until(self, endpoint: str, now: float) -> bool:
        paused = self._paused.get(endpoint)
        return paused is not None and paused[1] > now

    async def _deliver(self, event: dict[str, Any], catalog: Any, scrub: Scrubber, *, claimed_at: float) -> None:
        customer_id = int(event["customer_id"])
        try:
            customer = catalog.customers.get(customer_id)
            config = customer.callback if customer is not None and customer.callback else DEFAULT
            slots = self._slots.setdefault(customer_id, asyncio.Semaphore(self._per_customer))
            async with slots:
                if self._clock.now() > claimed_at + self._lease - self._timeout - 1:
                    return  # waited too long for a slot: its lease ends before a push would
                error, down = await self._post(event["url"], config, payload(event, self._tz, scrub))
            await self._settle(event, error, down=down)
        except StoreUnavailable as exc:  # the event's lease ends and it is claimed again
            log.warning("callback_store_unavailable", error=str(exc))
        except Exception:
            log.exception("callback_push_failed", error_id=new_error_id())
        finally:
            self._held[customer_id] -= 1

    async def _settle(self, event: dict[str, Any], error: str | None, *, down: bool) -> None:
        now = self._clock.now()
        endpoint = endpoint_of(event["url"])
        if not down:
            self._paused.pop(endpoint, None)  # it answered: its own events back off on their own
        else:
            failures = self._paused.get(endpoint, (0, 0.0))[0] + 1
            pause = min(ENDPOINT_MAX_PAUSE, ENDPOINT_BASE_PAUSE * 2 ** (failures - 1))
            self._paused[endpoint] = (failures, now + pause)
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

    async def _post(self, url: str, config: CallbackConfig, body: dict[str, Any]) -> tuple[str | None, bool]:
        """(None on a 2xx answer, else what went wrong; whether the endpoint looks down: no
        answer at all, which is what holds a push slot for long)."""
        try:
            host = callback_host(url)
        except UrlRefused as exc:
            return f"callback URL refused: {exc}", False
        literal = literal_address(host)
        if literal is not None and not self._guard.allowed(str(literal)):
            return f"callback address not allowed: {host}", False  # names: the resolver checks
        method, kwargs = request_options(url, config, body)
        try:
            async with asyncio.timeout(self._timeout):
                async with self._get_session().request(method, url, **kwargs) as resp:
                    await resp.read()
        except AddressRefused as exc:
            return str(exc)[:300], False
        except (aiohttp.ClientError, TimeoutError, ValueError, OSError) as exc:
            inner = getattr(exc, "os_error", None) or exc.__cause__
            if isinstance(inner, AddressRefused):  # the resolver refused what the name pointed at
                return str(inner)[:300], False
            return f"{type(exc).__name__}: {exc}"[:300], True
        if 200 <= resp.status < 300:
            return None, False
        return f"HTTP {resp.status}", False

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # no pool-wide cap (the per-customer slots bound the pushes); every name is resolved
            # and checked by the guard's resolver, and connected to at the checked address
            connector = aiohttp.TCPConnector(limit=0, resolver=self._guard.resolver(), ttl_dns_cache=10)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
        return self._session
