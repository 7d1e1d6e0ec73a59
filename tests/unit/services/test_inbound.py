"""Inbound messages on the memory store (SPEC §14): routing order, opt words, GetSMSReply."""

from __future__ import annotations

import orjson
import pytest

from pombo.domain import codes
from pombo.domain.inbound import BadInbound
from pombo.services.dlr import Forbidden
from tests.unit.services.conftest import (
    DEST,
    NDEST,
    OTHER_TOKEN,
    TOKEN,
    World,
    WorldMaker,
    base_document,
    creds,
    customer,
)


async def kannel(world: World, text: str, *, sender: str = DEST, to: str = "9999", **extra: str) -> int:
    params = {"from": sender, "to": to, "text": text, **extra}
    return await world.inbound.receive(connection="kannel", secret="kannel-secret", params=params, body=b"")


async def sent_on_kannel(world: World, token: str = TOKEN, dest: str = DEST) -> int:
    result = await world.send(token=token, dest=dest, message="hi", provider="", httpdup="0")
    assert result.code == 0, result
    world.store.t.messages[result.cdls_id]["connection"] = "kannel"  # as if it had gone out there
    return result.cdls_id


@pytest.fixture
async def numbered(worlds: WorldMaker) -> World:
    doc = base_document()
    customer(doc, 11)["numbers"] = ["28000", "+55 11 4000-1234"]
    customer(doc, 20)["reply_window"] = 1
    built: World = await worlds(doc)
    return built


async def test_numbers_win_over_the_window(numbered: World) -> None:
    theirs = await sent_on_kannel(numbered, OTHER_TOKEN)
    assert await kannel(numbered, "Oi", to="28000") == 1
    assert await kannel(numbered, "Oi de novo", to="551140001234") == 1
    rows = list(numbered.store.t.inbound.values())
    assert [(r["customer_id"], r["reply_to"], r["routed_by"]) for r in rows] == [(11, None, "numbers")] * 2
    assert await kannel(numbered, "Oi 3") == 1
    assert numbered.store.t.inbound[3]["customer_id"] == 20 and numbered.store.t.inbound[3]["reply_to"] == theirs


async def test_the_window_is_the_customers(numbered: World) -> None:
    await sent_on_kannel(numbered, OTHER_TOKEN)  # customer 20: a 1-hour window
    numbered.clock.advance(3601)
    await kannel(numbered, "late")
    assert numbered.store.t.inbound[1]["customer_id"] is None


async def test_opt_words_are_folded_and_trimmed(numbered: World) -> None:
    for text in (" Sair. ", "PARAR!", "stop", "Cancelar", "DESCADASTRAR"):
        await kannel(numbered, text, to="28000", id=text)
        assert (await numbered.send(dest=DEST, message="x", httpdup="0")).code == codes.NUMBER_BLOCKED, text
        await kannel(numbered, "Voltar", to="28000", id="in-" + text)
        assert (await numbered.send(dest=DEST, message="x", httpdup="0")).code == 0, text
    await kannel(numbered, "quero sair da lista", to="28000")
    assert (await numbered.send(dest=DEST, message="x", httpdup="0")).code == 0


async def test_the_operator_replaces_the_words(worlds: WorldMaker) -> None:
    doc = base_document()
    customer(doc, 11)["numbers"] = ["28000"]
    doc["opt_out_words"] = ["Não quero"]
    doc["opt_in_words"] = ["quero sim"]
    world = await worlds(doc)
    await kannel(world, "sair", to="28000")
    assert (await world.send(dest=DEST, message="x", httpdup="0")).code == 0
    await kannel(world, "NAO QUERO.", to="28000")
    assert (await world.send(dest=DEST, message="x", httpdup="0")).code == codes.NUMBER_BLOCKED
    await kannel(world, "Quero, sim!", to="28000")
    assert (await world.send(dest=DEST, message="x", httpdup="0")).code == 0


async def test_unrouted_messages_change_no_block_list(world: World) -> None:
    await kannel(world, "sair")
    assert world.store.t.inbound[1]["customer_id"] is None
    assert world.store.t.opt_outs == {}


async def test_intake_refusals(world: World) -> None:
    with pytest.raises(Forbidden):
        await world.inbound.receive(connection="kannel", secret="wavy-secret", params={}, body=b"")
    with pytest.raises(Forbidden):  # takes no MO push
        await world.inbound.receive(connection="tww", secret="tww-secret", params={}, body=b"")
    with pytest.raises(Forbidden):  # an http connection without a `mo` mapping
        await world.inbound.receive(connection="http", secret="http-secret", params={}, body=b"")
    with pytest.raises(BadInbound):
        await world.inbound.receive(connection="wavy", secret="wavy-secret", params={}, body=b'{"id": 1}')
    assert world.store.t.inbound == {}


async def test_get_sms_reply_own_messages_only(world: World) -> None:
    mine = await world.send(dest=DEST, message="hi", httpdup="0")
    world.store.t.messages[mine.cdls_id]["connection"] = "wavy"  # as if it had gone out there
    body = orjson.dumps([{"id": "a", "source": NDEST, "messageText": "Sim", "correlationId": str(mine.cdls_id)}])
    assert await world.inbound.receive(connection="wavy", secret="wavy-secret", params={}, body=body) == 1
    got = await world.replies(params={"cdls_id": str(mine.cdls_id)}, creds=creds())
    assert isinstance(got, tuple)
    assert [(m["text"], m["reply_to"], m["from"]) for m in got[1]] == [("Sim", str(mine.cdls_id), NDEST)]
    for params in ({"cdls_id": str(mine.cdls_id)}, {}, {"date_start": "2000-01-01"}):
        foreign = await world.replies(params=params, creds=creds(OTHER_TOKEN))
        assert isinstance(foreign, tuple) and foreign[1] == []
    assert (await world.replies(params={}, creds=creds(None))) == codes.reject(codes.FAIL_AUTHENTICATION)
    assert (await world.replies(params={"date_end": "31/12"}, creds=creds())) == codes.reject(codes.BAD_REQUEST)
