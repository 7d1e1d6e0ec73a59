"""Prometheus metrics: every answer counted by endpoint and code (rejections included)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase

from pombo.domain import money


class LoopCounters:
    """Counters (and gauges) of the send path, kept in plain dicts and exposed at each scrape.

    prometheus_client's children take a lock on every `inc()` and `set()`: three or four per send,
    ~2% of its CPU. These are only ever changed on the event loop's thread (the API and the
    engine), so a dict needs no lock; a scrape reads a copy. Same names, labels and samples
    (`_total` and `_created`) as a Counter; `gauge=True` exposes the last value set instead."""

    def __init__(self, name: str, documentation: str, labelnames: list[str], *, gauge: bool = False) -> None:
        self.name = name.removesuffix("_total")
        self.documentation = documentation
        self.labelnames = labelnames
        self.gauge = gauge
        self.values: dict[tuple[str, ...], float] = {}
        self.created: dict[tuple[str, ...], float] = {}
        REGISTRY.register(self)

    def inc(self, *labels: str) -> None:
        """Add one for these label values."""
        values = self.values
        if labels in values:
            values[labels] += 1
        else:
            values[labels] = 1
            self.created[labels] = time.time()

    def set(self, value: float, *labels: str) -> None:
        """The gauge's value for these label values."""
        self.values[labels] = value

    def value(self, *labels: str) -> float:
        """What it holds now for these label values (0 when never counted)."""
        return self.values.get(labels, 0.0)

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        family: CounterMetricFamily | GaugeMetricFamily
        if self.gauge:
            family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
            for labels, value in list(self.values.items()):
                family.add_metric(list(labels), value)
        else:
            family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
            created = self.created
            for labels, value in list(self.values.items()):
                family.add_metric(list(labels), value, created=created.get(labels))
        yield family


ANSWERS = LoopCounters("pombo_answers_total", "API answers by endpoint and status code", ["endpoint", "code"])
UPSTREAM = LoopCounters(
    "pombo_upstream_outcomes_total", "Upstream outcomes by connection and code", ["connection", "code"]
)
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
FAILURES_IN_A_ROW = LoopCounters(
    "pombo_connection_consecutive_failures", "Upstream failures in a row, per connection (this process)", ["connection"],
    gauge=True,
)


@lru_cache(maxsize=4096)
def child(metric: MetricWrapperBase, *labels: str) -> Any:
    """metric.labels(*labels), looked up once: `labels()` takes a lock and checks every value on
    each call, a few microseconds that every send paid several times. The label sets are small
    (endpoints x codes, connections x kinds) and children are never removed."""
    return metric.labels(*labels)


def answer(endpoint: str, code: str) -> None:
    """Count one API answer."""
    ANSWERS.inc(endpoint, code)


def upstream_outcome(connection: str, code: int, failures_in_a_row: int = 0) -> None:
    """Count one upstream outcome and how many failures in a row the connection has now."""
    UPSTREAM.inc(connection, str(code))
    FAILURES_IN_A_ROW.set(failures_in_a_row, connection)


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


SENDS = LoopCounters(
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
    SENDS.inc(connection, kind)


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
