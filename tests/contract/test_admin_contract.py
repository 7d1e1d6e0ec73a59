"""The operator's changes (SPEC §8, §9): provisioning with its upsert rules, references and
warnings, the catalog built from what is stored, money, tokens, connections, pruning the log."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pombo.domain import credentials
from pombo.errors import NotFound
from pombo.ports import Store
from pombo.services.provisioning import parse_document
from tests.contract.conftest import (
    OTHER,
    RESELLER,
    RESELLER_PRICE,
    SHOP,
    SHOP_PRICE,
    T0,
    assert_sound,
    base_doc,
    ledger_rows,
    operate,
    provision,
    raw_reports,
    spec,
)

SHOP_TOKEN = "tok-shop-0000000001"


def customer(doc: dict[str, Any], customer_id: int) -> dict[str, Any]:
    return next(c for c in doc["customers"] if c["id"] == customer_id)


async def test_the_catalog_is_what_was_provisioned(store: Store) -> None:
    doc = base_doc()
    shop = customer(doc, SHOP)
    shop.update(blocklist=["11 98765-0009"], models=["Seu código é {x}"], ip_allowlist=["10.0.0.0/8"],
                users=[{"username": "ana", "password": "pw-ana", "send": True}],
                callback={"url": "http://hook.example/cb", "headers": {"X-K": "v"}})
    doc["text_filter"] = ["banco falso"]
    doc["tariffs"].append({"customer": SHOP, "prefix": "5521", "value": "0.0900", "connection": "sim"})
    report = await provision(store, doc)
    assert report.errors == [] and report.warnings == []
    assert report.counts == {"connections": 1, "costs": 1, "customers": 3, "tariffs": 4, "tokens": 3, "users": 1}
    cat = await store.catalog()
    plan = parse_document(copy.deepcopy(doc))
    assert dict(cat.customers) == {c.id: c.to_customer() for c in plan.customers}
    assert cat.chain(SHOP) == (SHOP, RESELLER) and cat.chain(OTHER) == (OTHER,)
    token = cat.tokens[credentials.hash_token(SHOP_TOKEN)]
    assert (token.customer_id, token.user_id, token.prefix) == (SHOP, None, SHOP_TOKEN[:10])
    assert len(cat.tokens) == 3
    user = cat.users_by_name["ana"]
    assert (user.customer_id, user.send, user.app) == (SHOP, True, False)
    assert credentials.verify_password("pw-ana", user.password_hash) and cat.users_by_id[user.id] == user
    assert cat.prices((SHOP, RESELLER), "5521999990000", "sim") == [900, 500]
    assert cat.prices((SHOP, RESELLER), "5511999990000", "sim") == [800, 500]
    assert cat.prices((SHOP,), "4411999990000", "sim") is None
    assert cat.cost("5511999990000", "sim") == 100
    assert cat.blocked_number((SHOP, RESELLER), "5511987650009") and not cat.blocked_number((OTHER,), "5511987650009")
    assert SHOP in cat.models and OTHER not in cat.models
    assert cat.text_filter.matches("seu BANCO FALSO avisa") and not cat.text_filter.matches("itau")
    sim = cat.connections["sim"]
    assert (sim.kind, sim.enabled, sim.dlr_secret, sim.options) == ("simulator", True, "s3cret-sim", {"delay": 0.0})


async def test_opening_balance_only_on_create(store: Store) -> None:
    await provision(store, base_doc(shop_balance="20.00", shop_limit="-1.00"))
    await provision(store, base_doc(shop_balance="99.00", shop_limit="-2.00"), now=T0 + 1)
    assert await store.balance(customer_id=SHOP) == (200_000, -20_000)  # the limit follows the file
    assert sorted(r for r in await ledger_rows(store) if r[2] == "opening") == sorted(
        [(RESELLER, 5_000_000, "opening", None), (SHOP, 200_000, "opening", None), (OTHER, 100_000, "opening", None)])
    doc = base_doc()
    doc["customers"].append({"id": 30, "name": "Zero", "sms_provider": "sim", "balance": "0"})
    doc["customers"].append({"id": 31, "name": "Nada", "sms_provider": "sim"})
    await provision(store, doc)
    assert await store.balance(customer_id=30) == (0, 0) and await store.balance(customer_id=31) == (0, 0)
    assert [r for r in await ledger_rows(store) if r[0] in (30, 31)] == []
    await assert_sound(store)


async def test_lists_are_replaced_only_when_given(store: Store) -> None:
    doc = base_doc()
    customer(doc, SHOP).update(blocklist=["5511987650009"], models=["a {x}", "b {y}"])
    await provision(store, doc)
    await provision(store, base_doc())  # no blocklist, no models: both kept
    cat = await store.catalog()
    assert cat.blocklists[SHOP] == frozenset({"5511987650009"}) and SHOP in cat.models
    doc = base_doc()
    customer(doc, SHOP).update(blocklist=[], models=[])
    await provision(store, doc)
    cat = await store.catalog()
    assert SHOP not in cat.blocklists and SHOP not in cat.models


async def test_tokens_users_and_secrets_survive_a_reload(store: Store) -> None:
    doc = base_doc()
    customer(doc, SHOP)["users"] = [{"username": "ana", "password": "pw-ana"}]
    del doc["connections"][0]["dlr_secret"]
    await provision(store, doc)
    first = await store.catalog()
    secret = first.connections["sim"].dlr_secret
    assert len(secret) >= 16
    report = await provision(store, doc, now=T0 + 1)
    assert report.counts["tokens"] == 0  # already stored
    again = await store.catalog()
    assert again.connections["sim"].dlr_secret == secret  # kept, not drawn again
    assert again.users_by_name["ana"].password_hash == first.users_by_name["ana"].password_hash
    assert dict(again.tokens) == dict(first.tokens)
    customer(doc, SHOP)["users"] = [{"username": "ana", "password": "new-pw", "app": True}]
    await provision(store, doc, now=T0 + 2)
    ana = (await store.catalog()).users_by_name["ana"]
    assert ana.app and credentials.verify_password("new-pw", ana.password_hash)
    assert ana.id == first.users_by_name["ana"].id


async def test_reference_errors_apply_nothing(store: Store) -> None:
    await provision(store, base_doc())
    before = await store.catalog()
    doc = {"customers": [{"id": 40, "name": "Órfã", "parent": 99, "sms_provider": "sim"}],
           "tariffs": [{"customer": 98, "prefix": "55", "value": "0.01"}, {"customer": SHOP, "prefix": "56", "value": "0.01"}]}
    report = await provision(store, doc)
    assert report.errors == ["customers[0] (id 40): parent: customer 99 does not exist",
                             "tariffs[0] (customer 98, prefix 55): customer 98 does not exist"]
    after = await store.catalog()
    assert 40 not in after.customers and after.prices((SHOP,), "5611999990000", "sim") is None
    assert dict(after.customers) == dict(before.customers)
    ok = await provision(store, {"tariffs": [{"customer": SHOP, "prefix": "56", "value": "0.01"}]})
    assert ok.errors == [] and (await store.catalog()).prices((SHOP,), "5611999990000", "sim") == [100]


async def test_a_reload_moves_a_customer_under_a_new_one_and_keeps_money(store: Store) -> None:
    """Customers new in a file are written before the stored ones are updated (batched writes):
    a stored customer may move under a reseller the same file creates, listed after it; a
    stored balance and token stay; a new customer's opening balance is one ledger row."""
    await provision(store, base_doc())
    before = await store.balance(customer_id=OTHER)
    doc = {"customers": [{"id": OTHER, "name": "Outra", "parent": 30, "sms_provider": "sim", "balance": "999"},
                         {"id": 30, "name": "Revenda Nova", "balance": "7.50", "tokens": ["tok-new-reseller-30"]}],
           "tariffs": [{"customer": 30, "prefix": "55", "value": "0.0100"}]}
    report = await provision(store, doc)
    assert report.errors == [] and report.counts["customers"] == 2 and report.counts["tokens"] == 1
    cat = await store.catalog()
    assert cat.chain(OTHER) == (OTHER, 30)
    assert await store.balance(customer_id=OTHER) == before
    assert await store.balance(customer_id=30) == (75_000, 0)
    assert [r for r in await ledger_rows(store) if r[0] == 30] == [(30, 75_000, "opening", None)]
    assert cat.tokens[credentials.hash_token("tok-new-reseller-30")].customer_id == 30
    await assert_sound(store)


