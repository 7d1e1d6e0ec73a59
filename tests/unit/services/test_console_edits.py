"""Console edits through the operator service (issue 17): `pombo load`'s rules and words, one
audit row per change, and the next send priced, blocked or let through by the change."""

from __future__ import annotations

import pytest

from pombo.services.operator import Operator, ProvisioningError
from pombo.services.provisioning import parse_document
from tests.unit.services.conftest import DEST, NDEST, World


def _operator(world: World) -> Operator:
    return Operator(store=world.store, clock=world.clock)


def _load_says(doc: dict[str, object]) -> list[str]:
    with pytest.raises(ProvisioningError) as caught:
        parse_document(doc)
    return caught.value.errors


async def test_a_bad_tariff_says_what_pombo_load_says_and_changes_nothing(world: World) -> None:
    op = _operator(world)
    with pytest.raises(ProvisioningError) as caught:
        await op.set_tariff(customer_id=11, prefix="55a", value="0.00001", connection="No Such", operator="ana")
    load = _load_says({"tariffs": [{"customer": 11, "prefix": "55a", "value": "0.00001", "connection": "No Such"}]})
    assert [f"tariffs[0] (customer 11, prefix '55a', connection 'No Such'): {e}" for e in caught.value.errors] == load
    assert len(caught.value.errors) == 3
    assert await op.console_audit(customer_id=11) == []


async def test_the_next_send_pays_the_new_tariff(world: World) -> None:
    op = _operator(world)
    row = await op.set_tariff(customer_id=11, prefix="5511", value="0.25", connection="", operator="ana")
    assert row is not None and row["after"] == {"prefix": "5511", "connection": "", "value": 2500}
    result = await world.send(dest=DEST, message="oi")
    assert world.message(result.cdls_id)["value"] == 2500
    assert await op.set_tariff(customer_id=999, prefix="55", value="1", connection="", operator="ana") is None


async def test_blocked_numbers_are_stored_as_sends_look(world: World) -> None:
    op = _operator(world)
    with pytest.raises(ProvisioningError) as caught:
        await op.add_blocked(customer_id=11, number="12-34", operator="ana")
    assert caught.value.errors == ["blocklist[0]: not a phone number (8 to 15 digits): '12-34'"]
    row = await op.add_blocked(customer_id=11, number=DEST, operator="ana")
    assert row is not None and row["after"] == [NDEST]
    assert (await world.send(dest=DEST, message="oi")).code == 260
    assert await op.remove_blocked(customer_id=11, number=NDEST, operator="bia") is not None
    assert [r["operator"] for r in await op.console_audit(customer_id=11)] == ["bia", "ana"]


async def test_models_are_checked_and_stored_trimmed(world: World) -> None:
    op = _operator(world)
    with pytest.raises(ProvisioningError):
        await op.add_model(customer_id=11, text=" \t", operator="ana")
    row = await op.add_model(customer_id=11, text="  Itau: codigo {c}  ", operator="ana")
    assert row is not None and row["after"] == ["Itau: codigo {c}"]
    assert (await world.send(dest=DEST, message="Itau: codigo 1234")).code == 0
    assert await op.edit_model(customer_id=11, old="missing", text="x", operator="ana") is None
    assert await op.remove_model(customer_id=11, text="Itau: codigo {c}", operator="ana") is not None
    assert (await world.send(dest=DEST, message="Itau: codigo 1234")).code == 270
