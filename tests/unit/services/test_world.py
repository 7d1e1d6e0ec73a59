"""The world itself: provisioned as the document says."""

from __future__ import annotations

from tests.unit.services.conftest import World


async def test_world_is_provisioned(world: World) -> None:
    catalog = await world.store.catalog()
    assert set(catalog.connections) == {"velip", "matrix", "flash", "wavy", "tww", "kannel", "http"}
    assert await world.balance(11) == 50 * 10_000
    assert catalog.chain(11) == (11, 10)