async def test_a_check_only_plan_writes_nothing(store: Store) -> None:
    """`apply=False` (a file with errors elsewhere): reference errors and warnings, no writes."""
    await provision(store, base_doc())
    before = await store.catalog()
    plan = parse_document({"customers": [{"id": 41, "name": "Nova", "parent": 99, "balance": "-1"},
                                         {"id": 42, "name": "Outra", "sms_provider": "nowhere"}]})
    report = await store.provision(plan, now=T0, apply=False)
    assert report.errors == ["customers[0] (id 41): parent: customer 99 does not exist"]
    assert report.counts == {}
    assert "customers[1] (id 42): routes to connection 'nowhere', which does not exist (sends will answer 220)" in report.warnings
    assert "customers[0] (id 41, 'Nova'): balance: the opening balance -1.0000 is negative (the customer starts in debt)" in report.warnings
    assert dict((await store.catalog()).customers) == dict(before.customers)
    ok = await store.provision(parse_document({"customers": [{"id": 43, "name": "Sem erro"}]}), now=T0, apply=False)
    assert ok.errors == [] and 43 not in (await store.catalog()).customers


async def test_routing_warnings(store: Store) -> None:
    await provision(store, {"connections": [{"name": "off", "kind": "simulator", "enabled": False}]})
    doc = {"customers": [{"id": 50, "name": "A", "sms_provider": "nowhere"}, {"id": 51, "name": "B", "sms_provider": "off"},
                         {"id": 52, "name": "C", "sms_provider": "nowhere", "sms": False}]}
    report = await provision(store, doc)
    assert report.errors == []
    assert report.warnings == [
        "customers[0] (id 50): routes to connection 'nowhere', which does not exist (sends will answer 220)",
        "customers[1] (id 51): routes to connection 'off', which is disabled (sends will answer 220)",
    ]
    assert {50, 51, 52} <= set((await store.catalog()).customers)


