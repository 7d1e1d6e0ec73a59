"""Inbound messages (SPEC §14) on every store: stored once, read by their own customer only,
opt-out/opt-in changes on the block list, and the `mo` event in the outbox."""

from __future__ import annotations

from typing import Any

from pombo.domain.inbound import OPT_IN, OPT_OUT
from pombo.ports import InboundSpec, Store
from tests.contract.conftest import DEST, OTHER, SHOP, T0, base_doc, operate, provision, spec

HOOK = "http://hook.example/mo"


def mo(provider_id: str = "w-1", *, customer_id: int | None = SHOP, reply_to: int | None = None,
       connection: str = "sim", sender: str = DEST, text: str = "SIM", now: float = T0 + 100,
       opt: tuple[str, str] | None = None, callback_url: str | None = None) -> InboundSpec:
    return InboundSpec(
        connection=connection, provider_id=provider_id, sender=sender, dest="28000", text=text,
        received_at=now - 1, customer_id=customer_id, reply_to=reply_to,
        routed_by="correlation" if reply_to else None, raw="{}", now=now, callback_url=callback_url, opt=opt,
    )


async def catalog_after_change(store: Store) -> Any:
    """The catalog as the intake's next send sees it: it invalidates after an opt change."""
    store.invalidate()
    return await store.catalog()


async def sent(store: Store, **kw: Any) -> int:
    result = await store.accept(spec(**kw))
    assert isinstance(result, int), result
    return result


async def test_a_provider_retry_is_not_a_second_message(shop: Store) -> None:
    first, new = await shop.save_inbound(mo("w-1"))
    again, new_again = await shop.save_inbound(mo("w-1", text="other text", now=T0 + 200))
    assert new and not new_again and again == first
    other, other_new = await shop.save_inbound(mo("w-1", connection="wavy"))  # another provider's id space
    assert other_new and other != first
    rows = await shop.inbound_page(customer_id=SHOP, start=0, end=T0 * 2, after_id=0, limit=10)
    assert [(r["id"], r["text"]) for r in rows] == [(first, "SIM"), (other, "SIM")]
    row = rows[0]
    assert (row["source"], row["dest"], row["received_at"], row["created_at"], row["connection"]) == (
        DEST, "28000", T0 + 99, T0 + 100, "sim")


async def test_a_customer_reads_only_its_own_inbound(shop: Store) -> None:
    message = await sent(shop)
    mine, _ = await shop.save_inbound(mo("a", reply_to=message))
    await shop.save_inbound(mo("b", customer_id=OTHER))
    await shop.save_inbound(mo("c", customer_id=None))  # unrouted: kept, nobody's
    page = await shop.inbound_page(customer_id=SHOP, start=0, end=T0 * 2, after_id=0, limit=10)
    assert [r["id"] for r in page] == [mine]
    assert [r["reply_to"] for r in page] == [message]
    assert [r["id"] for r in await shop.inbound_replies(customer_id=SHOP, message_id=message, after_id=0, limit=10)] == [mine]
    assert await shop.inbound_replies(customer_id=OTHER, message_id=message, after_id=0, limit=10) == []
    others = await shop.inbound_page(customer_id=OTHER, start=0, end=T0 * 2, after_id=0, limit=10)
    assert [r["provider_id"] for r in others] == ["b"]


async def test_paging_and_dates(shop: Store) -> None:
    ids = [(await shop.save_inbound(mo(f"p{i}", now=T0 + i)))[0] for i in range(5)]
    page = await shop.inbound_page(customer_id=SHOP, start=0, end=T0 * 2, after_id=ids[1], limit=2)
    assert [r["id"] for r in page] == ids[2:4]
    window = await shop.inbound_page(customer_id=SHOP, start=T0 + 1, end=T0 + 3, after_id=0, limit=10)
    assert [r["id"] for r in window] == ids[1:3]


async def test_finding_what_an_answer_answers(shop: Store) -> None:
    old = await sent(shop, now=T0)
    newer = await sent(shop, now=T0 + 50)
    theirs = await sent(shop, customer_id=OTHER, now=T0 + 60)
    assert (await shop.sent_message(connection="sim", message_id=old) or {})["customer_id"] == SHOP
    assert await shop.sent_message(connection="wavy", message_id=old) is None
    rows = await shop.latest_sent_to(connection="sim", dest=DEST, since=T0 + 10, limit=10)
    assert [r["id"] for r in rows] == [theirs, newer]
    assert await shop.latest_sent_to(connection="wavy", dest=DEST, since=0, limit=10) == []
    assert [r["id"] for r in await shop.latest_sent_to(connection=None, dest=DEST, since=0, limit=2)] == [theirs, newer]


