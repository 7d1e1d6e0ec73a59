"""The console's pages (GET): overview, customers, messages, connections."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pombo.console import attempts, i18n, overview
from pombo.console.web import operator_service, operator_view, page
from pombo.domain import codes, delivery, money
from pombo.domain.ints import uint
from pombo.domain.numbers import number_forms
from pombo.errors import StoreUnavailable
from pombo.services.operator import InboundFilter, MessageFilter
from pombo.services.operator_reads import PAGE

STATUS_CODES = (codes.OK, codes.WR, codes.PROVIDER_ERROR)
REJECTIONS_SHOWN = 50
AUDIT_SHOWN = 20
CHECKS = (220, 230, 235, 238, 240, 260, 270, 244, 245, 255, 250)  # SPEC §4, in order


@operator_view
async def overview_page(request: Request) -> Response:
    return page(request, "overview.html")


@operator_view
async def overview_data(request: Request) -> Response:
    now = time.time()
    op = operator_service(request)
    data = await op.overview_numbers(now=now)
    # what every process wrote, and what this one counted since its last write
    rejections = await op.rejection_minutes(since=now - 3600)
    for minute, per_code in request.app.state.services.rejections.pending_minutes().items():
        bucket = rejections.setdefault(minute, {})
        for code, n in per_code.items():
            bucket[code] = bucket.get(code, 0) + n
    lang = request.state.lang
    body = overview.build(
        data, rejections=rejections, now=now, tz=request.app.state.services.settings.tz,
        t=i18n.translator(lang), fmt_money=lambda units: i18n.decimal_point(money.fmt(units), lang),
    )
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@operator_view
async def customers_page(request: Request) -> Response:
    query = request.query_params.get("q", "")[:100]
    rows = await operator_service(request).customer_tree(query=query)
    return page(request, "customers.html", rows=rows, query=query)


@operator_view
async def customer_page(request: Request) -> Response:
    return await render_customer(request)


async def render_customer(request: Request, *, status: int = 200, **context: Any) -> Response:
    """The customer page (also re-shown, with its error, after a refused change)."""
    op = operator_service(request)
    customer = await op.customer(customer_id=request.path_params["customer_id"])
    if customer is None:
        return page(request, "error.html", status=404, message_key="not_found")
    rq = request.query_params.get("rq", "")[:100]
    totals = await op.rejection_totals(customer_id=customer["id"], since=time.time() - 86400)
    recent = await op.rejections(customer_id=customer["id"], search=rq or None, limit=REJECTIONS_SHOWN)
    audit = [_audit_shown(r) for r in await op.console_audit(customer_id=customer["id"], limit=AUDIT_SHOWN)]
    values: dict[str, Any] = {"form_error": None, "amount": "", "note": "", "edit_error": None, "edit_form": "",
                              "edit_values": {}}
    return page(request, "customer.html", status=status, c=customer, rejection_totals=totals, rejections=recent,
                rq=rq, audit=audit, **{**values, **context})


def _audit_shown(row: dict[str, Any]) -> dict[str, Any]:
    """An audit row as the page shows it: a tariff before and after, or a list's items that went
    (before) and came (after)."""
    before, after = row["before"], row["after"]
    if isinstance(before, list) and isinstance(after, list):
        before, after = [i for i in before if i not in after], [i for i in after if i not in before]
    return {**row, "before": before, "after": after}


def parse_filter(params: dict[str, str], tz: Any) -> tuple[MessageFilter, list[str]]:
    """The search form as a filter, and the names of the fields that could not be understood."""
    bad: list[str] = []

    def number(name: str) -> int | None:
        raw = params.get(name, "").strip()
        if not raw:
            return None
        value = uint(raw)
        if value is None:
            bad.append(name)
        return value

    def day(name: str, *, next_day: bool = False) -> float | None:
        raw = params.get(name, "").strip()
        if not raw:
            return None
        try:
            d = date.fromisoformat(raw) + timedelta(days=1 if next_day else 0)
        except (ValueError, OverflowError):
            bad.append(name)
            return None
        return datetime(d.year, d.month, d.day, tzinfo=tz).timestamp()

    status = number("status")
    if status is not None and status not in STATUS_CODES:
        bad.append("status")
    state = params.get("delivery", "").strip() or None
    if state is not None and state not in delivery.STATES:
        bad.append("delivery")
    dest = params.get("dest", "").strip()
    found = MessageFilter(
        customer_id=number("customer"),
        dest=tuple(number_forms(dest)) if dest else (),
        ctid=params.get("ctid", "").strip()[:64] or None,
        message_id=number("cdls_id"),
        start=day("date_from"),
        end=day("date_to", next_day=True),
        status_code=status,
        delivery=state,
        connection=params.get("connection", "").strip() or None,
        before_id=number("before"),
    )
    return found, bad


@operator_view
async def messages_page(request: Request) -> Response:
    params = {k: v[:100] for k, v in request.query_params.items()}
    found, bad = parse_filter(params, request.app.state.services.settings.tz)
    operator = operator_service(request)
    rows = [] if bad else await operator.search_messages(where=found, limit=PAGE)
    older = None
    if len(rows) == PAGE:
        older = "?" + _query(params, before=str(rows[-1]["id"]))
    connections = [c["name"] for c in await operator.connections()]
    return page(request, "messages.html", rows=rows, params=params, bad=bad, older=older,
                states=sorted(delivery.STATES), status_codes=STATUS_CODES, connections=connections,
                status_text=codes.TEXTS)


def _query(params: dict[str, str], **changes: str) -> str:
    return urlencode({k: v for k, v in {**params, **changes}.items() if v and k != "lang"})


@operator_view
async def message_page(request: Request) -> Response:
    msg = await operator_service(request).message_story(message_id=request.path_params["message_id"])
    if msg is None:
        return page(request, "error.html", status=404, message_key="not_found")
    return page(request, "message.html", m=msg, events=_story(msg), checks=CHECKS, status_text=codes.TEXTS,
                attempts=attempts.of_message(msg))


def _story(m: dict[str, Any]) -> list[tuple[float | None, str, dict[str, Any]]]:
    """(time, label key, values) of what happened to a message, in order.

    The provider's answer time is known while no report has touched the row (updated_at);
    after that it is shown without a time, right after the acceptance.
    """
    events: list[tuple[float | None, str, dict[str, Any]]] = [(m["created_at"], "ev_accepted", {})]
    if m["status_code"] == codes.OK:
        events.append((m["updated_at"] if m["delivery"] == delivery.PENDING else None, "ev_answered_ok", {}))
    elif m["status_code"] == codes.PROVIDER_ERROR:
        events.append((m["final_at"] or m["updated_at"], "ev_answered_300", {}))
    else:
        events.append((None, "ev_waiting", {}))
    for r in m["reports"]:
        events.append((r["created_at"], "ev_report", {"state": r["state"] or "—"}))
    if m["status_code"] != codes.PROVIDER_ERROR:
        if m["sent_at"]:
            events.append((m["sent_at"], "ev_sent", {}))
        if m["final_at"]:
            events.append((m["final_at"], "ev_final", {"state": m["delivery"]}))
    first = m["created_at"]
    return sorted(events, key=lambda e: (e[0] if e[0] is not None else first, e[1] != "ev_accepted"))


def parse_inbound_filter(params: dict[str, str], tz: Any) -> tuple[InboundFilter, list[str]]:
    """The inbound search form as a filter, and the fields that could not be understood."""
    common, bad = parse_filter({k: v for k, v in params.items() if k in ("customer", "date_from", "date_to", "before")}, tz)
    number = params.get("number", "").strip()
    forms = (*number_forms(number), number) if number else ()
    found = InboundFilter(
        customer_id=common.customer_id,
        number=tuple(dict.fromkeys(forms)),
        text=params.get("text", "").strip()[:100] or None,
        start=common.start,
        end=common.end,
        unrouted=params.get("unrouted", "") == "1",
        before_id=common.before_id,
    )
    return found, bad


@operator_view
async def inbound_page(request: Request) -> Response:
    params = {k: v[:100] for k, v in request.query_params.items()}
    found, bad = parse_inbound_filter(params, request.app.state.services.settings.tz)
    rows = [] if bad else await operator_service(request).search_inbound(where=found, limit=PAGE)
    older = "?" + _query(params, before=str(rows[-1]["id"])) if len(rows) == PAGE else None
    return page(request, "inbound.html", rows=rows, params=params, bad=bad, older=older)


async def _live_connections(request: Request) -> dict[str, dict[str, Any]]:
    """This worker's live view of its connections (the dispatcher's report); empty while the
    database is away (the page still shows what the store had)."""
    try:
        report: dict[str, dict[str, Any]] = await request.app.state.services.dispatcher.report()
    except StoreUnavailable:
        return {}
    return report


@operator_view
async def connections_page(request: Request) -> Response:
    now = time.time()
    operator = operator_service(request)
    conns = await operator.connections()
    health = await operator.connection_health(now=now)
    states = await operator.delivery_by_connection(now=now)
    live = await _live_connections(request)  # the engine's report (SMPP binds among it)
    engine = live
    recent = attempts.by_connection(await operator.recent_attempts())
    short = await operator.part_warnings()
    for c in conns:
        session = live.get(c["name"], {})  # an smpp connection's binds in this worker
        c.update(binds=session.get("binds"), window=session.get("window"),
                 submits_per_s=session.get("submits_per_s"), receipts_per_s=session.get("receipts_per_s"))
        h = health.get(c["name"], {"codes": {}})
        total = sum(h["codes"].values())
        errors = h["codes"].get(codes.PROVIDER_ERROR, 0)
        by_state = states.get(c["name"], {})
        finished = sum(by_state.get(s, 0) for s in delivery.FINAL)
        c.update(
            total=total,
            waiting=h.get("waiting", 0),
            error_rate=errors / total if total else None,
            delivered_rate=by_state.get(delivery.DELIVERED, 0) / finished if finished else None,
            latency=h.get("latency"),
            last_error=h.get("last_error"),
            health=_health(c["enabled"], total, errors),
            engine=engine.get(c["name"], attempts.IDLE),
            attempts=recent.get(c["name"], []),
            parts_short=short.get(c["name"]),
        )
    return page(request, "connections.html", conns=conns)


def _health(enabled: bool, total: int, errors: int) -> str:
    if not enabled:
        return "off"
    if total == 0:
        return "idle"
    rate = errors / total
    return "down" if rate >= 0.5 else "degraded" if rate >= 0.05 else "ok"
