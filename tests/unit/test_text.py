"""GSM-7 / UCS-2 encoding, segments, cutting, folding and the ASCII fallback."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pombo.domain.text import (
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    UCS2,
    cut,
    encoding_of,
    fold,
    segments,
    to_ascii,
)

EMOJI = "\U0001f600"


def test_gsm_tables_have_their_standard_sizes() -> None:
    # 128 positions minus ESC; 10 extension characters including form feed.
    assert len(GSM7_BASIC) == 127
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", GSM7),
        ("Hello world 123", GSM7),
        ("@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà", GSM7),
        ("line\nbreak\rreturn", GSM7),
        ("{}[]~^|\\€\f", GSM7),
        ("Olá", UCS2),
        ("ação", UCS2),
        ("preço", UCS2),
        ("você", UCS2),
        ("Ç", GSM7),
        ("ç", UCS2),
        ("`", UCS2),
        ("\t", UCS2),
        ("\x1b", UCS2),
        ("“quoted”", UCS2),
        (EMOJI, UCS2),
    ],
)
def test_encoding_of(text: str, expected: str) -> None:
    assert encoding_of(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 1),
        ("a", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("a" * 459, 3),
        ("a" * 460, 4),
        # extension characters count two septets
        ("€" * 80, 1),
        ("€" * 81, 2),
        ("a" * 159 + "[", 2),
        ("a" * 158 + "[", 1),
        # 153 is odd, so a part holds at most 76 extension characters
        ("{" * 152, 2),
        ("{" * 153, 3),
        # an ESC pair is never split: 152 + 2 does not fit in 153
        ("a" * 152 + "{" + "a" * 152, 3),
        ("a" * 151 + "{" + "a" * 153, 2),
        # UCS-2
        ("ç" * 70, 1),
        ("ç" * 71, 2),
        ("ç" * 134, 2),
        ("ç" * 135, 3),
        ("ç" + "a" * 69, 1),
        ("ç" + "a" * 70, 2),
        # emoji are surrogate pairs: two UTF-16 units each
        (EMOJI * 35, 1),
        (EMOJI * 36, 2),
        # 67 is odd, so a part holds at most 33 emoji
        (EMOJI * 66, 2),
        (EMOJI * 67, 3),
        ("a" * 69 + EMOJI, 2),
        # a surrogate pair is never split: 66 + 2 does not fit in 67
        ("ç" * 66 + EMOJI + "ç" * 66, 3),
    ],
)
def test_segments(text: str, expected: int) -> None:
    assert segments(text) == expected


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("hello", 3, "hel"),
        ("hello", 5, "hello"),
        ("hello", 10, "hello"),
        ("hello", 0, ""),
        ("hello", -1, ""),
        ("ação", 2, "aç"),
        (EMOJI * 3, 2, EMOJI * 2),
    ],
)
def test_cut(text: str, limit: int, expected: str) -> None:
    assert cut(text, limit) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Itaú", "itau"),
        ("AÇÃO", "acao"),
        ("Straße", "strasse"),
        ("İstanbul", "istanbul"),
        ("ﬁm", "fim"),
    ],
)
def test_fold(text: str, expected: str) -> None:
    assert fold(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain ascii ~!", "plain ascii ~!"),
        ("ação", "acao"),
        ("Órgão Público É", "Orgao Publico E"),
        ("ç Ç ñ ü", "c C n u"),
        ("‘single’ “double” «angle»", '\'single\' "double" "angle"'),
        ("a – b — c", "a - b - c"),
        ("wait…", "wait..."),
        ("a\u00a0b", "a b"),
        ("10€", "10EUR"),
        ("nº 5, 1ª vez", "no 5, 1a vez"),
        ("line1\r\nline2\nline3\rline4\tend", "line1 line2 line3 line4 end"),
        ("smile " + EMOJI, "smile "),
        ("日本", ""),
        ("bell\x07", "bell"),
        ("Straße", "Strasse"),
    ],
)
def test_to_ascii(text: str, expected: str) -> None:
    assert to_ascii(text) == expected


@given(st.text())
def test_to_ascii_is_printable_ascii(text: str) -> None:
    assert all(" " <= c <= "~" for c in to_ascii(text))


@given(st.text())
def test_fold_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)


gsm_text = st.text(alphabet=st.sampled_from(sorted(GSM7_BASIC | GSM7_EXTENSION)), max_size=700)


@given(gsm_text)
def test_gsm_segments_never_undercount(text: str) -> None:
    septets = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
    parts = segments(text)
    if septets <= 160:
        assert parts == 1
    else:
        assert parts >= math.ceil(septets / 153)
        assert parts <= math.ceil(septets / 152)


@given(st.text(max_size=300).map(lambda t: "ç" + t))
def test_ucs2_segments_never_undercount(text: str) -> None:
    units = len(text.encode("utf-16-le")) // 2
    parts = segments(text)
    if units <= 70:
        assert parts == 1
    else:
        assert parts >= math.ceil(units / 67)
        assert parts <= math.ceil(units / 66)


def _segments_by_definition(text: str) -> int:
    """Every character's width packed into parts, as SPEC §13 counts them (no short cuts)."""
    gsm = all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)
    if gsm:
        widths, single, part = [2 if c in GSM7_EXTENSION else 1 for c in text], 160, 153
    else:
        widths, single, part = [2 if ord(c) > 0xFFFF else 1 for c in text], 70, 67
    if sum(widths) <= single:
        return 1
    count, used = 1, 0
    for width in widths:
        if used + width > part:
            count, used = count + 1, 0
        used += width
    return count


@given(st.text(alphabet=st.sampled_from(["a", "€", "{", "ç", "é", "ã", "😀", "中", " "]), max_size=200))
def test_segments_and_encoding_are_the_definition(text: str) -> None:
    assert segments(text) == _segments_by_definition(text)
    assert (encoding_of(text) == "GSM-7") == all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)
