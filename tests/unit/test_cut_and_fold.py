"""SPEC §13: cuttext within the segment budget, and folding accents into GSM 03.38."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pombo.domain.accents import FOLDS, as_sent, fold_body, fold_char, fold_text, outbound_text
from pombo.domain.text import (
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    UCS2,
    cut,
    encoding_of,
    segment_budget,
    segments,
)

EMOJI = "\U0001f600"


@pytest.mark.parametrize(
    ("body", "max_length", "expected_len", "expected_segments"),
    [
        ("a" * 200, 160, 160, 1),
        ("a" * 160, 160, 160, 1),
        ("€" * 100, 160, 80, 1),  # extension characters take two septets
        ("a" * 159 + "€", 160, 159, 1),  # an ESC pair never straddles the budget
        ("a" * 158 + "€" + "b", 160, 159, 1),
        ("ã" * 100, 160, 70, 1),  # UCS-2: the first 70 (SPEC §13's example)
        ("ã" * 70, 160, 70, 1),
        ("ã" * 71, 160, 70, 1),
        ("a" * 69 + EMOJI + "b", 160, 69, 1),  # a surrogate pair never straddles the budget
        ("a" * 68 + EMOJI + "b", 160, 69, 1),
        (EMOJI * 40, 160, 35, 1),
        ("a" * 400, 300, 300, 2),  # 300 GSM-7 characters take 2 parts: the budget is 2
        ("ã" * 400, 300, 134, 2),  # 2 UCS-2 parts of 67
        ("a" * 152 + "€" + "a" * 200, 300, 300, 2),  # the € moves to part 2; 300 chars fit in 2
        ("a" * 400, 153, 153, 1),
        ("ação " * 50, 160, 70, 1),
        ("ã" * 66 + EMOJI + "ã" * 100, 300, 132, 2),  # the pair moves to part 2 (66 + 2 > 67)
        ("a" * 152 + "€" + "b" * 300, 306, 304, 2),  # the ESC pair moves to part 2 (152 + 2 > 153)
        ("short", 160, 5, 1),
    ],
)
def test_cut_keeps_the_budget(body: str, max_length: int, expected_len: int, expected_segments: int) -> None:
    out = cut(body, max_length)
    assert body.startswith(out)
    assert len(out) == expected_len
    assert segments(out) == expected_segments <= segment_budget(max_length)


@pytest.mark.parametrize(("max_length", "budget"), [(0, 1), (70, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3)])
def test_segment_budget(max_length: int, budget: int) -> None:
    assert segment_budget(max_length) == budget


@given(st.text(max_size=700), st.integers(min_value=1, max_value=700))
def test_a_cut_body_never_exceeds_its_budget(body: str, max_length: int) -> None:
    out = cut(body, max_length)
    assert body.startswith(out)
    assert len(out) <= max_length
    assert segments(out) <= segment_budget(max_length)
    if len(out) < min(len(body), max_length):  # cut for the budget: one more character would not fit
        assert segments(body[: len(out) + 1]) > segment_budget(max_length)


@pytest.mark.parametrize(
    ("body", "sent"),
    [
        ("Ação", "Acao"),
        ("promoção", "promocao"),
        ("Olá, você está convidado", "Ola, voce esta convidado"),
        ("É, Ç, ü, à, é, ñ stay", "É, Ç, ü, à, é, ñ stay"),  # already GSM 03.38
        ("Não – “sim”", 'Nao - "sim"'),
        ("São Paulo…", "Sao Paulo..."),
        ("ÃÕÂÊÎÔÛÁÍÓÚ ãõâêîôûáíóú", "AOAEIOUAIOU aoaeiouaiou"),
        ("Olá 😀", "Olá 😀"),  # still not GSM-7 after folding: sent unfolded, as UCS-2
        ("R$ 10,00 – 1ª parcela", "R$ 10,00 - 1a parcela"),
        ("Łódź", "Lodz"),
        ("\u00a0nbsp", " nbsp"),
        ("plain", "plain"),
    ],
)
def test_fold_body(body: str, sent: str) -> None:
    assert fold_body(body) == sent
    assert encoding_of(sent) == (UCS2 if sent == body and encoding_of(body) == UCS2 else GSM7)


def test_as_sent_keeps_unless_fold() -> None:
    assert as_sent("Ação", "keep") == "Ação"
    assert as_sent("Ação", "fold") == "Acao"


def test_folds_table_targets_are_gsm7() -> None:
    gsm = GSM7_BASIC | GSM7_EXTENSION
    for source, target in FOLDS.items():
        assert source not in gsm, source
        assert all(c in gsm for c in target), (source, target)


# Latin letters (Latin-1 Supplement, Latin Extended-A and Additional), ASCII, and the
# punctuation of Latin-1 and General Punctuation that Portuguese text meets.
def _latin_alphabet() -> list[str]:
    chars = [chr(c) for c in range(0x20, 0x7F)] + ["\n", "\r"]
    blocks = [(0xA0, 0x100), (0x100, 0x180), (0x1E00, 0x1F00), (0x2010, 0x2028), (0x2030, 0x205F)]
    for start, end in blocks:
        for code in range(start, end):
            c = chr(code)
            category = unicodedata.category(c)
            latin_letter = category.startswith("L") and "LATIN" in unicodedata.name(c, "")
            if latin_letter or category.startswith(("P", "N", "Zs")):
                chars.append(c)
    return chars


LATIN = _latin_alphabet()


def test_every_latin_character_folds_into_gsm7() -> None:
    gsm = GSM7_BASIC | GSM7_EXTENSION
    missing = [f"U+{ord(c):04X} {unicodedata.name(c, '?')}" for c in LATIN if not all(d in gsm for d in fold_char(c))]
    assert not missing, missing


@given(st.text(alphabet=st.sampled_from(LATIN), max_size=300))
def test_folded_latin_text_is_gsm7(body: str) -> None:
    assert encoding_of(fold_body(body)) == GSM7


@given(st.text(max_size=200))
def test_folding_is_idempotent(body: str) -> None:
    once = fold_body(body)
    assert fold_body(once) == once
    assert fold_text(fold_text(body)) == fold_text(body)


@given(st.text(max_size=200))
def test_folding_never_costs_more_segments(body: str) -> None:
    assert segments(fold_body(body)) <= segments(body) or encoding_of(body) == GSM7


@pytest.mark.parametrize(
    ("body", "kind", "accents", "sent"),
    [
        ("Ação já", "kannel", "keep", "Ação já"),
        ("Ação já", "kannel", "fold", "Acao ja"),  # á is not GSM 03.38 (à is)
        ("Olá é à", "wavy", "fold", "Ola é à"),  # é and à are GSM 03.38: they stay
        ("Ação já", "http", "keep", "Ação já"),
        ("Ação já", "tww", "keep", "Acao ja"),  # TWW takes printable ASCII whatever the setting
        ("Ação já", "tww", "fold", "Acao ja"),
        ("Promoção 😀", "smpp", "fold", "Promoção 😀"),  # still not GSM-7 once folded: unfolded
        ("Promoção 😀", "tww", "keep", "Promocao "),
        ("€ {x}", "tww", "keep", "EUR {x}"),
    ],
)
def test_outbound_text_is_what_each_kind_sends(body: str, kind: str, accents: str, sent: str) -> None:
    """SPEC §13: the one place that decides the body a connection sends (and so what is charged)."""
    assert outbound_text(body, kind=kind, accents=accents) == sent
