"""MakeSMS: parameters and the checks that need no database, in the contract's order (SPEC §3, §4).

The checks that need the database (244 duplicate, 245 night, 255 tariff, 250 credit) run in
the store's one transaction, in that order, after these.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pombo.domain import accents, codes, numbers, text
from pombo.domain.catalog import Catalog
from pombo.domain.codes import Rejection
from pombo.domain.ints import uint
from pombo.domain.model import ConnectionConfig, Customer

DEFAULT_HTTPDUP = 10
MAX_HTTPDUP = 600
CTID_MAX = 64  # also the size of cp_id and cd_id in the log
SENDER_MAX = 32
ADM_PROVIDERS = frozenset({"tww", "flash", "matrix"})
_YES = frozenset({"1", "yes"})


@dataclass(slots=True)
class SendRequest:
    """The MakeSMS parameters, parsed leniently as the original API does."""

    dest: str | None
    text: str | None
    ctid: str | None
    setbrasil: bool
    cuttext: bool
    httpdup: int
    sender: str | None
    cp_id: str | None
    cd_id: str | None
    provider: str | None
    rurl: str | None = None


def parse_httpdup(value: str | None) -> int:
    """Default 10; 0 disables; over 600 counts as 600; anything not a non-negative integer
    counts as the default."""
    if value is not None and value.strip().isascii() and value.strip().isdigit():
        seconds = uint(value)
        return MAX_HTTPDUP if seconds is None else min(seconds, MAX_HTTPDUP)  # None: huge
    return DEFAULT_HTTPDUP


def parse_request(params: Mapping[str, str]) -> SendRequest:
    """Read the MakeSMS parameters; aliases message > text > msg_text."""
    body = params.get("message")
    if body is None:
        body = params.get("text")
    if body is None:
        body = params.get("msg_text")
    ctid = params.get("ctid")
    setbrasil = params.get("setbrasil")
    return SendRequest(
        dest=params.get("dest"),
        text=body,
        ctid=ctid[:CTID_MAX] if ctid else None,
        setbrasil=(setbrasil or "1").strip() != "0",
        cuttext=(params.get("cuttext") or "").strip().lower() in _YES,
        httpdup=parse_httpdup(params.get("httpdup")),
        sender=(params.get("from") or "")[:SENDER_MAX] or None,
        cp_id=(params.get("cp_id") or "")[:CTID_MAX] or None,
        cd_id=(params.get("cd_id") or "")[:CTID_MAX] or None,
        provider=(params.get("provider") or "").strip().lower() or None,
        rurl=(params.get("rurl") or "").strip() or None,
    )


def notify_url(draft: Draft) -> str | None:
    """Where this message's state changes go: the request's rurl, else the customer's URL."""
    if draft.request.rurl:
        return draft.request.rurl
    return draft.customer.callback.url if draft.customer.callback else None


@dataclass(slots=True)
class Draft:
    """A send taking shape as the checks pass; filled in by them in order."""

    request: SendRequest
    customer: Customer
    catalog: Catalog
    adm_customer_id: int
    chain: tuple[int, ...] = ()
    connection: ConnectionConfig | None = None
    dest: str = ""
    body: str = ""
    encoding: str = "GSM-7"
    segments: int = 1


Check = Callable[[Draft], Rejection | None]


def route(draft: Draft) -> str:
    """The connection name: the customer's provider, or the ADM account's override."""
    provider = draft.request.provider
    if provider in ADM_PROVIDERS and draft.customer.id == draft.adm_customer_id:
        return provider
    return draft.customer.sms_provider


def check_account(draft: Draft) -> Rejection | None:
    """220: not provisioned for SMS, or the connection it routes to is missing or disabled."""
    if not draft.customer.sms:
        return codes.reject(codes.NO_SMS_ACCOUNT)
    connection = draft.catalog.connections.get(route(draft))
    if connection is None or not connection.enabled:
        return codes.reject(codes.NO_SMS_ACCOUNT)
    draft.connection = connection
    return None


def check_dest(draft: Draft) -> Rejection | None:
    """230: no destination."""
    if not (draft.request.dest or "").strip():
        return codes.reject(codes.NO_DEST)
    return None


def check_text(draft: Draft) -> Rejection | None:
    """235: no body."""
    if not (draft.request.text or "").strip():
        return codes.reject(codes.NO_TEXT)
    draft.body = draft.request.text or ""
    return None


def check_length(draft: Draft) -> Rejection | None:
    """238: longer than the customer's limit, unless cuttext asks to cut it (SPEC §13: then it
    is also cut to the segments the limit's GSM-7 characters take, long or not)."""
    limit = draft.customer.max_length
    kind = draft.connection.kind if draft.connection is not None else ""
    draft.body = accents.outbound_text(draft.body, kind=kind, accents=draft.customer.accents)
    if draft.request.cuttext:
        draft.body = text.cut(draft.body, limit)
    elif len(draft.body) > limit:
        return Rejection(codes.TEXT_TOO_LONG, codes.text_too_long(len(draft.body), limit))
    draft.encoding = text.encoding_of(draft.body)
    draft.segments = text.segments(draft.body)
    return None


def check_mobile(draft: Draft) -> Rejection | None:
    """240: not a valid mobile (SPEC §5)."""
    dest = numbers.normalize(draft.request.dest or "", setbrasil=draft.request.setbrasil)
    if dest is None:
        return codes.reject(codes.MOBILE_NOT_VALID)
    draft.dest = dest
    return None


def check_blocklist(draft: Draft) -> Rejection | None:
    """260: on the block list of the customer or of one of its resellers."""
    draft.chain = draft.catalog.chain(draft.customer.id)
    if draft.catalog.blocked_number(draft.chain, draft.dest):
        return codes.reject(codes.NUMBER_BLOCKED)
    return None


def check_text_filter(draft: Draft) -> Rejection | None:
    """270: looks like bank impersonation and matches none of the customer's models."""
    if draft.catalog.text_filter.matches(draft.body):
        models = draft.catalog.models.get(draft.customer.id)
        if models is None or not models.matches(draft.body):
            return codes.reject(codes.BLOCKED_TEXT)
    return None


# The order of this tuple is the order of the contract.
CHECKS: tuple[Check, ...] = (
    check_account,
    check_dest,
    check_text,
    check_length,
    check_mobile,
    check_blocklist,
    check_text_filter,
)


def run_checks(draft: Draft) -> Rejection | None:
    """The first failing check's rejection, or None when the draft may go to the store."""
    for check in CHECKS:
        rejection = check(draft)
        if rejection is not None:
            return rejection
    return None
