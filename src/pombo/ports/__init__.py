"""The interfaces between services and adapters (`typing.Protocol`), grouped by use case.

`runtime` holds the send path's and the background work's ports, `operator` the operator's.
`Store` is what one database provides in full: bootstrap wires it, and each service takes only
the ports it needs.
"""

from __future__ import annotations

from typing import Protocol

from pombo.errors import NotSent, OutcomeUnknown, UpstreamError, UpstreamRejected, UpstreamTimeout
from pombo.ports.operator import (
    Admin,
    InboundFilter,
    LogStats,
    MessageFilter,
    OperatorAccount,
    OperatorReads,
    Operators,
    ProvisionReport,
    Row,
)
from pombo.ports.runtime import (
    AcceptSpec,
    AuthCounters,
    AuthPolicy,
    Catalogs,
    Claimed,
    Clock,
    Connection,
    Deliveries,
    HeldReceipt,
    Inbound,
    InboundSpec,
    MessageLog,
    MessageRow,
    Orphans,
    Outbox,
    Pacing,
    PartIds,
    Queue,
    RejectionLog,
    SendLedger,
    Upkeep,
    Waiting,
)


class Store(
    Catalogs,
    SendLedger,
    Orphans,
    Deliveries,
    Inbound,
    MessageLog,
    Outbox,
    Queue,
    Pacing,
    PartIds,
    AuthCounters,
    RejectionLog,
    Upkeep,
    Admin,
    OperatorReads,
    LogStats,
    Operators,
    Protocol,
):
    """Every port one database provides (SQLite, PostgreSQL, or the in-memory fake)."""


class OperatorStore(Catalogs, AuthCounters, Admin, OperatorReads, LogStats, Operators, RejectionLog, Protocol):
    """What the operator service needs of a store."""


__all__ = [
    "AcceptSpec",
    "Admin",
    "AuthCounters",
    "AuthPolicy",
    "Catalogs",
    "Claimed",
    "Clock",
    "Connection",
    "Deliveries",
    "HeldReceipt",
    "Inbound",
    "InboundFilter",
    "InboundSpec",
    "LogStats",
    "MessageFilter",
    "MessageLog",
    "MessageRow",
    "NotSent",
    "OperatorAccount",
    "OperatorReads",
    "OperatorStore",
    "Operators",
    "Orphans",
    "Outbox",
    "OutcomeUnknown",
    "Pacing",
    "PartIds",
    "ProvisionReport",
    "Queue",
    "RejectionLog",
    "Row",
    "SendLedger",
    "Store",
    "Upkeep",
    "UpstreamError",
    "UpstreamRejected",
    "UpstreamTimeout",
    "Waiting",
]