async def test_credit_add(shop: Store) -> None:
    assert await operate(shop, "credit_add", customer_id=SHOP, amount=12_345, note="pix", now=T0) == 212_345
    assert await operate(shop, "credit_add", customer_id=SHOP, amount=-345, note=None, now=T0) == 212_000
    assert await shop.balance(customer_id=SHOP) == (212_000, 0)
    assert [r for r in await ledger_rows(shop) if r[2] == "topup"] == [(SHOP, 12_345, "topup", None), (SHOP, -345, "topup", None)]
    with pytest.raises(NotFound):
        await operate(shop, "credit_add", customer_id=999, amount=1, note=None, now=T0)
    await assert_sound(shop)


async def test_tokens_issued_and_revoked(shop: Store) -> None:
    token = await operate(shop, "issue_token", customer_id=OTHER, user_id=None, now=T0)
    hashed = credentials.hash_token(token)
    issued = (await shop.catalog()).tokens[hashed]
    assert (issued.customer_id, issued.prefix) == (OTHER, token[:10])
    with pytest.raises(NotFound):
        await operate(shop, "issue_token", customer_id=999, user_id=None, now=T0)
    assert await operate(shop, "revoke_token", token_or_prefix=token, now=T0) == 1
    assert hashed not in (await shop.catalog()).tokens  # a revoked token is gone from the catalog
    assert await operate(shop, "revoke_token", token_or_prefix=token, now=T0) == 0
    assert await operate(shop, "revoke_token", token_or_prefix=SHOP_TOKEN[:10], now=T0) == 1  # by prefix
    assert credentials.hash_token(SHOP_TOKEN) not in (await shop.catalog()).tokens
    await provision(shop, base_doc())  # provisioning a revoked token again does not bring it back
    assert credentials.hash_token(SHOP_TOKEN) not in (await shop.catalog()).tokens


