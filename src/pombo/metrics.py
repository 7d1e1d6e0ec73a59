"""Prometheus metrics: every answer counted by endpoint and code (rejections included)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

ANSWERS = Counter("pombo_answers_total", "API answers by endpoint and status code", ["endpoint", "code"])
UPSTREAM = Counter("pombo_upstream_outcomes_total", "Upstream outcomes by connection and code", ["connection", "code"])
DLR = Counter("pombo_delivery_reports_total", "Delivery reports by connection and state", ["connection", "state"])
IN_FLIGHT = Gauge("pombo_upstream_in_flight", "Sends waiting in the background (WR)")
SMPP_DELIVER = Counter(
    "pombo_smpp_deliver_sm_total",
    "deliver_sm/data_sm by connection and kind (receipt, held, unmatched, inbound, undecodable); all answered",
    ["connection", "kind"],
)
SMPP_BIND_EVENTS = Counter("pombo_smpp_bind_ends_total", "SMPP binds that dropped or failed to open", ["connection", "state"])
FAILURES_IN_A_ROW = Gauge(
    "pombo_connection_consecutive_failures", "Upstream failures in a row, per connection (this process)", ["connection"]
)


def upstream_outcome(connection: str, code: int, failures_in_a_row: int = 0) -> None:
    """Count one upstream outcome and how many failures in a row the connection has now."""
    UPSTREAM.labels(connection, str(code)).inc()
    FAILURES_IN_A_ROW.labels(connection).set(failures_in_a_row)


def delivery_report(connection: str, state: str) -> None:
    """Count one delivery report."""
    DLR.labels(connection, state).inc()
