"""The operator's ports: provisioning, money, tokens, connections, logins and the log's upkeep
(writes), and what the console and the CLI read. None of this is on the send path.

`services/operator.py` is the only caller; `cli.py`, the console and `bootstrap.py` go through it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pombo.domain.customer_edits import CustomerChange
from pombo.domain.provisioning import Provisioning

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ProvisionReport:
    """What loading a provisioning file did: nothing at all when `errors` is not empty.

    `errors`: entries naming a customer neither in the plan nor stored (domain.plan_checks).
    `warnings`: the plan's own warnings, then customers routed to a missing or disabled connection.
    `counts`: entries applied per section (connections, costs, customers, tariffs, tokens, users).
    """

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


class Admin(Protocol):
    """The operator's changes, each in one transaction; each bumps the configuration version
    when it changes what the send path reads (a token issued or revoked bumps the token version
    only, and the snapshot then takes just the tokens that changed)."""

    async def provision(
        self, plan: Provisioning, *, now: float, apply: bool = True, progress: Callable[[int], None] | None = None
    ) -> ProvisionReport:
        """Check the plan's references against what is stored, then apply it whole, or nothing;
        `apply=False` only checks (errors and warnings, no counts, nothing written).
        `progress(n)`, when given, is told as n more entries are written (possibly from a thread)."""
        ...

    async def credit_add(self, *, customer_id: int, amount: int, note: str | None, now: float) -> int:
        """Top up (negative: debit) a customer with a ledger row; the new balance. NotFound."""
        ...

    async def issue_token(self, *, customer_id: int, user_id: int | None, now: float) -> str:
        """A new random token (only its hash is kept); NotFound for an unknown customer."""
        ...

    async def mint_token(self, *, customer_id: int, user_id: int | None, keep: int, ttl: float, now: float) -> str:
        """A token for GetUserID tsid=1 that expires `ttl` seconds from `now`; the user (or, with
        no user, the customer's user-less minted tokens) keeps its `keep` newest minted tokens,
        the older ones revoked. Tokens issued otherwise are neither counted nor revoked."""
        ...

    async def revoke_token(self, *, token_or_prefix: str, now: float) -> int:
        """Revoke a token given whole or by its 10-character prefix; how many were revoked."""
        ...

    async def revoke_customer_token(self, *, customer_id: int, token_id: int, now: float) -> str | None:
        """Revoke one token of this customer by its id; its prefix, or None when not live."""
        ...

    async def set_connection_enabled(self, *, name: str, enabled: bool) -> bool:
        """Enable or disable a connection; False when it does not exist."""
        ...

    async def set_customer_accents(self, *, customer_id: int, accents: str) -> bool:
        """Set a customer's `accents` (keep | fold); False when the customer does not exist."""
        ...

    async def edit_customer(self, *, customer_id: int, change: CustomerChange, operator: str, now: float) -> Row | None:
        """Apply one console change (already validated) and write its console_audit row, in one
        transaction; bumps the configuration version. The audit row (as console_audit gives it),
        or None, with nothing written, when the customer does not exist or the tariff, number or
        model to remove or edit is not there."""
        ...

    async def console_audit(self, *, customer_id: int, limit: int) -> list[Row]:
        """The customer's newest console_audit rows, newest first: id, operator, action,
        customer_id, before and after (decoded JSON: a tariff {prefix, connection, value} or
        None, or the whole list), created_at."""
        ...

    async def prune_log(self, *, before: float, now: float) -> dict[str, int]:
        """Delete settled messages created before `before` (never one still waiting)."""
        ...

    async def ip_report(self, *, since: float) -> list[Row]:
        """Blocked IPs and IPs with failures since `since`, with their counts."""
        ...

    async def unblock_ip(self, *, ip: str) -> int:
        """Lift an IP's permanent block and forget its failures; how many rows went."""
        ...

    async def prune_auth_failures(self, *, before: float) -> int:
        """Forget failed attempts created before `before` (blocks stay); how many went."""
        ...

    async def ledger_sums(self) -> list[tuple[int, int, int]]:
        """(customer_id, balance, sum of its ledger rows) for every customer: equal when sound."""
        ...


@dataclass(frozen=True, slots=True)
class MessageFilter:
    """A search of the message log: every given field must match (None or empty: any)."""

    customer_id: int | None = None
    dest: tuple[str, ...] = ()  # any of these stored forms of the number
    ctid: str | None = None
    message_id: int | None = None
    start: float | None = None  # created_at >= start
    end: float | None = None  # created_at < end
    status_code: int | None = None
    delivery: str | None = None
    connection: str | None = None
    before_id: int | None = None  # id < before_id (the next page, newest first)


@dataclass(frozen=True, slots=True)
class InboundFilter:
    """A search of the inbound messages (SPEC §14): every given field must match."""

    customer_id: int | None = None
    number: tuple[str, ...] = ()  # any of these forms of the handset (`from`) or of `to`
    text: str | None = None  # a part of the text, any case
    start: float | None = None  # stored at or after
    end: float | None = None  # stored before
    unrouted: bool = False  # only those no customer took
    before_id: int | None = None  # id < before_id (the next page, newest first)


@dataclass(frozen=True, slots=True)
class OperatorAccount:
    """A console operator (never a customer's user)."""

    id: int
    username: str
    sessions_after: float  # sessions issued before this are void (logout, new password)
    password_hash: str = field(default="", repr=False)


class OperatorReads(Protocol):
    """What the console's pages and `pombo messages` show.

    Rows are dicts: customers carry their stored columns (money in units; ip_allowlist as a
    list), messages carry the log's columns with `ctid` for the stored corr_id.
    """

    async def customer_summaries(self) -> list[Row]:
        """Every customer by id: id, name, parent_id, balance, credit_limit, sms, sms_provider,
        active, and `tokens` (its count of live tokens)."""
        ...

    async def customer_detail(self, *, customer_id: int) -> Row | None:
        """The customer's columns plus chain (ancestors, nearest first: id, name), children (id,
        name), tokens (id, prefix, created_at, revoked_at, username; live first, newest first),
        users (username, send, app, camp, active), tariffs (prefix, value, connection), blocklist
        (numbers, sorted), opt_outs (number, word, mo_id, created_at: numbers an opt-out word put
        on the block list, SPEC §14), opt_changes (its last 50 opt-out/opt-in changes, newest
        first), models (texts, in order) and its last 20 ledger rows (id, amount, cause,
        message_id, note, created_at; newest first). None when unknown."""
        ...

    async def search_messages(self, *, where: MessageFilter, limit: int) -> list[Row]:
        """Messages matching `where`, newest first, each with its customer's `customer_name`."""
        ...

    async def message_story(self, *, message_id: int) -> Row | None:
        """One message (any customer) with customer_name, username, its ledger rows (id,
        customer_id, name, amount, cause, created_at), its reports (id, connection, state,
        raw, created_at), its logged upstream attempts (id, connection, kind, raw, at) and its
        replies (inbound messages answering it), each oldest first. None when unknown."""
        ...

    async def search_inbound(self, *, where: InboundFilter, limit: int) -> list[Row]:
        """Inbound messages matching `where`, newest first, each with its customer's
        `customer_name` (None when unrouted)."""
        ...

    async def part_warnings(self) -> dict[str, Row]:
        """{connection: its count of messages sent in fewer parts than charged, and the latest}."""
        ...

    async def connections(self) -> list[Row]:
        """Every connection by name: id, name, kind, url, enabled, ack_timeout, final_timeout,
        and `routed` (how many active sms customers route to it)."""
        ...


class LogStats(Protocol):
    """Counts over the message log and the ledger since a moment (the overview, connections)."""

    async def sends_since(self, *, since: float) -> int:
        """Messages created since `since`, whatever became of them."""
        ...

    async def sends_per_minute(self, *, since: float) -> dict[int, dict[int, int]]:
        """{epoch minute (created_at // 60): {status_code: count}} of messages since `since`."""
        ...

    async def delivery_by_connection(self, *, since: float) -> dict[str, dict[str, int]]:
        """{connection: {delivery state: count}} of messages created since `since`."""
        ...

    async def latency_per_minute(self, *, since: float) -> dict[str, dict[int, tuple[float, float]]]:
        """{connection: {epoch minute: (average, maximum) seconds from accept to the provider's
        answer}} of messages since `since` whose answer time is known."""
        ...

    async def connection_health(self, *, since: float) -> dict[str, dict[str, Any]]:
        """{connection: {"codes": {status_code: count}, "latency": average answer seconds,
        "waiting": messages waiting now, "last_error": {id, return_log, updated_at} or None}}."""
        ...

    async def recent_attempts(self, *, limit: int) -> list[Row]:
        """The newest `limit` rows of the upstream attempts log (id, message_id, connection,
        kind, raw, at), newest first."""
        ...

    async def waiting_count(self) -> int:
        """Messages whose provider has not answered yet (status 1, delivery pending)."""
        ...

    async def spend_since(self, *, since: float) -> dict[int, int]:
        """{customer id: units its sends cost it, net of refunds} over ledger rows since `since`."""
        ...


class Operators(Protocol):
    """The console's own accounts and its signing secret."""

    async def save_operator(self, *, username: str, password_hash: str, now: float) -> bool:
        """Create the operator, or give it a new hash and end its sessions; True when created."""
        ...

    async def find_operator(self, *, username: str) -> OperatorAccount | None:
        """An active operator by username (with its password hash)."""
        ...

    async def get_operator(self, *, operator_id: int) -> OperatorAccount | None:
        """An active operator by id."""
        ...

    async def end_sessions(self, *, operator_id: int, now: float) -> None:
        """Void every session of the operator issued until `now`."""
        ...

    async def console_secret(self, *, candidate: str) -> str:
        """The stored signing secret; `candidate` is stored first when there is none (the first
        writer wins, so every process agrees)."""
        ...
