"""The operator's configuration as one immutable snapshot: accounts, tokens, tariffs, routes.

The store builds it and swaps it whole when the configuration version changes, so a request
never sees half of a `pombo load`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pombo.domain.inbound import DEFAULT_OPT_IN_WORDS, DEFAULT_OPT_OUT_WORDS, word_list
from pombo.domain.model import ConnectionConfig, Customer, PriceRow, Token, User
from pombo.domain.textfilter import Models, TextFilter


class PriceTable:
    """Price rows of one account (or one connection) indexed by prefix for longest-match lookup."""

    __slots__ = ("_by_prefix", "_lengths")

    def __init__(self, rows: Sequence[PriceRow]) -> None:
        by_prefix: dict[str, list[PriceRow]] = {}
        for row in rows:
            by_prefix.setdefault(row.prefix, []).append(row)
        self._by_prefix = by_prefix
        self._lengths = sorted({len(p) for p in by_prefix}, reverse=True)

    def best(self, dest: str, connection: str) -> int | None:
        """Longest prefix of `dest` whose row is generic or names `connection`; on equal
        length the row naming the connection wins (SPEC §6)."""
        for length in self._lengths:
            rows = self._by_prefix.get(dest[:length])
            if rows is None or length > len(dest):
                continue
            generic = None
            for row in rows:
                if row.connection == connection:
                    return row.value
                if not row.connection:
                    generic = row.value
            if generic is not None:
                return generic
        return None


EMPTY_PRICES = PriceTable(())


@dataclass(frozen=True, slots=True)
class Catalog:
    """Everything a send needs to know that is not money or the message log."""

    version: str = "0"
    token_version: int = 0  # tokens change on their own (issue, revoke) without a new version
    customers: Mapping[int, Customer] = field(default_factory=dict)
    tokens: Mapping[str, Token] = field(default_factory=dict)  # by token hash
    users_by_name: Mapping[str, User] = field(default_factory=dict)
    users_by_id: Mapping[int, User] = field(default_factory=dict)
    tariffs: Mapping[int, PriceTable] = field(default_factory=dict)  # by customer id
    costs: Mapping[str, PriceTable] = field(default_factory=dict)  # by connection name
    blocklists: Mapping[int, frozenset[str]] = field(default_factory=dict)
    models: Mapping[int, Models] = field(default_factory=dict)
    connections: Mapping[str, ConnectionConfig] = field(default_factory=dict)
    text_filter: TextFilter = field(default_factory=lambda: TextFilter(()))
    chains: Mapping[int, tuple[int, ...]] = field(default_factory=dict)
    # SPEC §14: words as inbound.keyword() sees them; the provisioned inbound numbers
    opt_out_words: frozenset[str] = field(default_factory=lambda: word_list(DEFAULT_OPT_OUT_WORDS))
    opt_in_words: frozenset[str] = field(default_factory=lambda: word_list(DEFAULT_OPT_IN_WORDS))
    inbound_numbers: Mapping[str, int] = field(default_factory=dict)  # route_key(number) -> customer id
    # numbers an opt-out word put on a customer's block list, apart from the provisioned lists;
    # they change on their own (opt_version) without a new configuration version
    opted_out: Mapping[int, frozenset[str]] = field(default_factory=dict)
    opt_version: int = 0

    def chain(self, customer_id: int) -> tuple[int, ...]:
        """The customer, its parent, the parent's parent, ... (cycle-safe)."""
        cached = self.chains.get(customer_id)
        if cached is not None:
            return cached
        return build_chain(self.customers, customer_id)

    def prices(self, chain: Sequence[int], dest: str, connection: str) -> list[int] | None:
        """One unit price per account of the chain, or None when any account has no tariff."""
        out: list[int] = []
        for account in chain:
            price = self.tariffs.get(account, EMPTY_PRICES).best(dest, connection)
            if price is None:
                return None
            out.append(price)
        return out

    def cost(self, dest: str, connection: str) -> int:
        """The connection's unit cost for `dest` (0 when it has no cost row)."""
        table = self.costs.get(connection)
        if table is None:
            return 0
        return table.best(dest, connection) or 0

    def blocked_number(self, chain: Sequence[int], dest: str) -> bool:
        """The destination is on the block list of the customer or of one of its resellers."""
        return any(
            dest in self.blocklists.get(account, ()) or dest in self.opted_out.get(account, ()) for account in chain
        )


def build_chain(customers: Mapping[int, Customer], customer_id: int) -> tuple[int, ...]:
    """Walk parents from `customer_id` upwards, stopping at a missing parent or a cycle."""
    out: list[int] = []
    seen: set[int] = set()
    current: int | None = customer_id
    while current is not None and current not in seen and current in customers:
        seen.add(current)
        out.append(current)
        current = customers[current].parent_id
    return tuple(out)
