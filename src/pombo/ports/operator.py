"""The operator's ports: provisioning, money, tokens, connections, logins and the log's upkeep
(writes), and what the console and the CLI read. None of this is on the send path.

`services/operator.py` is the only caller; `cli.py`, the console and `bootstrap.py` go through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pombo.domain.provisioning import Provisioning

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ProvisionReport:
    """What loading a provisioning file did: nothing at all when `errors` is not empty."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


class Admin(Protocol):
    """The operator's changes, each in one transaction; each bumps the configuration version
    when it changes what the send path reads."""

    async def provision(self, plan: Provisioning, *, now: float) -> ProvisionReport:
        """Check the plan's references against what is stored, then apply it whole, or nothing."""
        ...

    async def credit_add(self, *, customer_id: int, amount: int, note: str | None, now: float) -> int:
        """Top up (negative: debit) a customer with a ledger row; the new balance. NotFound."""
        ...

    async def issue_token(self, *, customer_id: int, user_id: int | None, now: float) -> str:
        """A new random token (only its hash is kept); NotFound for an unknown customer."""
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

    async def prune_log(self, *, before: float, now: float) -> dict[str, int]:
        """Delete settled messages created before `before` (never one still waiting)."""
        ...

    async def ip_report(self, *, since: float) -> list[Row]:
        """Blocked IPs and IPs with failures since `since`, with their counts."""
        ...

    async def unblock_ip(self, *, ip: str) -> int:
        """Lift an IP's permanent block and forget its failures; how many rows went."""
        ...

    async def ledger_sums(self) -> list[tuple[int, int, int]]:
        """(customer_id, balance, sum of its ledger rows) for every customer: equal when sound."""
        ...
