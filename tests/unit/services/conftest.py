"""One world for the services' unit tests: the in-memory store, a fake clock, a scripted upstream,
and every service wired over them. No SQL, no sockets (callbacks post to loopback only).

Every service is constructed in `make_world` and nowhere else, so a constructor change is an edit
here only.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pombo.adapters.memory import MemoryStore
from pombo.domain import credentials
from pombo.domain.delivery import StatusReport
from pombo.domain.model import ConnectionConfig, OutboundSms, UpstreamAck
from pombo.ports import AuthPolicy, NotSent, OutcomeUnknown, UpstreamRejected, UpstreamTimeout
from pombo.services.account import Accounts
from pombo.services.auth import Authenticator, Credentials
from pombo.services.callbacks import CallbackSender
from pombo.services.dispatch import Dispatcher
from pombo.services.dlr import DeliveryReports
from pombo.services.inbound import InboundIntake, Replies
from pombo.services.make_sms import MakeSms, SendResult
from pombo.services.provisioning import parse_document
from pombo.services.reconcile import Reconciler
from pombo.services.status import Status
from pombo.services.urlguard import UrlGuard

TZ = ZoneInfo("America/Sao_Paulo")
# the receivers of these tests listen on loopback, which production refuses: allowed here as an
# operator would allow a private range (POMBO_CALLBACK_ALLOW)
LOOPBACK_GUARD = UrlGuard(["127.0.0.0/8"])
NOON = datetime(2024, 6, 3, 12, 0, tzinfo=TZ).timestamp()  # a Monday, outside the night window
ADM_ID = 2
TOKEN = "shop-token-0001"  # customer 11, child of reseller 10
OTHER_TOKEN = "other-token-001"  # customer 20, another tenant
ADM_TOKEN = "adm-token-00001"  # customer 2, the operator's ADM account
DEST = "11987654321"  # normalises to 5511987654321
NDEST = "5511987654321"
IP = "203.0.113.7"
MINTED_KEEP, MINTED_TTL = 20, 30 * 86_400.0  # POMBO_MINTED_TOKENS_PER_USER, POMBO_MINTED_TOKEN_TTL defaults
ACK = 0.1  # ack_timeout of every connection: a scripted delay past it answers WR


class FakeClock:
    """The Clock port, moved by hand."""

    def __init__(self, start: float = NOON) -> None:
        self.t = start

    def now(self) -> float:
        """The current fake time."""
        return self.t

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.t += seconds


@dataclass(frozen=True)
class Outcome:
    """What a scripted upstream does with one send: ok, reject, timeout, unknown, not_sent or
    crash, after `delay` (not_sent with the provider's `retry_after`)."""

    kind: str = "ok"
    delay: float = 0.0
    upstream_id: str | None = None
    raw: str = "scripted"
    retry_after: float | None = None


OK = Outcome()


@dataclass
class Upstream:
    """The scripted upstream behind every connection: outcomes queued per connection name,
    status answers per message id (for reconciliation), unread reports (for polling)."""

    outcomes: dict[str, deque[Outcome]] = field(default_factory=dict)
    statuses: dict[int, StatusReport | Exception | None] = field(default_factory=dict)
    unread: dict[str, list[StatusReport]] = field(default_factory=dict)
    built: list[ScriptedConnection] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=dict)  # sends not yet answered, per connection
    most_in_flight: dict[str, int] = field(default_factory=dict)
    started: list[tuple[str, int, float]] = field(default_factory=list)  # (connection, id, monotonic)

    def script(self, connection: str, *outcomes: Outcome) -> None:
        """Queue outcomes for the next sends on `connection` (then OK again)."""
        self.outcomes.setdefault(connection, deque()).extend(outcomes)

    def next(self, connection: str) -> Outcome:
        queue = self.outcomes.get(connection)
        return queue.popleft() if queue else OK

    def sent(self, connection: str | None = None) -> list[OutboundSms]:
        """Everything handed to the upstream, on one connection or all."""
        return [s for c in self.built if connection in (None, c.config.name) for s in c.sent]

    def factory(self, config: ConnectionConfig) -> ScriptedConnection:
        """The Dispatcher's connection factory: kinds with a status query get one."""
        cls = QueryableConnection if config.kind in ("wavy", "tww") else ScriptedConnection
        connection = cls(config, self)
        self.built.append(connection)
        return connection