async def test_revoke_a_customers_token_by_id(shop: Store) -> None:
    token = (await shop.catalog()).tokens[credentials.hash_token("tok-other-000000001")]
    assert await operate(shop, "revoke_customer_token", customer_id=SHOP, token_id=token.id, now=T0) is None
    assert await operate(shop, "revoke_customer_token", customer_id=OTHER, token_id=token.id, now=T0) == token.prefix
    assert await operate(shop, "revoke_customer_token", customer_id=OTHER, token_id=token.id, now=T0) is None
    assert token.token_hash not in (await shop.catalog()).tokens


async def test_connections_enabled_and_disabled(shop: Store) -> None:
    assert await operate(shop, "set_connection_enabled", name="sim", enabled=False)
    assert not (await shop.catalog()).connections["sim"].enabled
    assert await operate(shop, "set_connection_enabled", name="sim", enabled=True)
    assert (await shop.catalog()).connections["sim"].enabled
    assert not await operate(shop, "set_connection_enabled", name="nope", enabled=True)


async def test_prune_keeps_waiting_messages_and_the_ledger(shop: Store) -> None:
    ids = []
    for i in range(4):
        result = await shop.accept(spec(dest=f"55119876500{i:02d}", now=T0 + i))
        assert isinstance(result, int)
        ids.append(result)
    await shop.settle_ok(message_id=ids[0], upstream_id="u0", raw="ok", now=T0 + 10)
    await shop.settle_failed(message_id=ids[1], raw="no", now=T0 + 10)
    await shop.apply_delivery(connection="sim", message_id=ids[0], upstream_id=None, state="delivered", raw="d", now=T0 + 11)
    # a report that moves nothing: ids[2] stays waiting (one that shows the provider took it settles it OK)
    await shop.apply_delivery(connection="sim", message_id=ids[2], upstream_id=None, state=None, raw="s", now=T0 + 11)
    for i in ids[:3]:  # upstream attempts go with their message; a waiting message keeps its own
        await shop.record_attempt(message_id=i, connection="sim", kind="not_sent", raw="HTTP 503: busy", now=T0 + 5)
    ledger = await ledger_rows(shop)
    counts = await operate(shop, "prune_log", before=T0 + 2.5, now=T0 + 100)
    assert counts == {"partitions_dropped": 0, "messages_deleted": 2, "reports_deleted": 1, "attempts_deleted": 2,
                      "waiting_kept": 1, "inbound_deleted": 0}
    assert [await shop.get_message(customer_id=SHOP, message_id=i) is not None for i in ids] == [False, False, True, True]
    assert [len(await shop.attempts(message_id=i)) for i in ids] == [0, 0, 1, 0]
    assert await raw_reports(shop) == [("sim", ids[2], None, "s")]
    assert await ledger_rows(shop) == ledger
    await assert_sound(shop)


async def test_ledger_sums_list_every_customer(shop: Store) -> None:
    sums = await shop.ledger_sums()
    assert sums == [(RESELLER, 5_000_000, 5_000_000), (SHOP, 200_000, 200_000), (OTHER, 100_000, 100_000)]



