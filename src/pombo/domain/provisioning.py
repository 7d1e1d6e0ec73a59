"""The provisioning file's entries as typed, frozen models (SPEC §8, §9): field types, one
model per entry kind, and the whole file."""


from __future__ import annotations

import copy
import dataclasses
import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from pombo.domain import money
from pombo.domain.model import CallbackConfig, ConnectionConfig, Customer
from pombo.domain.numbers import normalize

SECTIONS = ("connections", "costs", "text_filter", "opt_out_words", "opt_in_words", "customers", "tariffs")
KINDS = ("wavy", "tww", "kannel", "http", "simulator", "smpp")
PLACEHOLDERS = ("dest", "text", "id", "from")


class ProvisioningError(ValueError):
    """The file cannot be loaded; `errors` holds one line per problem, each naming its entry."""

    def __init__(self, errors: Sequence[str], *, source: str = "<document>",
                 partial: Provisioning | None = None) -> None:
        self.errors = list(errors)
        self.source = source
        # the entries that were valid, so the caller can still check their references against
        # the store and report every problem of the file in one pass
        self.partial = partial
        lines = "\n".join(f"  {line}" for line in self.errors)
        super().__init__(f"{source}: {len(self.errors)} problem(s)\n{lines}")


# --- field types --------------------------------------------------------------------------


def _not_bool(value: Any) -> Any:
    # pydantic takes `true` as 1; in a provisioning file that is always a slip.
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    return value


def _int_as_digits(value: Any) -> Any:
    # YAML reads an unquoted 55 or 5511988887777 as an int: take it back as digits.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    return value


