"""Prometheus metrics: every answer counted by endpoint and code (rejections included)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from prometheus_client import Counter, Gauge
from prometheus_client.metrics import MetricWrapperBase

from pombo.domain import money

ANSWERS = Counter("pombo_answers_total", "API answers by endpoint and status code", ["endpoint", "code"])
UPSTREAM = Counter("pombo_upstream_outcomes_total", "Upstream outcomes by connection and code", ["connection", "code"])
DLR = Counter("pombo_delivery_reports_total", "Delivery reports by connection and state", ["connection", "state"])
IN_FLIGHT = Gauge("pombo_upstream_in_flight", "Sends waiting in the background (WR)")
SMPP_DELIVER = Counter(
    "pombo_smpp_deliver_sm_total",
    "deliver_sm/data_sm by connection and kind (receipt, held, unmatched, inbound, undecodable); all answered",
    ["connection", "kind"],
)
SMPP_SUBMITS = Counter(
    "pombo_smpp_submit_sm_total",
    "submit_sm by connection and outcome (ok, not_now, rejected, no_answer, bind_lost, no_bind)",
    ["connection", "outcome"],
)
SMPP_BINDS = Gauge("pombo_smpp_binds", "SMPP binds of this process by connection and state (bound, binding, down)",
                   ["connection", "state"])
SMPP_WINDOW = Gauge("pombo_smpp_window_in_use", "submit_sm unanswered on each SMPP connection's binds (this process)",
                    ["connection"])
SMPP_BIND_EVENTS = Counter("pombo_smpp_bind_ends_total", "SMPP binds that dropped or failed to open", ["connection", "state"])
FAILURES_IN_A_ROW = Gauge(
    "pombo_connection_consecutive_failures", "Upstream failures in a row, per connection (this process)", ["connection"]
)


@lru_cache(maxsize=4096)
def child(metric: MetricWrapperBase, *labels: str) -> Any:
    """metric.labels(*labels), looked up once: `labels()` takes a lock and checks every value on
    each call, a few microseconds that every send paid several times. The label sets are small
    (endpoints x codes, connections x kinds) and children are never removed."""
    return metric.labels(*labels)


def answer(endpoint: str, code: str) -> None:
    """Count one API answer."""
    child(ANSWERS, endpoint, code).inc()


def upstream_outcome(connection: str, code: int, failures_in_a_row: int = 0) -> None:
    """Count one upstream outcome and how many failures in a row the connection has now."""
    child(UPSTREAM, connection, str(code)).inc()
    child(FAILURES_IN_A_ROW, connection).set(failures_in_a_row)


INBOUND = Counter(
    "pombo_inbound_messages_total", "Inbound messages (MO) taken, by connection and whether they were routed",
    ["connection", "routed"],
)


def inbound_message(connection: str, routed: bool) -> None:
    """Count one inbound message (SPEC §14)."""
    INBOUND.labels(connection, "yes" if routed else "no").inc()


def delivery_report(connection: str, state: str) -> None:
    """Count one delivery report."""
    child(DLR, connection, state).inc()


SENDS = Counter(
    "pombo_upstream_sends_total", "Upstream attempts by connection and outcome kind (ok, not_sent, rejected, unknown)",
    ["connection", "kind"],
)
STATE = Gauge("pombo_connection_state", "1 for the connection's current state (ok, failing, skipped, idle)",
              ["connection", "state"])
QUEUE = Gauge("pombo_upstream_queue_length", "Messages waiting in the upstream queue, per connection", ["connection"])
OLDEST = Gauge("pombo_upstream_queue_oldest_seconds", "Age of the oldest waiting message, per connection",
               ["connection"])
STATES = ("ok", "failing", "skipped", "idle")
BIND_STATES = ("bound", "binding", "down")


def upstream_attempt(connection: str, kind: str) -> None:
    """Count one attempt's outcome kind (SPEC §11)."""
    child(SENDS, connection, kind).inc()


def connections(report: dict[str, dict[str, Any]]) -> None:
    """Set the per-connection gauges from the dispatcher's report (at each scrape)."""
    for name, c in report.items():
        for state in STATES:
            STATE.labels(name, state).set(1 if c["state"] == state else 0)
        QUEUE.labels(name).set(c["queue"])
        OLDEST.labels(name).set(c["oldest_age"])
        binds = c.get("binds")
        if binds is not None:
            for state in BIND_STATES:
                SMPP_BINDS.labels(name, state).set(sum(1 for b in binds if b["state"] == state))
            SMPP_WINDOW.labels(name).set(sum(b["window_used"] for b in binds))


AVAILABLE = Gauge(
    "pombo_customer_available_credit",
    "Credit a customer can still spend (balance - credit_limit, BRL), per active SMS customer",
    ["customer"],
)


def balances(customers: list[dict[str, Any]]) -> None:
    """Set the available-credit gauge from the customers' rows (stale customers removed)."""
    AVAILABLE.clear()
    for c in customers:
        if c.get("active") and c.get("sms"):
            AVAILABLE.labels(str(c["id"])).set((int(c["balance"]) - int(c["credit_limit"])) / money.SCALE)