async def test_opt_out_blocks_for_that_customer_only_and_opt_in_lifts_it(shop: Store) -> None:
    out_id, _ = await shop.save_inbound(mo("o1", text="Sair.", opt=(OPT_OUT, "sair")))
    catalog = await catalog_after_change(shop)
    assert catalog.blocked_number([SHOP], DEST)
    assert not catalog.blocked_number([OTHER], DEST)
    await shop.save_inbound(mo("o2", text="PARAR", opt=(OPT_OUT, "parar")))  # already out: no change
    await shop.save_inbound(mo("o1", text="Sair.", opt=(OPT_OUT, "sair")))  # a retry: nothing
    changes = await shop.opt_changes(customer_id=SHOP)
    assert [(c["number"], c["action"], c["word"], c["mo_id"]) for c in changes] == [(DEST, "out", "sair", out_id)]
    in_id, _ = await shop.save_inbound(mo("i1", text="voltar", opt=(OPT_IN, "voltar"), now=T0 + 300))
    assert not (await catalog_after_change(shop)).blocked_number([SHOP], DEST)
    changes = await shop.opt_changes(customer_id=SHOP)
    assert [(c["action"], c["mo_id"], c["created_at"]) for c in changes][-1] == ("in", in_id, T0 + 300)
    assert await shop.opt_changes(customer_id=OTHER) == []


async def test_opt_in_never_lifts_a_provisioned_block(store: Store) -> None:
    doc = base_doc()
    doc["customers"][1]["blocklist"] = [DEST]
    await provision(store, doc)
    await store.save_inbound(mo("o1", text="sair", opt=(OPT_OUT, "sair")))
    await store.save_inbound(mo("i1", text="start", opt=(OPT_IN, "start")))
    assert (await catalog_after_change(store)).blocked_number([SHOP], DEST)
    await store.save_inbound(mo("i2", text="start", opt=(OPT_IN, "start")))
    assert (await catalog_after_change(store)).blocked_number([SHOP], DEST)
    # a later `pombo load` of the same file keeps an opt-out it did not make
    await store.save_inbound(mo("x", sender="5511987650002", text="stop", opt=(OPT_OUT, "stop")))
    await provision(store, doc)
    assert (await catalog_after_change(store)).blocked_number([SHOP], "5511987650002")


async def test_mo_event_goes_to_the_answered_messages_url_else_the_customers(shop: Store) -> None:
    message = await sent(shop, notify_url="http://rurl.example/x")
    await shop.callback_done(event_id=0, now=T0)  # nothing: just a no-op on every store
    for event in await shop.due_callbacks(now=T0 + 1000, lease=30, limit=100):
        await shop.callback_done(event_id=event["id"], now=T0 + 1000)
    answer, _ = await shop.save_inbound(mo("a", reply_to=message, callback_url=HOOK))
    plain, _ = await shop.save_inbound(mo("b", callback_url=HOOK))
    await shop.save_inbound(mo("c"))  # no callback anywhere: no event
    await shop.save_inbound(mo("a", reply_to=message, callback_url=HOOK))  # a retry: no second event
    events = await shop.due_callbacks(now=T0 + 1000, lease=30, limit=100)
    got = [(e["url"], e["inbound"]["id"], e["inbound"]["text"], e["customer_id"]) for e in events]
    assert got == [("http://rurl.example/x", answer, "SIM", SHOP), (HOOK, plain, "SIM", SHOP)]
    for event in events:
        await shop.callback_done(event_id=event["id"], now=T0 + 1000)
    assert await shop.due_callbacks(now=T0 + 2000, lease=30, limit=100) == []


async def test_prune_takes_old_inbound_messages(shop: Store) -> None:
    await shop.save_inbound(mo("old", now=T0))
    keep, _ = await shop.save_inbound(mo("new", now=T0 + 10_000))
    counts = await operate(shop, "prune_log", before=T0 + 5000, now=T0 + 20_000)
    assert counts["inbound_deleted"] == 1
    rows = await shop.inbound_page(customer_id=SHOP, start=0, end=T0 * 2, after_id=0, limit=10)
    assert [r["id"] for r in rows] == [keep]
