"""MemoryStore: every port of `pombo.ports.Store`, held in this process's memory.

Exact to SPEC like the SQL stores (the contract tests run the same table on all three), so unit
tests of the services and `pombo demo` can use it. Single-process asyncio: no operation awaits
between its checks and its writes, so concurrent tasks see one another's operations whole, as if
each were a serialised transaction. Nothing survives the process.
"""

from __future__ import annotations

from dataclasses import replace

from pombo.adapters.memory.admin import Operator
from pombo.adapters.memory.auth import AuthCounting
from pombo.adapters.memory.inbound import InboundPath
from pombo.adapters.memory.outbox import CallbackOutbox
from pombo.adapters.memory.parts import PartIdsPath
from pombo.adapters.memory.queue import QueuePath
from pombo.adapters.memory.rejections import RejectionKeeping
from pombo.adapters.memory.sending import SendPath
from pombo.adapters.memory.tables import Tables, build_catalog, live_tokens
from pombo.domain.catalog import Catalog


class MemoryStore(
    SendPath, QueuePath, PartIdsPath, CallbackOutbox, AuthCounting, Operator, RejectionKeeping, InboundPath
):
    """The in-memory store: send path, outbox, brute-force counters and the operator's changes."""

    def __init__(self) -> None:
        self.t = Tables()
        self._catalog = build_catalog(self.t)

    async def catalog(self) -> Catalog:
        """The current snapshot, rebuilt when an operator change bumped the version."""
        if self._catalog.version != str(self.t.config_version):
            self._catalog = build_catalog(self.t)
        elif self._catalog.token_version != self.t.token_version:  # only the tokens changed
            self._catalog = replace(self._catalog, tokens=live_tokens(self.t), token_version=self.t.token_version)
        return self._catalog

    def invalidate(self) -> None:
        """Changes made here bump the version themselves: nothing to do."""

    async def ping(self) -> None:
        """Memory always answers."""

    async def maintain(self) -> None:
        """Nothing to maintain (no partitions, no files)."""

    async def close(self) -> None:
        """Nothing to release."""