async def test_message_ids_are_never_reused_after_a_prune(shop: Store) -> None:
    """A client paging by last id never misses a new message, and a new message's refund never
    touches the ledger rows of a pruned one (SQLite keeps its newest row for this)."""
    start = await shop.ledger_sums()
    old = await shop.accept(spec(now=T0))
    assert isinstance(old, int)
    await shop.settle_ok(message_id=old, upstream_id="u", raw="ok", now=T0 + 1)
    await operate(shop, "prune_log", before=T0 + 10, now=T0 + 100)
    new = await shop.accept(spec(now=T0 + 200))
    assert isinstance(new, int)
    assert await shop.settle_failed(message_id=new, raw="no", now=T0 + 201)
    paid_for_old = {cid: -SHOP_PRICE if cid == SHOP else -RESELLER_PRICE if cid == RESELLER else 0 for cid, _, _ in start}
    assert [(c, b) for c, b, _ in await shop.ledger_sums()] == [(c, b + paid_for_old[c]) for c, b, _ in start]
    assert new > old


async def test_a_token_change_leaves_the_rest_of_the_snapshot_alone(shop: Store) -> None:
    """Issuing or revoking a token updates that token in the snapshot; nothing else is read again."""
    before = await shop.catalog()
    token = await operate(shop, "issue_token", customer_id=OTHER, user_id=None, now=T0)
    after = await shop.catalog()
    assert after.version == before.version and after.token_version > before.token_version
    assert after.customers is before.customers and after.tariffs is before.tariffs  # not reloaded
    assert credentials.hash_token(token) in after.tokens and len(after.tokens) == len(before.tokens) + 1
    assert await operate(shop, "revoke_token", token_or_prefix=token, now=T0) == 1
    again = await shop.catalog()
    assert again.version == before.version and again.customers is before.customers
    assert credentials.hash_token(token) not in again.tokens and again.token_version > after.token_version
    assert await operate(shop, "revoke_token", token_or_prefix="no-such-token-at-all", now=T0) == 0
    assert (await shop.catalog()).tokens == again.tokens


async def test_minted_tokens_are_capped_per_user_and_expire(store: Store) -> None:
    doc = base_doc()
    customer(doc, SHOP)["users"] = [{"username": "ana", "password": "pw-ana"}, {"username": "bia", "password": "pw-bia"}]
    await provision(store, doc)
    users = (await store.catalog()).users_by_name
    ana, bia = users["ana"].id, users["bia"].id

    async def mint(user_id: int, at: float) -> str:
        token: str = await operate(store, "mint_token", customer_id=SHOP, user_id=user_id, keep=2, ttl=600, now=at)
        return token

    issued = await operate(store, "issue_token", customer_id=SHOP, user_id=ana, now=T0)  # never counted
    minted = [await mint(ana, T0 + i) for i in range(3)]  # the third revokes ana's oldest minted one
    other = await mint(bia, T0)
    tokens = (await store.catalog()).tokens
    live = {t for t in (issued, *minted, other) if credentials.hash_token(t) in tokens}
    assert live == {issued, minted[1], minted[2], other}
    assert tokens[credentials.hash_token(minted[2])].expires_at == T0 + 2 + 600
    assert tokens[credentials.hash_token(issued)].expires_at is None
    assert tokens[credentials.hash_token(other)].user_id == bia
    with pytest.raises(NotFound):
        await mint_for(store, customer_id=999)


async def mint_for(store: Store, *, customer_id: int) -> str:
    token: str = await operate(store, "mint_token", customer_id=customer_id, user_id=None, keep=2, ttl=60, now=T0)
    return token


# ------------------------------------------------------------ console edits (issue 17)


