"""The pure rules of SPEC §14: provider formats, the opt words, the sender's number."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from pombo.domain import inbound
from pombo.domain.inbound import BadInbound

TZ = ZoneInfo("America/Sao_Paulo")
WORDS_OUT = inbound.word_list(inbound.DEFAULT_OPT_OUT_WORDS)
WORDS_IN = inbound.word_list(inbound.DEFAULT_OPT_IN_WORDS)


@pytest.mark.parametrize("text", ["Sair.", " PARAR ", "stop", "Stop!", "CANCELAR", "descadastrar", "sáir"])
def test_opt_out_words(text: str) -> None:
    assert inbound.opt_change(text, opt_out=WORDS_OUT, opt_in=WORDS_IN) == ("out", inbound.keyword(text))


@pytest.mark.parametrize("text", ["quero sair", "sair agora", "", "sairr", "Não"])
def test_not_opt_words(text: str) -> None:
    assert inbound.opt_change(text, opt_out=WORDS_OUT, opt_in=WORDS_IN) is None


def test_opt_in_words() -> None:
    assert inbound.opt_change(" Voltar ", opt_out=WORDS_OUT, opt_in=WORDS_IN) == ("in", "voltar")
    assert inbound.opt_change("START", opt_out=WORDS_OUT, opt_in=WORDS_IN) == ("in", "start")


@pytest.mark.parametrize(("raw", "want"), [
    ("+55 (11) 98765-4321", "5511987654321"), ("011987654321", "5511987654321"), ("11 8765-4321", "5511987654321"),
    ("+1 202 555 0100", "12025550100"), ("VIVO", "VIVO"), ("28000", "28000"),
])
def test_sender(raw: str, want: str) -> None:
    assert inbound.normalize_from(raw) == want


def test_times() -> None:
    assert inbound.parse_time("2026-12-01 10:00:00", TZ) == inbound.parse_time("2026-12-01T13:00:00Z", TZ)
    assert inbound.parse_time(1764597600000, TZ) == 1764597600.0
    assert inbound.parse_time("1764597600", TZ) == 1764597600.0
    assert inbound.parse_time("yesterday", TZ) is None and inbound.parse_time(None, TZ) is None


def test_kannel_and_its_stable_id() -> None:
    params = {"from": "11987654321", "to": "28000", "text": "Sim", "time": "2026-12-01 10:00:00"}
    a = inbound.parse_kannel(params, TZ, now=0)[0]
    b = inbound.parse_kannel(params, TZ, now=10_000)[0]  # a retry later: the same message
    assert a.provider_id == b.provider_id and a.sender == "5511987654321"
    c = inbound.parse_kannel({**params, "time": "2026-12-01 10:01:00"}, TZ, now=0)[0]
    assert c.provider_id != a.provider_id
    assert inbound.parse_kannel({**params, "id": "k-7"}, TZ, now=0)[0].provider_id == "k-7"
    with pytest.raises(BadInbound):
        inbound.parse_kannel({"to": "1", "text": "x"}, TZ, now=0)
    with pytest.raises(BadInbound):
        inbound.parse_kannel({"from": " ", "text": "x"}, TZ, now=0)


def test_wavy_objects_and_lists() -> None:
    one = b'{"id": "9", "source": "5511987654321", "messageText": "Sim", "correlationId": "42", "shortCode": "28000"}'
    (item,) = inbound.parse_wavy(one, TZ, now=0)
    assert (item.provider_id, item.sender, item.dest, item.text, item.correlation) == ("9", "5511987654321", "28000", "Sim", 42)
    assert len(inbound.parse_wavy(b"[" + one + b"," + one + b"]", TZ, now=0)) == 2
    assert inbound.parse_wavy(b"[]", TZ, now=0) == []
    for bad in (b"", b"nope", b"1", b'["x"]', b'{"id": "1", "source": "1"}'):
        with pytest.raises(BadInbound):
            inbound.parse_wavy(bad, TZ, now=0)


def test_mapped_fields() -> None:
    mapping = {"from": "msisdn", "text": "body", "id": "mid", "correlation": "ref", "to": "sc"}
    (item,) = inbound.parse_mapped(mapping, {"msisdn": "11987654321", "body": "ok", "mid": "m1", "sc": "4000"}, b"", TZ, now=0)
    assert (item.provider_id, item.text, item.dest, item.correlation) == ("m1", "ok", "4000", None)
    (item,) = inbound.parse_mapped(mapping, {}, b'{"msisdn": "11987654321", "body": "x", "ref": 7}', TZ, now=0)
    assert item.correlation == 7 and item.provider_id.startswith("h:")
    with pytest.raises(BadInbound):
        inbound.parse_mapped(mapping, {"msisdn": "1"}, b"", TZ, now=0)