class ScriptedConnection:
    """The Connection port, answering as the Upstream script says (no status query)."""

    def __init__(self, config: ConnectionConfig, upstream: Upstream) -> None:
        self.config = config
        self._upstream = upstream
        self.sent: list[OutboundSms] = []
        self.closed = False

    async def send(self, sms: OutboundSms) -> UpstreamAck:
        """Answer with the next scripted outcome."""
        up, name = self._upstream, self.config.name
        self.sent.append(sms)
        up.started.append((name, sms.id, time.monotonic()))
        up.in_flight[name] = up.in_flight.get(name, 0) + 1
        up.most_in_flight[name] = max(up.most_in_flight.get(name, 0), up.in_flight[name])
        try:
            return await self._answer(sms, up.next(name))
        finally:
            up.in_flight[name] -= 1

    async def _answer(self, sms: OutboundSms, outcome: Outcome) -> UpstreamAck:
        if outcome.delay:
            await asyncio.sleep(outcome.delay)
        if outcome.kind == "not_sent":
            raise NotSent(outcome.raw, retry_after=outcome.retry_after)
        if outcome.kind == "unknown":
            raise OutcomeUnknown(outcome.raw)
        if outcome.kind == "ok":
            return UpstreamAck(outcome.upstream_id or f"up-{sms.id}", outcome.raw)
        if outcome.kind == "reject":
            raise UpstreamRejected(outcome.raw)
        if outcome.kind == "timeout":
            raise UpstreamTimeout(outcome.raw)
        raise RuntimeError("a bug in the connection")

    async def close(self) -> None:
        """Mark closed."""
        self.closed = True


class QueryableConnection(ScriptedConnection):
    """A connection whose provider can be asked about one message (Wavy, TWW) and polled."""

    async def query(self, sms_id: int, upstream_id: str | None) -> StatusReport | None:
        """The scripted status answer (an exception is raised)."""
        answer = self._upstream.statuses.get(sms_id)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def poll_unread(self) -> list[StatusReport]:
        """The scripted unread reports of this connection, once."""
        return self._upstream.unread.pop(self.config.name, [])


def base_document() -> dict[str, Any]:
    """The provisioning document of the default world (a fresh copy to change freely)."""
    timing = {"ack_timeout": ACK, "final_timeout": 2}
    return copy.deepcopy({
        "connections": [
            {"name": "velip", "kind": "simulator", **timing},
            {"name": "matrix", "kind": "simulator", **timing},
            {"name": "flash", "kind": "simulator", "enabled": False, **timing},
            {"name": "wavy", "kind": "wavy", "url": "http://wavy.test", "username": "u", "token": "t",
             "dlr_secret": "wavy-secret", **timing},
            {"name": "tww", "kind": "tww", "url": "http://tww.test", "username": "u", "password": "p",
             "dlr_secret": "tww-secret", **timing},
            {"name": "kannel", "kind": "kannel", "url": "http://kannel.test", "username": "u",
             "password": "p", "dlr_secret": "kannel-secret", **timing},
            {"name": "http", "kind": "http", "url": "http://http.test", "path": "/send",
             "form": {"to": "{dest}", "msg": "{text}"}, "ok": "^OK", "dlr_secret": "http-secret",
             "dlr": {"id_field": "ref", "status_field": "st", "states": {"DELIVRD": "delivered"}}, **timing},
        ],
        "costs": [{"connection": "velip", "prefix": "55", "cost": "0.0100"}],
        "customers": [
            {"id": ADM_ID, "name": "ADM", "balance": 1000, "tokens": [ADM_TOKEN]},
            {"id": 10, "name": "Reseller", "balance": 100},
            {"id": 11, "name": "Shop", "parent": 10, "balance": 50, "tokens": [TOKEN]},
            {"id": 20, "name": "Other", "balance": 50, "tokens": [OTHER_TOKEN]},
        ],
        "tariffs": [
            {"customer": ADM_ID, "prefix": "55", "value": "0.0100"},
            {"customer": 10, "prefix": "55", "value": "0.0300"},
            {"customer": 11, "prefix": "55", "value": "0.0500"},
            {"customer": 20, "prefix": "55", "value": "0.0500"},
        ],
    })


def customer(doc: dict[str, Any], customer_id: int) -> dict[str, Any]:
    """The customer entry of `doc` with this id, to change in place."""
    return next(c for c in doc["customers"] if c["id"] == customer_id)


