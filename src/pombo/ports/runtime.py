"""The ports of the send path and its background work, each as small as one use case needs.

Adapters (SQL on SQLite and PostgreSQL, and the in-memory fakes of `adapters/memory/`)
implement them; services depend on the narrowest one that fits. Every method that touches one
tenant's data takes `customer_id=` as a keyword, so a forgotten tenant is a TypeError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pombo.domain.catalog import Catalog
from pombo.domain.codes import Rejection
from pombo.domain.model import ConnectionConfig, OutboundSms, UpstreamAck
from pombo.domain.rejections import RejectedRequest

MessageRow = dict[str, Any]


@dataclass(frozen=True, slots=True)
class AcceptSpec:
    """Everything the store needs to run 244, 245, 255, 250 and write the log row atomically."""

    customer_id: int
    user_id: int | None
    dest: str
    text: str
    ctid: str | None
    cp_id: str | None
    cd_id: str | None
    sender: str | None
    connection: str
    httpdup: int
    night_since: float | None  # start of the current night, None outside the window
    night_limit: int | None
    debits: Sequence[tuple[int, int]] | None  # (account, amount) per chain account; None = 255
    cost: int
    segments: int
    encoding: str
    now: float
    notify_url: str | None = None  # where state changes are pushed (rurl or the customer's)
    text_received: str | None = None  # the body as the customer sent it, when `text` differs (SPEC §13)


@dataclass(frozen=True, slots=True)
class AuthPolicy:
    """Brute-force thresholds (SPEC §2)."""

    ip_limit: int = 20
    ip_window: float = 600.0
    user_limit: int = 5
    user_window: float = 600.0
    block_limit: int = 100
    block_window: float = 3600.0
    sid_limit: int = 15
    sid_window: float = 600.0
    pass_limit: int = 50  # code-140 answers (wrong user/password) from one IP: blocked for good
    pass_window: float = 3600.0

    def longest_window(self) -> float:
        """The longest window any rule looks back over: older failures count for nothing."""
        return max(self.ip_window, self.user_window, self.block_window, self.sid_window, self.pass_window)

    def permanent_block(self, *, hour: int, sids: int, wrong: int) -> str | None:
        """Why an IP goes on the permanent block list (failures in block_window, code-102 answers
        in sid_window, code-140 answers in pass_window), or None while it stays off it."""
        if hour >= self.block_limit or sids >= self.sid_limit or wrong >= self.pass_limit:
            return f"{hour} failures in {self.block_window:.0f}s, {sids} unknown tokens, {wrong} wrong passwords"
        return None


class Connection(Protocol):
    """One upstream provider connection (SPEC §8). Never retries a send by itself."""

    config: ConnectionConfig

    async def send(self, sms: OutboundSms) -> UpstreamAck:
        """Submit one message; a failure is NotSent, UpstreamRejected or OutcomeUnknown (SPEC §11)."""
        ...

    async def close(self) -> None:
        """Release sockets and sessions."""
        ...


@dataclass(frozen=True, slots=True)
class Waiting:
    """A message waiting in the upstream queue for its turn at `connection` (SPEC §11)."""

    message_id: int
    customer_id: int
    connection: str  # the one to try next
    priority: int  # 1 (high) is served before 0
    not_before: float
    enqueued_at: float  # when it first waited (max_queue_time counts from here)
    attempts: int = 0  # "not sent" outcomes so far
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message taken off the queue to be sent now, with what the connection needs."""

    waiting: Waiting
    sms: OutboundSms
    segments: int
    routed_to: str  # the connection in its log row (the first one, or a fallback that took it)


class Queue(Protocol):
    """The durable upstream queue and its attempts log (SPEC §11)."""

    async def enqueue(self, item: Waiting, *, note: str | None, now: float) -> None:
        """Put a message in the queue (or back, after a "not sent" attempt whose raw answer is
        `note`, logged as a not_sent attempt)."""
        ...

    async def claim_due(self, *, connection: str, limit: int, now: float) -> list[Claimed]:
        """Take up to `limit` messages due at `connection` off the queue, each logged as claimed
        in the same transaction: high priority first, then round robin across customers."""
        ...

    async def expire(self, *, connection: str, enqueued_before: float, now: float) -> list[int]:
        """Messages of `connection` waiting since before `enqueued_before`: off the queue, 300
        `expired in queue`, refunded once. Their ids."""
        ...

    async def queue_stats(self) -> dict[str, tuple[int, float]]:
        """Per connection with waiting messages: (how many, the oldest enqueued_at)."""
        ...

    async def record_attempt(self, *, message_id: int, connection: str, kind: str, raw: str, now: float) -> None:
        """Log one attempt's outcome kind (not_sent, unknown...) for the operator."""
        ...

    async def route_to(self, *, message_id: int, connection: str, cost: int, now: float) -> None:
        """A fallback takes the message: its log row's connection and cost become that one's."""
        ...

    async def attempts(self, *, message_id: int) -> list[MessageRow]:
        """The message's logged attempts (connection, kind, raw, at), oldest first."""
        ...


