"""SPEC §7: the bank-impersonation filter, approved models and the 270 decision."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pombo.domain.textfilter import (
    DEFAULT_PATTERNS,
    Models,
    TextFilter,
    is_blocked,
    normalize_words,
)

DEFAULT_FILTER = TextFilter(DEFAULT_PATTERNS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Itaú!", ("itau",)),
        ("I T A U", ("itau",)),
        ("I.T.A.U", ("itau",)),
        ("1TAU", ("itau",)),
        ("b r a d e s c o", ("bradesco",)),
        ("aceita um", ("aceita", "um")),
        ("C@RT4O BL0QUE4D0", ("cartao", "bloqueado")),
        ("$ANTANDER", ("santander",)),
        ("3", ("e",)),
        ("c6 bank", ("c", "bank")),
        ("o banco e a caixa", ("o", "banco", "ea", "caixa")),
        ("x 2 y", ("xy",)),
        ("", ()),
        ("123 456", ("ie", "as")),
        ("!!!", ()),
    ],
)
def test_normalize_words(text: str, expected: tuple[str, ...]) -> None:
    assert normalize_words(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Itaú!",
        "1TAU",
        "I.T.A.U",
        "I T A U",
        "Seu Itaú: cartão bloqueado",
        "b r a d e s c o",
        "BRADESCO informa",
        "Banco do Brasil: acesse já",
        "banco   do\nbrasil",
        "Santander",
        "Caixa Econômica Federal",
        "NUBANK: compra aprovada",
        "Seu app do Banco Inter",
        "Sicoob",
        "Sicredi",
        "Banrisul",
        "Fale com o C6 Bank",
        "C6 Bank",
        "Banco PAN",
        "Mercado Pago",
        "PicPay",
        "PagBank",
        "FEBRABAN alerta",
        "Pague via PIX",
        "pix",
        "sua chave pix",
        "Cartão bloqueado, ligue",
        "Sua conta foi bloqueada",
        "Conta bloqueada!",
        "Informe o token de segurança",
        "Atualize seus dados aqui",
        "Central de Segurança",
        "Compra não reconhecida de R$ 1.299,00",
        "C4RT40 BL0QU34D0",
        "P1X",
    ],
)
def test_default_list_blocks(text: str) -> None:
    assert DEFAULT_FILTER.matches(text)


@pytest.mark.parametrize(
    "text",
    [
        "aceita um cafe?",
        "internet fibra 500 mega",
        "Inter x Gremio hoje",
        "sua caixa postal esta cheia",
        "nova safra de cafe",
        "Seu codigo de acesso e 1234",
        "pixel art",
        "Pixar",
        "itauna",
        "bradescos",
        "cartao enviado",
        "conta paga",
        "mercado livre",
        "",
        "Olá, sua consulta é amanhã às 14h.",
    ],
)
def test_default_list_lets_through(text: str) -> None:
    assert not DEFAULT_FILTER.matches(text)


@pytest.mark.parametrize(
    ("patterns", "text", "expected"),
    [
        (["itau"], "Itaú!", True),
        (["itau"], "1TAU", True),
        (["itau"], "aceita um", False),
        (["Itaú"], "ITAU", True),
        (["I T A U"], "itau", True),
        (["cartao bloqueado"], "bloqueado cartao", False),
        (["cartao bloqueado"], "cartao foi bloqueado", False),
        (["cartao bloqueado"], "seu CARTÃO-BLOQUEADO", True),
        (["a b c"], "abc", True),
        ([], "Itaú", False),
        (["", "!!!"], "anything", False),
        (["banco", "banco do brasil"], "banco", True),
    ],
)
def test_filter_custom_patterns(patterns: list[str], text: str, expected: bool) -> None:
    assert TextFilter(patterns).matches(text) is expected


@pytest.mark.parametrize(
    ("model", "text", "expected"),
    [
        ("Seu codigo {code} do Banco Exemplo", "Seu codigo 1234 do Banco Exemplo", True),
        ("Seu codigo {code} do Banco Exemplo", "SEU CÓDIGO 1234 DO BANCO EXEMPLO", True),
        ("Seu código {code} do Banco Exemplo", "seu codigo 1234 do banco exemplo", True),
        ("Seu codigo {code} do Banco Exemplo", "  Seu  codigo\n1234\t do Banco Exemplo ", True),
        ("Seu codigo {code} do Banco Exemplo", "Seu codigo 1 do Banco Exemplo", True),
        (
            "Seu codigo {code} do Banco Exemplo",
            "Seu codigo " + "x" * 60 + " do Banco Exemplo",
            True,
        ),
        (
            "Seu codigo {code} do Banco Exemplo",
            "Seu codigo " + "x" * 61 + " do Banco Exemplo",
            False,
        ),
        ("Seu codigo {code} do Banco Exemplo", "Seu codigo  do Banco Exemplo", False),
        ("Seu codigo {code} do Banco Exemplo", "Seu codigo do Banco Exemplo", False),
        ("Seu codigo {code} do Banco Exemplo", "Seu codigo 1234 do Banco Exemplo!", False),
        ("Seu codigo {code} do Banco Exemplo", "Oi! Seu codigo 1234 do Banco Exemplo", False),
        ("Seu codigo {code} do Banco Exemplo", "Seu codigo 12 34 do Banco Exemplo", True),
        ("{a}{b}", "xy", True),
        ("{a}{b}", "x", False),
        ("{a}{b}", "x" * 120, True),
        ("{a}{b}", "x" * 121, False),
        ("Ola {nome}, pague {valor} ate {data}", "Olá Ana, pague R$ 10,00 até 05/06", True),
        ("Ola {nome}, pague {valor} ate {data}", "Olá Ana, pague R$ 10,00 ate", False),
        ("Sem placeholder", "sem placeholder", True),
        ("Sem placeholder", "sem placeholder nenhum", False),
        # regex metacharacters are literal
        ("Valor: R$ {v} (Banco.*)", "Valor: R$ 10 (Banco.*)", True),
        ("Valor: R$ {v} (Banco.*)", "Valor: R$ 10 (BancoXYZ)", False),
        ("a.b {x} [c]+", "a.b 1 [c]+", True),
        ("a.b {x} [c]+", "aXb 1 cc", False),
        ("^{x}$", "^abc$", True),
        ("^{x}$", "abc", False),
        ("\\d+ {x}", "\\d+ 1", True),
        ("\\d+ {x}", "12 1", False),
    ],
)
def test_models(model: str, text: str, expected: bool) -> None:
    assert Models([model]).matches(text) is expected


def test_models_any_of_several() -> None:
    models = Models(["Codigo {c}", "Pix recebido de {nome}"])
    assert models.matches("PIX RECEBIDO DE Maria")
    assert models.matches("codigo 99")
    assert not models.matches("Pix enviado para Maria")
    assert not Models([]).matches("anything")


def test_models_do_not_backtrack_exponentially() -> None:
    models = Models(["{a} {b} {c} {d} {e} {f} Z"])
    body = "a " * 200
    started = time.perf_counter()
    assert not models.matches(body)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("text", "models", "expected"),
    [
        ("Seu Itaú: cartão bloqueado", [], True),
        ("Seu Itaú: cartão bloqueado", ["Seu {banco}: cartao bloqueado"], False),
        ("Pix recebido de Maria", ["Pix recebido de {nome}"], False),
        ("Pix recebido de Maria e cartão bloqueado", ["Pix recebido de {nome}"], False),
        ("Pix enviado", ["Pix recebido de {nome}"], True),
        ("Sua consulta é amanhã", [], False),
        ("Sua consulta é amanhã", ["Outro {x}"], False),
    ],
)
def test_is_blocked(text: str, models: list[str], expected: bool) -> None:
    assert is_blocked(text, DEFAULT_FILTER, Models(models)) is expected


ACCENTED = {"a": "áàâãä", "e": "éèêë", "i": "íìîï", "o": "óòôõö", "u": "úùûü", "c": "ç", "n": "ñ"}
plain_text = st.text(alphabet="abcdefghijklmnopqrstuvwxyz 0123456789.,!-:", max_size=60)
pattern_words = st.sampled_from(DEFAULT_PATTERNS)


def _accentify(text: str, picks: list[int]) -> str:
    """Swap letters for accented variants, choosing variants from `picks`."""
    out = []
    for i, c in enumerate(text):
        variants = ACCENTED.get(c)
        out.append(variants[picks[i % len(picks)] % len(variants)] if variants else c)
    return "".join(out)


@given(
    st.one_of(plain_text, st.tuples(plain_text, pattern_words, plain_text).map(" ".join)),
    st.lists(st.integers(0, 4), min_size=1, max_size=8),
)
def test_filter_is_case_and_accent_blind(text: str, picks: list[int]) -> None:
    expected = DEFAULT_FILTER.matches(text)
    assert DEFAULT_FILTER.matches(text.upper()) is expected
    assert DEFAULT_FILTER.matches(text.title()) is expected
    assert DEFAULT_FILTER.matches(_accentify(text, picks)) is expected
    assert DEFAULT_FILTER.matches(_accentify(text, picks).upper()) is expected


@given(st.tuples(plain_text, pattern_words, plain_text).map(lambda t: f"{t[0]} {t[1]} {t[2]}"))
def test_filter_finds_a_pattern_between_separators(text: str) -> None:
    padded = f"! {text} !"
    assert DEFAULT_FILTER.matches(padded)


@given(plain_text, st.lists(st.integers(0, 4), min_size=1, max_size=8))
def test_models_are_case_and_accent_blind(text: str, picks: list[int]) -> None:
    models = Models([text + " {x}"])
    assert models.matches(_accentify(text, picks).upper() + " y")