def connection(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """The connection entry of `doc` with this name, to change in place."""
    return next(c for c in doc["connections"] if c["name"] == name)


@dataclass
class World:
    """The store, the clock, the upstream and every service wired over them."""

    store: MemoryStore
    clock: FakeClock
    upstream: Upstream
    authenticator: Authenticator
    dispatcher: Dispatcher
    make_sms: MakeSms
    accounts: Accounts
    status: Status
    dlr: DeliveryReports
    reconciler: Reconciler
    callbacks: CallbackSender
    inbound: InboundIntake
    replies: Replies
    outcomes: list[tuple[str, int, int]] = field(default_factory=list)

    async def provision(self, doc: dict[str, Any]) -> None:
        """Apply a provisioning document (asserting it applies cleanly)."""
        report = await self.store.provision(parse_document(doc), now=self.clock.now())
        assert not report.errors, report.errors

    async def send(self, *, token: str | None = TOKEN, basic: tuple[str, str] | None = None, ip: str = IP,
                   **params: str) -> SendResult:
        """One MakeSMS request (dest and message default to a valid send)."""
        params = {"dest": DEST, "message": "hello", **params}
        return await self.make_sms(params=params, creds=Credentials(token=token, basic=basic, ip=ip))

    def message(self, message_id: int) -> dict[str, Any]:
        """The stored log row (internal fields included)."""
        return self.store.t.messages[message_id]

    async def balance(self, customer_id: int) -> int:
        """A customer's balance in units."""
        return (await self.store.balance(customer_id=customer_id))[0]

    async def aclose(self) -> None:
        """Finish background sends and close what holds resources."""
        await self.dispatcher.drain(timeout=5)
        await self.callbacks.close()


async def make_world(
    doc: dict[str, Any] | None = None,
    *,
    policy: AuthPolicy | None = None,
    not_found_after: float = 300.0,
    max_tries: int = 3,
    base_delay: float = 2.0,
    clock: FakeClock | None = None,
    guard: UrlGuard = LOOPBACK_GUARD,
) -> World:
    """Build and provision a world: the one place where services are constructed."""
    store, clock, upstream = MemoryStore(), clock or FakeClock(), Upstream()
    outcomes: list[tuple[str, int, int]] = []
    authenticator = Authenticator(store, clock=clock, policy=policy)
    dispatcher = Dispatcher(store, factory=upstream.factory, clock=clock,
                            on_outcome=lambda *o: outcomes.append(o))

    async def issue(customer_id: int, user_id: int | None) -> str:  # as bootstrap wires GetUserID tsid=1
        return await store.mint_token(customer_id=customer_id, user_id=user_id, keep=MINTED_KEEP, ttl=MINTED_TTL,
                                      now=clock.now())

    dlr = DeliveryReports(store=store, clock=clock)
    world = World(
        store=store,
        clock=clock,
        upstream=upstream,
        authenticator=authenticator,
        dispatcher=dispatcher,
        make_sms=MakeSms(store=store, authenticator=authenticator, dispatcher=dispatcher, clock=clock, tz=TZ,
                         adm_customer_id=ADM_ID, url_guard=guard),
        accounts=Accounts(store=store, authenticator=authenticator, token_issuer=issue),
        status=Status(store=store, authenticator=authenticator, tz=TZ),
        dlr=dlr,
        reconciler=Reconciler(store=store, connection_for=dispatcher.connection, reports=dlr, clock=clock,
                              not_found_after=not_found_after),
        callbacks=CallbackSender(store=store, clock=clock, tz=TZ, guard=guard, max_tries=max_tries,
                                 base_delay=base_delay,
                                 timeout=2.0),
        inbound=InboundIntake(store=store, clock=clock, tz=TZ),
        replies=Replies(store=store, authenticator=authenticator, tz=TZ),
        outcomes=outcomes,
    )
    await world.provision(base_document() if doc is None else doc)
    return world


WorldMaker = Callable[..., Any]


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash provisioned passwords at scrypt N=2**10, not 2**14: each users' world hashes several
    and the real cost (~30 ms each, more on a busy machine) would dominate these tests. The cost
    is stored in the hash, so verifying follows it; the hashing code itself is unchanged."""
    monkeypatch.setattr(credentials, "_SCRYPT_N", 2**10)


@pytest.fixture
async def worlds() -> AsyncIterator[WorldMaker]:
    """make_world, with every world built closed at the end of the test."""
    built: list[World] = []

    async def build(doc: dict[str, Any] | None = None, **options: Any) -> World:
        world = await make_world(doc, **options)
        built.append(world)
        return world

    yield build
    for world in built:
        await world.aclose()


@pytest.fixture
async def world(worlds: WorldMaker) -> World:
    """The default world."""
    built: World = await worlds()
    return built


def creds(token: str | None = TOKEN, *, basic: tuple[str, str] | None = None, ip: str = IP) -> Credentials:
    """Credentials as the API would pass them."""
    return Credentials(token=token, basic=basic, ip=ip)