class Pacing(Protocol):
    """`throughput` shared by every worker and host using this store (SPEC §11)."""

    async def grant(self, *, connection: str, want: int, rate: int, now: float) -> int:
        """Up to `want` sends that may begin now on the connection's even schedule of `rate` per
        second (domain.engine.pace; the store's clock decides where it has one); how many were
        granted."""
        ...


class Clock(Protocol):
    """Wall-clock time, replaceable in tests."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class Catalogs(Protocol):
    """The configuration snapshot (customers, tokens, tariffs, connections, filters)."""

    async def catalog(self) -> Catalog:
        """The current snapshot; reloaded when an operator change was made anywhere."""
        ...

    def invalidate(self) -> None:
        """This process changed the configuration: look again on the next call."""
        ...


class SendLedger(Protocol):
    """Accepting a send and settling its upstream outcome, with the money of both."""

    async def accept(self, spec: AcceptSpec) -> int | Rejection:
        """Run 244, 245, 255, 250 and write the log row and the chain debit in one transaction."""
        ...

    async def settle_ok(self, *, message_id: int, upstream_id: str | None, raw: str, now: float) -> bool:
        """Record the upstream's acceptance of a waiting message; False when already settled."""
        ...

    async def settle_failed(self, *, message_id: int, raw: str, now: float) -> bool:
        """Record a hard error and refund exactly what was debited, once."""
        ...

    async def balance(self, *, customer_id: int) -> tuple[int, int]:
        """(balance, credit_limit) in units."""
        ...


class Orphans(Protocol):
    """Waiting messages whose sending process is gone (reconciliation)."""

    async def claim_orphans(self, *, older_than: float, now: float, limit: int = 100) -> list[MessageRow]:
        """Waiting messages older than `older_than`, claimed by this process to reconcile."""
        ...

    async def mark_unknown(self, *, message_id: int, now: float) -> bool:
        """A waiting message whose outcome cannot be learnt: delivery `unknown`."""
        ...


class Deliveries(Protocol):
    """Delivery reports from upstream providers."""

    async def apply_delivery(
        self,
        *,
        connection: str,
        message_id: int | None,
        upstream_id: str | None,
        state: str | None,
        raw: str,
        now: float,
    ) -> bool:
        """Keep a raw delivery report and move the message forward when allowed."""
        ...

    async def count_part(self, *, connection: str, message_id: int, now: float) -> None:
        """One more final receipt (Kannel sends one a part) for a message of more than one
        segment sent through `connection`; nothing for a one-segment or unknown message."""
        ...

    async def settle_parts(self, *, before: float, now: float) -> list[MessageRow]:
        """Take out of the count every message whose first receipt came before `before`; those
        with fewer parts than segments are added to their connection's part warnings and
        returned (connection, message_id, segments, parts), each once."""
        ...


@dataclass(frozen=True, slots=True)
class InboundSpec:
    """One inbound message (SPEC §14), routed, ready to be stored once."""

    connection: str
    provider_id: str
    sender: str  # `from`
    dest: str  # `to`
    text: str
    received_at: float
    customer_id: int | None  # None: unrouted, kept for the operator
    reply_to: int | None
    routed_by: str | None
    raw: str
    now: float
    callback_url: str | None = None  # the customer's callback URL (the answered message's rurl wins)
    opt: tuple[str, str] | None = None  # ("out" | "in", word) when the text is an opt word