def _fullmatch(pattern: str, problem: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(problem)
        return value

    return check


def _scalar_as_str(value: Any) -> Any:
    # template fields and headers go out as text: `account: 123` means "123"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _money(value: Any) -> int:
    return money.parse(value)  # MoneyError is a ValueError: pydantic reports it


def _not_negative(units: int) -> int:
    if units < 0:
        raise ValueError("must not be negative")
    return units


def _digits_only(value: str) -> str:
    digits = "".join(c for c in value if c in "0123456789")
    if not 8 <= len(digits) <= 15:
        raise ValueError(f"not a phone number (8 to 15 digits): {value!r}")
    return digits


def _ip_range(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError as exc:
        raise ValueError(f"not an IP address or CIDR range: {value!r}") from exc


def _night_window(value: str) -> str:
    found = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", value)
    if not found:
        raise ValueError(f"expected HH:MM-HH:MM, got {value!r}")
    h1, m1, h2, m2 = (int(g) for g in found.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f"hours are 00-23 and minutes 00-59: {value!r}")
    if (h1, m1) == (h2, m2):
        raise ValueError(f"the window starts where it ends: {value!r}")
    return f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}"


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value.strip()


Id = Annotated[int, BeforeValidator(_not_bool), Field(gt=0)]
ConnectionName = Annotated[
    str,
    AfterValidator(_fullmatch(r"[a-z0-9_-]{1,64}", "a connection name is 1-64 of a-z 0-9 _ -")),
]
Prefix = Annotated[
    str,
    BeforeValidator(_int_as_digits),
    AfterValidator(_fullmatch(r"[0-9]{1,15}", "a prefix is 1-15 digits")),
]
Money = Annotated[int, BeforeValidator(_money)]
Price = Annotated[int, BeforeValidator(_money), AfterValidator(_not_negative)]
Timeout = Annotated[float, BeforeValidator(_not_bool), Field(gt=0, allow_inf_nan=False)]
ApiToken = Annotated[
    str,
    AfterValidator(_fullmatch(r"[A-Za-z0-9_-]{10,64}", "a token is 10-64 of A-Z a-z 0-9 _ -")),
]
Username = Annotated[
    str,
    AfterValidator(_fullmatch(r"[^\s:]{1,64}", "a username is 1-64 characters, no ':' or spaces")),
]
PhoneNumber = Annotated[str, BeforeValidator(_int_as_digits), AfterValidator(_digits_only)]
IpRange = Annotated[str, AfterValidator(_ip_range)]
NightWindow = Annotated[str, AfterValidator(_night_window)]
NonBlank = Annotated[str, AfterValidator(_non_blank)]


def _inbound_number(value: str) -> str:
    # a long number or short code: kept as its digits (that is how an inbound `to` is compared)
    if not re.fullmatch(r"[0-9+() .-]{1,32}", value) or not any(c.isdigit() for c in value):
        raise ValueError(f"an inbound number is digits (a long number or short code), not {value!r}")
    return "".join(c for c in value if c.isdigit())


InboundNumber = Annotated[str, BeforeValidator(_int_as_digits), AfterValidator(_inbound_number)]
Regex = Annotated[str, AfterValidator(_regex)]
Scalar = Annotated[str, BeforeValidator(_scalar_as_str)]
DlrSecret = Annotated[  # it sits in the /dlr/{connection}/{dlr_secret} path
    str,
    AfterValidator(
        _fullmatch(r"[A-Za-z0-9._~-]{1,128}", "a dlr_secret is 1-128 URL-safe characters")
    ),
]


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _normalised_numbers(values: tuple[str, ...]) -> tuple[str, ...]:
    # check 260 compares the normalised destination, so a Brazilian mobile written any of
    # the ways §5 accepts is stored the way sends will look; others are kept as digits
    return _unique(tuple(normalize(n, setbrasil=True) or n for n in values))


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- connections (SPEC §8) ------------------------------------------------------------------


class ConnectionSpec(_Spec):
    """Fields every connection kind has; the subclasses add the kind's own."""

    _url_optional: ClassVar[bool] = False

    name: ConnectionName
    kind: str
    url: str
    ack_timeout: Timeout = 5.0
    final_timeout: Timeout = 60.0
    enabled: bool = True
    dlr_secret: DlrSecret | None = Field(default=None, repr=False)  # None: generate on create
    # the upstream engine (SPEC §11); kept in ConnectionConfig.options, read by domain.engine
    throughput: Annotated[float, BeforeValidator(_not_bool), Field(ge=0, allow_inf_nan=False)] = 0
    window: Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=100_000)] = 100
    fallback: tuple[ConnectionName, ...] = ()
    max_queue_time: Timeout = 3600.0

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value and cls._url_optional:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL")  # no echo: it may hold a key
        if parts.username or parts.password:
            raise ValueError("credentials do not belong in the url (they would be logged)")
        if parts.query or parts.fragment:
            raise ValueError("the base url takes no ?query or #fragment")
        return value.rstrip("/")

    @field_validator("fallback", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _no_self_fallback(self) -> ConnectionSpec:
        if self.name in self.fallback:
            raise ValueError(f"fallback names the connection itself ({self.name!r})")
        if len(set(self.fallback)) != len(self.fallback):
            raise ValueError("fallback names a connection twice")
        return self

    @model_validator(mode="after")
    def _timeouts(self) -> ConnectionSpec:
        if self.final_timeout < self.ack_timeout:
            raise ValueError(
                f"final_timeout ({self.final_timeout:g}) is shorter than ack_timeout "
                f"({self.ack_timeout:g})"
            )
        return self

    def options(self) -> dict[str, Any]:
        """The kind-specific settings that go to ConnectionConfig.options."""
        return {}

    def to_config(self, *, dlr_secret: str) -> ConnectionConfig:
        """The domain record; `dlr_secret` is the one to store (the caller picks or makes it)."""
        return ConnectionConfig(
            name=self.name,
            kind=self.kind,
            url=self.url,
            username=getattr(self, "username", ""),
            password=getattr(self, "password", ""),
            token=getattr(self, "token", ""),
            ack_timeout=self.ack_timeout,
            final_timeout=self.final_timeout,
            enabled=self.enabled,
            dlr_secret=dlr_secret,
            options={**self.options(), **self._engine_options()},
        )

    def _engine_options(self) -> dict[str, Any]:
        # only what differs from the defaults: a connection without engine settings keeps the
        # options it always had
        given = {
            "throughput": self.throughput,
            "window": self.window,
            "fallback": list(self.fallback),
            "max_queue_time": self.max_queue_time,
        }
        defaults = {"throughput": 0, "window": 100, "fallback": [], "max_queue_time": 3600.0}
        return {k: v for k, v in given.items() if v != defaults[k]}


class WavySpec(ConnectionSpec):
    """Wavy (Sinch) JSON API: UserName + AuthenticationToken headers."""

    kind: Literal["wavy"]
    username: str = Field(min_length=1)
    token: str = Field(min_length=1, repr=False)
    status_path: str = "/v1/sms/status/search"  # the status search used to reconcile

    def options(self) -> dict[str, Any]:
        return {"status_path": self.status_path}


class TwwSpec(ConnectionSpec):
    """TWW web service: NumUsu + Senha form fields."""

    kind: Literal["tww"]
    username: str = Field(min_length=1)
    password: str = Field(min_length=1, repr=False)
    # TWW status code -> delivery state, on top of the built-in table (CL delivered, OK sent...)
    status_map: dict[str, Literal["sent", "delivered", "undelivered", "expired", "rejected"]] = Field(default_factory=dict)

    def options(self) -> dict[str, Any]:
        return {"status_map": {k.upper(): v for k, v in self.status_map.items()}}


class KannelSpec(ConnectionSpec):
    """Kannel sendsms: username + password query parameters."""

    kind: Literal["kannel"]
    username: str = Field(min_length=1)
    password: str = Field(min_length=1, repr=False)


class DlrMapping(_Spec):
    """Where a templated provider's delivery report carries the message id and the status."""

    id_field: str = "id"
    id_is: Literal["cdls_id", "upstream_id"] = "cdls_id"
    status_field: str = "status"
    states: dict[str, Literal["sent", "delivered", "undelivered", "expired", "rejected"]] = Field(default_factory=dict)


class MoMapping(_Spec):
    """Where a templated provider's inbound (MO) push carries each field (SPEC §14)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    from_: str = Field(default="from", alias="from")
    to: str = "to"
    text: str = "text"
    id: str = "id"
    correlation: str = "correlation"  # the cdls_id the message answers, when the provider names it
    time: str = "time"


class HttpSpec(ConnectionSpec):
    """A templated HTTP provider; the template may carry API keys, so none of it is repr'd."""

    kind: Literal["http"]
    method: Literal["GET", "POST", "PUT", "PATCH"] = "POST"
    path: str
    form: dict[str, Scalar] | None = Field(default=None, repr=False)
    json_: dict[str, Any] | None = Field(default=None, alias="json", repr=False)
    query: dict[str, Scalar] | None = Field(default=None, repr=False)
    ok: Regex
    id: Regex | None = None
    headers: dict[str, Scalar] = Field(default_factory=dict, repr=False)
    dlr: DlrMapping | None = None  # how this provider's delivery reports read
    mo: MoMapping | None = None  # how this provider's inbound messages read (SPEC §14)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"must start with '/': {value!r}")
        return value

    @field_validator("id")
    @classmethod
    def _has_group(cls, value: str | None) -> str | None:
        if value is not None and re.compile(value).groups < 1:
            raise ValueError("needs a group ( ) around the upstream id")
        return value

    @model_validator(mode="after")
    def _template(self) -> HttpSpec:
        bodies = {k: v for k, v in self._bodies().items() if v is not None}
        problems = []
        if len(bodies) != 1:
            problems.append(f"exactly one of form, json, query is needed (got {len(bodies)})")
        if self.method == "GET" and set(bodies) - {"query"}:
            problems.append("a GET request carries no body: use query")
        names = [n for v in bodies.values() for s in _strings(v) for n in _placeholders(s)]
        unknown = sorted(set(names) - set(PLACEHOLDERS))
        if unknown:
            allowed = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            problems.append(f"unknown placeholder {{{unknown[0]}}} (allowed: {allowed})")
        try:
            json.dumps(self.json_)
        except (TypeError, ValueError):
            problems.append("json: only strings, numbers, true/false, null, lists and mappings")
        missing = [p for p in ("dest", "text") if p not in names]
        if bodies and missing:
            problems.append(f"the template never sends {{{missing[0]}}}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _bodies(self) -> dict[str, Any]:
        return {"form": self.form, "json": self.json_, "query": self.query}

    def options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"method": self.method, "path": self.path, "ok": self.ok}
        opts |= {k: copy.deepcopy(v) for k, v in self._bodies().items() if v is not None}
        if self.id is not None:
            opts["id"] = self.id
        opts["headers"] = dict(self.headers)
        if self.dlr is not None:
            opts["dlr"] = self.dlr.model_dump()
        if self.mo is not None:
            opts["mo"] = self.mo.model_dump(by_alias=True)
        return opts


class SimulatorSpec(ConnectionSpec):
    """The built-in fake upstream (`pombo demo`, tests)."""

    _url_optional: ClassVar[bool] = True

    kind: Literal["simulator"]
    url: str = ""
    delay: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    fail_prefix: str | None = None  # destinations starting with it get a hard error
    reports: bool = False  # send delivery reports to this process's /dlr/... (the demo)
    report_delay: float = Field(default=1.0, ge=0, le=3600, allow_inf_nan=False)
    undelivered: float = Field(default=0.0, ge=0, le=1, allow_inf_nan=False)  # share reported undelivered
    # the handset answers every message with a "?" in it with this text (SPEC §14, `pombo demo`)
    reply: str | None = Field(default=None, min_length=1, max_length=160)
    reply_after: float = Field(default=1.0, ge=0, le=600, allow_inf_nan=False)

    def options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"delay": self.delay}
        if self.fail_prefix is not None:
            opts["fail_prefix"] = self.fail_prefix
        if self.reports:
            opts |= {"reports": True, "report_delay": self.report_delay, "undelivered": self.undelivered}
        if self.reply is not None:
            opts["reply"] = self.reply
            opts["reply_after"] = self.reply_after
        return opts


