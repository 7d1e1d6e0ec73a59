"""Plain records the rules and use cases pass around (no I/O, no ORM)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ConnectionConfig:
    """An upstream provider connection as the operator configured it (SPEC §8)."""

    name: str
    kind: str  # wavy | tww | kannel | http | simulator
    url: str = ""
    username: str = ""
    password: str = ""
    token: str = ""
    ack_timeout: float = 5.0
    final_timeout: float = 60.0
    enabled: bool = True
    dlr_secret: str = ""
    # kind-specific settings, e.g. the http template: method, path, form/json/query, ok, id
    options: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # never print credentials
        return f"ConnectionConfig(name={self.name!r}, kind={self.kind!r}, url={self.url!r})"


@dataclass(frozen=True, slots=True)
class CallbackConfig:
    """Where and how a customer wants the state changes of its messages pushed."""

    url: str
    method: str = "POST"  # POST | GET
    format: str = "json"  # json | form
    username: str = ""
    password: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:  # never print the password
        return f"CallbackConfig(url={self.url!r}, method={self.method!r}, format={self.format!r})"


@dataclass(frozen=True, slots=True)
class Customer:
    """A customer (or reseller) account; money lives in the store, not here."""

    id: int
    name: str
    parent_id: int | None = None
    sms: bool = True
    sms_provider: str = "velip"
    active: bool = True
    tokens_blocked: bool = False
    night_limit: int | None = 300
    night_window: str = "22:00-06:00"
    max_length: int = 160
    ip_allowlist: tuple[IPNetwork, ...] = ()
    aut_app: bool = True
    aut_send: bool = True
    aut_camp: bool = True
    callback: CallbackConfig | None = None
    accents: str = "keep"  # keep | fold (SPEC §13)
    priority: str = "normal"  # normal | high (SPEC §11): high is served first from the queue
    numbers: tuple[str, ...] = ()  # inbound numbers / short codes routed to this customer (SPEC §14)
    reply_window: int = 72  # hours an answer is matched to the latest message sent (SPEC §14)


@dataclass(frozen=True, slots=True)
class User:
    """A login of a customer (HTTP Basic)."""

    id: int
    customer_id: int
    username: str
    password_hash: str
    send: bool = False
    app: bool = False
    camp: bool = False
    active: bool = True


@dataclass(frozen=True, slots=True)
class Token:
    """An API token; only its hash is stored."""

    id: int
    customer_id: int
    user_id: int | None
    token_hash: str
    prefix: str
    expires_at: float | None = None  # tokens minted by GetUserID tsid=1 expire; others never


@dataclass(frozen=True, slots=True)
class PriceRow:
    """One tariff row (a customer's price) or cost row (a connection's cost)."""

    prefix: str
    value: int  # units of 0.0001
    connection: str | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, after authentication."""

    customer: Customer
    user_id: int | None  # None for a customer-level token
    token_id: int | None
    aut_app: bool
    aut_send: bool
    aut_camp: bool


@dataclass(frozen=True, slots=True)
class OutboundSms:
    """What goes to an upstream connection."""

    id: int  # cdls_id
    dest: str  # normalised destination
    text: str
    encoding: str  # "GSM-7" or "UCS-2"
    sender: str | None = None
    ctid: str | None = None


@dataclass(frozen=True, slots=True)
class UpstreamAck:
    """The upstream accepted the message."""

    upstream_id: str | None
    raw: str
    part_ids: tuple[str, ...] = ()  # every part's id when it went in several (SMPP); [0] is upstream_id