class Inbound(Protocol):
    """Inbound messages (SPEC §14): finding what they answer, storing them once, reading them."""

    async def sent_message(self, *, connection: str, message_id: int) -> MessageRow | None:
        """The message with this id sent on `connection` (any customer's): what a provider's
        correlation names."""
        ...

    async def latest_sent_to(
        self, *, connection: str | None, dest: str, since: float, limit: int
    ) -> list[MessageRow]:
        """Messages to `dest` on `connection` (None: any) created since `since`, newest first."""
        ...

    async def save_inbound(self, spec: InboundSpec) -> tuple[int, bool]:
        """Store the message unless (connection, provider_id) is already stored: (its id, new).
        A new one's opt-out/opt-in change and its `mo` callback event are written in the same
        transaction; a known one changes nothing."""
        ...

    async def inbound_page(
        self, *, customer_id: int, start: float, end: float, after_id: int, limit: int
    ) -> list[MessageRow]:
        """Up to `limit` of the customer's inbound messages stored in [start, end) with id >
        after_id, by id."""
        ...

    async def inbound_replies(
        self, *, customer_id: int, message_id: int, after_id: int, limit: int
    ) -> list[MessageRow]:
        """The customer's inbound messages answering `message_id` with id > after_id, by id."""
        ...

    async def opt_changes(self, *, customer_id: int) -> list[MessageRow]:
        """The customer's opt-out/opt-in changes (number, action, word, mo_id, created_at),
        oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class HeldReceipt:
    """A receipt no message was found for yet (SPEC §12), kept to be matched later."""

    id: int
    connection: str
    upstream_id: str
    state: str | None
    raw: str
    created_at: float


class PartIds(Protocol):
    """Durable matching of SMPP receipts: the id of every part of a multi-part message (in each
    of its key forms, domain.receipt_ids), and receipts whose message is not known yet."""

    async def record_parts(self, *, connection: str, message_id: int, keys: Sequence[Sequence[str]], now: float) -> None:
        """Index the parts of an accepted message: keys[i] are part i's id keys."""
        ...

    async def find_part(self, *, connection: str, keys: Sequence[str]) -> tuple[int, int, int] | None:
        """(message id, part index, parts) of the part one of `keys` names, or None."""
        ...

    async def part_delivered(self, *, connection: str, message_id: int, part: int) -> int:
        """Mark a part delivered; how many parts of the message are delivered now."""
        ...

    async def find_upstream(self, *, connection: str, upstream_ids: Sequence[str]) -> int | None:
        """The message whose upstream id is one of these spellings, or None."""
        ...

    async def hold_receipt(self, *, connection: str, upstream_id: str, state: str | None, raw: str, now: float) -> None:
        """Keep a receipt no message is known for yet."""
        ...

    async def held_receipts(self, *, limit: int) -> list[HeldReceipt]:
        """Held receipts, oldest first."""
        ...

    async def drop_held(self, *, ids: Sequence[int]) -> None:
        """Forget held receipts (applied, or too old)."""
        ...

    async def prune_parts(self, *, older_than: float) -> None:
        """Forget part ids indexed before this time."""
        ...


class MessageLog(Protocol):
    """A customer's own message log (GetSMSStatus)."""

    async def get_message(self, *, customer_id: int, message_id: int) -> MessageRow | None:
        """One message of this customer."""
        ...

    async def messages_by_ctid(self, *, customer_id: int, ctid: str, limit: int) -> list[MessageRow]:
        """The customer's messages with this ctid, oldest first."""
        ...

    async def messages_page(
        self, *, customer_id: int, start: float, end: float, after_id: int, limit: int
    ) -> list[MessageRow]:
        """Up to `limit` of the customer's messages created in [start, end) with id > after_id."""
        ...


class Outbox(Protocol):
    """Callback events, written with the change they announce."""

    async def due_callbacks(
        self, *, now: float, lease: float, limit: int, per_customer: int | None = None
    ) -> list[MessageRow]:
        """Claim the callback events due now (in order per message; at most `per_customer` of
        any one customer, the customers taking turns, so one backlog never hides the others)."""
        ...

    async def callback_done(self, *, event_id: int, now: float) -> None:
        """The customer's endpoint took the event."""
        ...

    async def callback_retry(self, *, event_id: int, error: str, next_at: float | None, now: float) -> None:
        """Try the event again at `next_at`, or give up when None."""
        ...


class AuthCounters(Protocol):
    """Brute-force counters shared by every worker (SPEC §2)."""

    async def auth_block(self, *, ip: str, username: str | None, policy: AuthPolicy, now: float) -> int | None:
        """The block code (199, 131, 132) in force for this IP/username, if any."""
        ...

    async def record_auth_failure(
        self, *, ip: str, username: str | None, code: int, policy: AuthPolicy, now: float
    ) -> None:
        """Count a failed attempt (and block the IP for good past the permanent thresholds)."""
        ...

    async def auth_suspects(self, *, since: float, blocked_since: float | None = None) -> dict[str, float]:
        """IPs and usernames with failures since `since`, each with the time of its latest, and
        IPs on the permanent block list (added since `blocked_since`; all when None) at +inf."""
        ...

    def auth_version(self) -> int:
        """Changes whenever another process is known to have recorded a failure (else constant)."""
        ...


class Upkeep(Protocol):
    """Liveness and maintenance of the store itself."""

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers right now."""
        ...

    async def maintain(self) -> None:
        """Periodic upkeep (e.g. partitions for the months ahead)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class RejectionLog(Protocol):
    """Rejected requests (no message row): per-minute counts and each customer's latest few."""

    async def record_rejections(
        self, *, counts: Sequence[tuple[int, int, int, int]], events: Sequence[RejectedRequest], keep: int,
        prune_before: float | None = None,
    ) -> None:
        """Add (minute, customer_id, code, n) to the counts, store the events, keep only the `keep`
        newest of each customer that got one, and drop counts of minutes before `prune_before`."""
        ...

    async def rejection_counts(self, *, customer_id: int | None, since: float) -> list[MessageRow]:
        """Rows {minute, customer_id, code, count} from the minute of `since` on (every customer
        when None), by minute."""
        ...

    async def recent_rejections(
        self, *, customer_id: int | None, code: int | None, search: str | None, limit: int
    ) -> list[MessageRow]:
        """The newest stored rejections first: {id, customer_id, created_at, code, status, ip,
        credential, dest, params (a dict)}; `search` matches, case-blind, a part of the destination,
        the parameters, the credential or the IP."""
        ...