SmppText = Annotated[str, BeforeValidator(_scalar_as_str), AfterValidator(
    _fullmatch(r"[\x20-\x7e]*", "printable ASCII only (SMPP C-octet strings)"))]


class SmppSpec(ConnectionSpec):
    """An SMSC spoken to in SMPP 3.4 as an ESME (SPEC §12); `url` is derived (smpp://host:port)."""

    _url_optional: ClassVar[bool] = True

    kind: Literal["smpp"]
    url: str = ""
    host: Annotated[str, AfterValidator(_fullmatch(r"[A-Za-z0-9.:\[\]_-]{1,253}", "a host name or IP address"))]
    port: int = Field(default=2775, ge=1, le=65535)
    system_id: Annotated[SmppText, Field(min_length=1, max_length=15)]
    password: Annotated[SmppText, Field(max_length=64)] = Field(default="", repr=False)  # 3.4 says 8; carriers differ
    system_type: Annotated[SmppText, Field(max_length=12)] = ""
    binds: int = Field(default=1, ge=1, le=64)
    window: int = Field(default=100, ge=1, le=10_000)
    throughput: float = Field(default=0, ge=0, allow_inf_nan=False)  # the engine enforces it (§11)
    tls: bool = False
    enquire_link: float = Field(default=30, gt=0, le=3600, allow_inf_nan=False)
    source_addr: Annotated[SmppText, Field(max_length=20)] | None = None
    dest_ton: int = Field(default=1, ge=0, le=255)
    dest_npi: int = Field(default=1, ge=0, le=255)

    @field_validator("url")
    @classmethod
    def _no_url(cls, value: str) -> str:
        if value:
            raise ValueError("an smpp connection takes host and port, not url")
        return value

    def options(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "system_type": self.system_type,
                "binds": self.binds, "window": self.window, "throughput": self.throughput,
                "tls": self.tls, "enquire_link": self.enquire_link,
                "source_addr": self.source_addr or "", "dest_ton": self.dest_ton, "dest_npi": self.dest_npi}

    def to_config(self, *, dlr_secret: str) -> ConnectionConfig:
        """The domain record: system_id travels as username, the password as password."""
        config = super().to_config(dlr_secret=dlr_secret)
        return dataclasses.replace(config, url=f"smpp://{self.host}:{self.port}", username=self.system_id)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _placeholders(text: str) -> list[str]:
    return re.findall(r"\{([^{}]*)\}", text)


