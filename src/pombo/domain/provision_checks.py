"""What a provisioning plan means against what is already stored: entries that name customers
that exist nowhere (errors: nothing is applied), and customers routed to a connection that will
not exist or is disabled (warnings: allowed, SPEC §8). Pure: the caller reads the stored state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pombo.domain.provisioning import Provisioning


def check_references(plan: Provisioning, *, stored_customer_ids: set[int]) -> list[str]:
    """Entries that name customers neither in the plan nor among the stored ones."""
    missing = plan.referenced_customer_ids() - stored_customer_ids
    return [f"{entry}: customer {cid} does not exist" for entry, cid in _customer_refs(plan) if cid in missing]


def _customer_refs(plan: Provisioning) -> Iterable[tuple[str, int]]:
    for i, c in enumerate(plan.customers):
        if c.parent is not None:
            yield f"customers[{i}] (id {c.id}): parent", c.parent
    for i, tariff in enumerate(plan.tariffs):
        yield f"tariffs[{i}] (customer {tariff.customer}, prefix {tariff.prefix})", tariff.customer


def connection_warnings(plan: Provisioning, *, stored_connections: Mapping[str, bool]) -> list[str]:
    """Customers routed to a connection that will not exist or is disabled once the plan is in.

    `stored_connections` maps each stored connection's name to whether it is enabled.
    """
    known = dict(stored_connections)
    known.update({c.name: c.enabled for c in plan.connections})
    out = []
    for i, c in enumerate(plan.customers):
        if not c.sms:
            continue
        state = known.get(c.sms_provider)
        if state is None:
            out.append(f"customers[{i}] (id {c.id}): routes to connection {c.sms_provider!r}, "
                       "which does not exist (sends will answer 220)")
        elif not state:
            out.append(f"customers[{i}] (id {c.id}): routes to connection {c.sms_provider!r}, "
                       "which is disabled (sends will answer 220)")
    return out
