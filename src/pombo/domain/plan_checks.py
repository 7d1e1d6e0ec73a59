"""What a provisioning plan means against what is already stored: missing references (errors),
routes to absent or disabled connections (warnings), and the order customers are written in.

Pure functions over the plan and plain facts about the store, so every store applies a plan the
same way.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping

from pombo.domain.provisioning import CustomerSpec, Provisioning


def reference_errors(plan: Provisioning, stored_customers: Collection[int]) -> list[str]:
    """Entries that name customers neither in the plan nor among `stored_customers`."""
    missing = plan.referenced_customer_ids() - set(stored_customers)
    return [f"{entry}: customer {cid} does not exist" for entry, cid in _customer_refs(plan) if cid in missing]


def _customer_refs(plan: Provisioning) -> Iterator[tuple[str, int]]:
    for i, c in enumerate(plan.customers):
        if c.parent is not None:
            yield f"customers[{plan.index_in_file('customers', i)}] (id {c.id}): parent", c.parent
    for i, tariff in enumerate(plan.tariffs):
        yield f"tariffs[{plan.index_in_file('tariffs', i)}] (customer {tariff.customer}, prefix {tariff.prefix})", tariff.customer


def routing_warnings(plan: Provisioning, stored_connections: Mapping[str, bool]) -> list[str]:
    """Customers routed to a connection that will not exist or is disabled (allowed, SPEC §8);
    `stored_connections` maps each stored connection's name to whether it is enabled."""
    known = dict(stored_connections)
    known.update({c.name: c.enabled for c in plan.connections})
    out = []
    for position, c in enumerate(plan.customers):
        if not c.sms:
            continue
        i = plan.index_in_file("customers", position)
        state = known.get(c.sms_provider)
        if state is None:
            out.append(f"customers[{i}] (id {c.id}): routes to connection {c.sms_provider!r}, which does not exist (sends will answer 220)")
        elif not state:
            out.append(f"customers[{i}] (id {c.id}): routes to connection {c.sms_provider!r}, which is disabled (sends will answer 220)")
    return out + _fallback_warnings(plan, known)


def _fallback_warnings(plan: Provisioning, known: Mapping[str, bool]) -> list[str]:
    out = []
    for position, c in enumerate(plan.connections):
        i = plan.index_in_file("connections", position)
        for name in c.fallback:
            if name not in known:
                out.append(f"connections[{i}] ({c.name!r}): fallback {name!r} does not exist (skipped until it does)")
            elif not known[name]:
                out.append(f"connections[{i}] ({c.name!r}): fallback {name!r} is disabled (skipped while it is)")
    return out


def parents_first(plan: Provisioning) -> list[CustomerSpec]:
    """The plan's customers, each after its parent when the plan defines that parent too."""
    by_id = {c.id: c for c in plan.customers}
    done: set[int] = set()
    out: list[CustomerSpec] = []

    def visit(spec: CustomerSpec, depth: int = 0) -> None:
        if spec.id in done or depth > len(by_id):
            return
        if spec.parent in by_id:
            visit(by_id[spec.parent], depth + 1)
        done.add(spec.id)
        out.append(spec)

    for spec in plan.customers:
        visit(spec)
    return out