CONNECTION_KINDS: dict[str, type[ConnectionSpec]] = {
    "wavy": WavySpec,
    "tww": TwwSpec,
    "kannel": KannelSpec,
    "http": HttpSpec,
    "simulator": SimulatorSpec,
    "smpp": SmppSpec,
}
_KIND_OF = {model: kind for kind, model in CONNECTION_KINDS.items()}
AnyConnectionSpec = Annotated[
    WavySpec | TwwSpec | KannelSpec | HttpSpec | SimulatorSpec | SmppSpec, Field(discriminator="kind")
]


# --- costs, customers, tariffs ----------------------------------------------------------


class CostSpec(_Spec):
    """A connection's cost for destinations starting with `prefix` (units of 0.0001)."""

    connection: ConnectionName
    prefix: Prefix
    cost: Price


class UserSpec(_Spec):
    """A login of a customer (HTTP Basic)."""

    username: Username
    password: str = Field(min_length=1, repr=False)
    send: bool = False
    app: bool = False
    camp: bool = False
    active: bool = True


class CallbackSpec(_Spec):
    """Where the state changes of the customer's messages are pushed (ISSUE delivery truth)."""

    url: Annotated[str, Field(pattern=r"^https?://\S+$", max_length=2000)]
    method: Literal["POST", "GET"] = "POST"
    format: Literal["json", "form"] = "json"
    username: str = ""
    password: str = Field(default="", repr=False)
    headers: dict[str, str] = Field(default_factory=dict, repr=False)

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    def to_config(self) -> CallbackConfig:
        """The domain record."""
        return CallbackConfig(
            url=self.url,
            method=self.method,
            format=self.format,
            username=self.username,
            password=self.password,
            headers=tuple(sorted(self.headers.items())),
        )