async def test_console_edits_of_a_tariff_are_audited_and_reach_the_catalog(shop: Store) -> None:
    from pombo.domain.customer_edits import CustomerChange

    put = CustomerChange("tariff_set", prefix="5521", connection="sim", value=900)
    row = await shop.edit_customer(customer_id=SHOP, change=put, operator="ana", now=T0)
    assert row is not None
    assert {k: row[k] for k in ("operator", "action", "customer_id", "before", "after", "created_at")} == {
        "operator": "ana", "action": "tariff_set", "customer_id": SHOP, "before": None,
        "after": {"prefix": "5521", "connection": "sim", "value": 900}, "created_at": T0}
    assert (await shop.catalog()).prices((SHOP, RESELLER), "5521999990000", "sim") == [900, RESELLER_PRICE]
    change = CustomerChange("tariff_set", prefix="55", value=1000)  # connection "": any
    row = await shop.edit_customer(customer_id=SHOP, change=change, operator="bia", now=T0 + 1)
    assert row is not None and (row["before"], row["after"]) == (
        {"prefix": "55", "connection": "", "value": SHOP_PRICE}, {"prefix": "55", "connection": "", "value": 1000})
    assert (await shop.catalog()).prices((SHOP, RESELLER), "5511999990000", "sim") == [1000, RESELLER_PRICE]
    gone = CustomerChange("tariff_remove", prefix="5521", connection="sim")
    row = await shop.edit_customer(customer_id=SHOP, change=gone, operator="ana", now=T0 + 2)
    assert row is not None and row["after"] is None
    assert (await shop.catalog()).prices((SHOP, RESELLER), "5521999990000", "sim") == [1000, RESELLER_PRICE]
    # nothing to remove, no such customer: nothing written
    assert await shop.edit_customer(customer_id=SHOP, change=gone, operator="ana", now=T0 + 3) is None
    assert await shop.edit_customer(customer_id=999, change=put, operator="ana", now=T0 + 3) is None
    audit = await shop.console_audit(customer_id=SHOP, limit=10)
    assert [(r["operator"], r["action"]) for r in audit] == [
        ("ana", "tariff_remove"), ("bia", "tariff_set"), ("ana", "tariff_set")]
    assert audit[0]["before"] == {"prefix": "5521", "connection": "sim", "value": 900}
    assert [r["action"] for r in await shop.console_audit(customer_id=SHOP, limit=1)] == ["tariff_remove"]
    assert await shop.console_audit(customer_id=OTHER, limit=10) == []


async def test_console_edits_of_the_block_list_and_models(shop: Store) -> None:
    from pombo.domain.customer_edits import CustomerChange

    async def edit(action: str, item: str, new_item: str = "") -> Any:
        return await shop.edit_customer(customer_id=SHOP, change=CustomerChange(action, item=item,  # type: ignore[arg-type]
                                                                                 new_item=new_item),
                                        operator="ana", now=T0)

    row = await edit("blocklist_add", "5511987650009")
    assert row is not None and (row["before"], row["after"]) == ([], ["5511987650009"])
    row = await edit("blocklist_add", "5511987650001")
    assert row is not None and row["after"] == ["5511987650001", "5511987650009"]
    cat = await shop.catalog()
    assert cat.blocked_number((SHOP, RESELLER), "5511987650001") and cat.blocked_number((SHOP,), "5511987650009")
    assert await edit("blocklist_remove", "5511000000000") is None
    row = await edit("blocklist_remove", "5511987650009")
    assert row is not None and row["after"] == ["5511987650001"]
    assert not (await shop.catalog()).blocked_number((SHOP,), "5511987650009")
    assert (await edit("model_add", "a {x}"))["after"] == ["a {x}"]
    assert (await edit("model_add", "b {y}"))["after"] == ["a {x}", "b {y}"]
    assert (await shop.catalog()).models[SHOP].matches("b 42")
    row = await edit("model_edit", "a {x}", "c {z}")
    assert row is not None and (row["before"], row["after"]) == (["a {x}", "b {y}"], ["c {z}", "b {y}"])
    assert await edit("model_edit", "nope", "d") is None
    row = await edit("model_remove", "b {y}")
    assert row is not None and row["after"] == ["c {z}"]
    models = (await shop.catalog()).models[SHOP]
    assert models.matches("c 1") and not models.matches("b 42")
    assert await edit("model_remove", "c {z}") is not None
    assert SHOP not in (await shop.catalog()).models
    assert len(await shop.console_audit(customer_id=SHOP, limit=100)) == 8