class CustomerSpec(_Spec):
    """A customer or reseller; `balance` only seeds a new account (None: not given)."""

    id: Id
    name: NonBlank
    parent: Id | None = None
    sms: bool = True
    sms_provider: ConnectionName = "velip"
    balance: Money | None = None
    credit_limit: Money = 0
    night_limit: Annotated[int, BeforeValidator(_not_bool), Field(ge=0)] | None = 300
    night_window: NightWindow = "22:00-06:00"
    max_length: Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=10_000)] = 160
    active: bool = True
    tokens_blocked: bool = False
    tokens: tuple[ApiToken, ...] = Field(default=(), repr=False)
    users: tuple[UserSpec, ...] = ()
    ip_allowlist: Annotated[tuple[IpRange, ...], AfterValidator(_unique)] = ()
    blocklist: Annotated[tuple[PhoneNumber, ...], AfterValidator(_normalised_numbers)] = ()
    models: Annotated[tuple[NonBlank, ...], AfterValidator(_unique)] = ()
    aut_app: bool = True
    aut_send: bool = True
    aut_camp: bool = True
    callback: CallbackSpec | None = None
    accents: Literal["keep", "fold"] = "keep"  # SPEC §13
    priority: Literal["normal", "high"] = "normal"  # SPEC §11
    numbers: Annotated[tuple[InboundNumber, ...], AfterValidator(_unique)] = ()  # SPEC §14
    reply_window: Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=8760)] = 72  # hours

    def to_customer(self) -> Customer:
        """The domain record (money and lists are stored apart)."""
        return Customer(
            id=self.id,
            name=self.name,
            parent_id=self.parent,
            sms=self.sms,
            sms_provider=self.sms_provider,
            active=self.active,
            tokens_blocked=self.tokens_blocked,
            night_limit=self.night_limit,
            night_window=self.night_window,
            max_length=self.max_length,
            ip_allowlist=tuple(ipaddress.ip_network(n) for n in self.ip_allowlist),
            aut_app=self.aut_app,
            aut_send=self.aut_send,
            aut_camp=self.aut_camp,
            callback=self.callback.to_config() if self.callback else None,
            accents=self.accents,
            priority=self.priority,
            numbers=self.numbers,
            reply_window=self.reply_window,
        )


class TariffSpec(_Spec):
    """A customer's price for destinations starting with `prefix`, optionally per connection."""

    customer: Id
    prefix: Prefix
    value: Price
    connection: ConnectionName | None = None


# --- the whole file -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reference:
    """An id or name the file uses without defining it; the caller checks it in the store."""

    entry: str  # "tariffs[2] (customer 11, prefix '5511', connection 'wavy')"
    field: str
    target: Literal["customer", "connection"]
    value: int | str
    required: bool = True  # False: a missing target is only a warning (sms_provider, SPEC §8)


class Provisioning(_Spec):
    """A validated provisioning file, ready for the store to apply."""

    connections: tuple[AnyConnectionSpec, ...] = ()
    costs: tuple[CostSpec, ...] = ()
    text_filter: tuple[str, ...] | None = None  # None: absent, keep the current list
    opt_out_words: tuple[str, ...] | None = None  # SPEC §14; None: absent, keep the current list
    opt_in_words: tuple[str, ...] | None = None
    customers: tuple[CustomerSpec, ...] = ()
    tariffs: tuple[TariffSpec, ...] = ()
    warnings: tuple[str, ...] = ()
    # where each entry stands in the file, by section, when some entries were left out (a file
    # with errors still has its valid entries checked); absent: the plan's own positions
    file_index: dict[str, tuple[int, ...]] = Field(default_factory=dict)

    def index_in_file(self, section: str, position: int) -> int:
        """The file's index of the plan's `position`-th entry of `section`."""
        indexes = self.file_index.get(section)
        return indexes[position] if indexes is not None and position < len(indexes) else position

    def references(self) -> tuple[Reference, ...]:
        """Every customer id and connection name used here but defined elsewhere (or nowhere)."""
        ids = {c.id for c in self.customers}
        names = {c.name for c in self.connections}
        refs: list[Reference] = []
        for i, cust in enumerate(self.customers):
            label = entry_label("customers", i, _fields(cust))
            if cust.parent is not None and cust.parent not in ids:
                refs.append(Reference(label, "parent", "customer", cust.parent))
            if cust.sms and cust.sms_provider not in names:
                refs.append(
                    Reference(label, "sms_provider", "connection", cust.sms_provider, False)
                )
        for i, cost in enumerate(self.costs):
            if cost.connection not in names:
                label = entry_label("costs", i, _fields(cost))
                refs.append(Reference(label, "connection", "connection", cost.connection))
        for i, tariff in enumerate(self.tariffs):
            label = entry_label("tariffs", i, _fields(tariff))
            if tariff.customer not in ids:
                refs.append(Reference(label, "customer", "customer", tariff.customer))
            if tariff.connection is not None and tariff.connection not in names:
                refs.append(Reference(label, "connection", "connection", tariff.connection))
        return tuple(refs)

    def referenced_customer_ids(self) -> set[int]:
        """Customer ids (parents, tariff customers) the file uses but does not define."""
        return {int(r.value) for r in self.references() if r.target == "customer"}

    def referenced_connections(self) -> set[str]:
        """Connection names (costs, tariffs, sms_provider) the file uses but does not define."""
        return {str(r.value) for r in self.references() if r.target == "connection"}


_LABEL_KEYS: dict[str, tuple[tuple[str, bool], ...]] = {  # (key, show the key's name)
    "connections": (("name", False),),
    "costs": (("connection", True), ("prefix", True)),
    "customers": (("id", True), ("name", False)),
    "tariffs": (("customer", True), ("prefix", True), ("connection", True)),
}


def entry_label(section: str, index: int, fields: Mapping[Any, Any]) -> str:
    """'customers[1] (id 11, 'Loja Exemplo')': the entry, with whatever names it."""
    shown = []
    for key, named in _LABEL_KEYS.get(section, ()):
        value = fields.get(key)
        if isinstance(value, bool) or not isinstance(value, int | str):
            continue
        if not named and not isinstance(value, str):
            continue
        text = str(value) if isinstance(value, int) else repr(value[:40])
        shown.append(f"{key} {text}" if named else text)
    return f"{section}[{index}]" + (f" ({', '.join(shown)})" if shown else "")


def _fields(spec: BaseModel) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in type(spec).model_fields}


