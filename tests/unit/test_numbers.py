"""SPEC §5: Brazilian normalisation and the international rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pombo.domain.numbers import BRAZIL_DDDS, normalize

SPEC_DDDS = (
    [*list(range(11, 20)), 21, 22, 24, 27, 28, 31, 32, 33, 34, 35, 37, 38, *list(range(41, 50)), 51, 53, 54, 55, *list(range(61, 70)), 71, 73, 74, 75, 77, 79, *list(range(81, 90)), *list(range(91, 100))]
)
BAD_DDDS = sorted(set(range(10, 100)) - set(SPEC_DDDS))


def test_brazil_ddds_are_the_67_of_the_spec() -> None:
    assert len(BRAZIL_DDDS) == 67
    assert {str(n) for n in SPEC_DDDS} == BRAZIL_DDDS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # DDD + 9-digit mobile, dressed in every usual way
        ("11988887777", "5511988887777"),
        ("(11) 98888-7777", "5511988887777"),
        ("11 98888 7777", "5511988887777"),
        ("11.98888.7777", "5511988887777"),
        # 0DDD…
        ("011988887777", "5511988887777"),
        ("0 11 98888-7777", "5511988887777"),
        # 55DDD… and +55 (DDD) …
        ("5511988887777", "5511988887777"),
        ("+55 (11) 98888-7777", "5511988887777"),
        ("+55 11 98888 7777", "5511988887777"),
        ("+5511988887777", "5511988887777"),
        # carrier codes after the trunk 0
        ("0 15 11 98888 7777", "5511988887777"),
        ("015 11 8888 7777", "5511988887777"),
        ("0 21 21 99999 0000", "5521999990000"),
        ("0xx41 98888-7777", "5541988887777"),
        # 8-digit mobiles gain the ninth digit
        ("1188887777", "5511988887777"),
        ("11 6888-7777", "5511968887777"),
        ("11 7888-7777", "5511978887777"),
        ("11 9888-7777", "5511998887777"),
        ("551188887777", "5511988887777"),
        ("01188887777", "5511988887777"),
        # DDD 55 (Santa Maria, RS) is not the country code
        ("55991234567", "5555991234567"),
        ("5555991234567", "5555991234567"),
        ("(55) 99123-4567", "5555991234567"),
        ("5591234567", "5555991234567"),
        ("555591234567", "5555991234567"),
        ("055991234567", "5555991234567"),
        ("+55 55 99123-4567", "5555991234567"),
        # letters and other characters are simply dropped
        ("tel: 11 98888-7777", "5511988887777"),
        ("11/98888_7777#", "5511988887777"),
        # the edges of the DDD list
        ("19988887777", "5519988887777"),
        ("99988887777", "5599988887777"),
    ],
)
def test_brazil_valid(raw: str, expected: str) -> None:
    assert normalize(raw, setbrasil=True) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "abc",
        "+",
        # landlines: 8 digits starting 2-5
        "1122223333",
        "11 3333-4444",
        "1144445555",
        "1155556666",
        "+55 11 3333-4444",
        "011 3333 4444",
        # 9 digits not starting with 9
        "11888887777",
        "11188887777",
        # 8 digits starting 0 or 1
        "1108887777",
        "1118887777",
        # too short / too long
        "988887777",
        "11 9888 777",
        "119888877777",
        "5511 9888877777",
        "00000000000",
        "1",
        "11",
        # the trunk 0 alone is not a DDD
        "0988887777",
    ],
)
def test_brazil_invalid(raw: str) -> None:
    assert normalize(raw, setbrasil=True) is None


@pytest.mark.parametrize("ddd", BAD_DDDS)
def test_brazil_bad_ddds(ddd: int) -> None:
    assert normalize(f"{ddd}988887777", setbrasil=True) is None
    assert normalize(f"55{ddd}988887777", setbrasil=True) is None


@pytest.mark.parametrize("ddd", SPEC_DDDS)
def test_brazil_every_ddd(ddd: int) -> None:
    assert normalize(f"{ddd}988887777", setbrasil=True) == f"55{ddd}988887777"
    assert normalize(f"0{ddd}88887777", setbrasil=True) == f"55{ddd}988887777"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+44 20 7946 0958", "442079460958"),
        ("0044 (20) 7946-0958", "442079460958"),
        ("+1.212.555.0100", "12125550100"),
        ("12345678", "12345678"),
        ("123456789012345", "123456789012345"),
        ("5511988887777", "5511988887777"),
        ("11988887777", "11988887777"),
        ("1122223333", "1122223333"),
        ("+351 912 345 678", "351912345678"),
        ("\t+44 20 7946 0958\n", "442079460958"),
    ],
)
def test_international_valid(raw: str, expected: str) -> None:
    assert normalize(raw, setbrasil=False) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "+",
        "00",
        "1234567",
        "1234567890123456",
        "011988887777",
        "+0 11 98888 7777",
        "000 44 20 7946 0958",
        "44 20 7946 0958 x",
        "+44/20/7946/0958",
        "44+2079460958",
        "++442079460958",
        "+44 20 7946 O958",
        "٤٤٢٠٧٩٤٦٠٩٥٨",
    ],
)
def test_international_invalid(raw: str) -> None:
    assert normalize(raw, setbrasil=False) is None


numberish = st.text(alphabet="0123456789 +-.()x", max_size=20)
brazil_mobiles = st.builds(
    lambda ddd, body, prefix, style: style.format(p=prefix, d=ddd, n=body),
    st.sampled_from(sorted(BRAZIL_DDDS)),
    st.from_regex(r"9[0-9]{8}|[6-9][0-9]{7}", fullmatch=True),
    st.sampled_from(["", "0", "55", "+55 ", "0 15 ", "0 41 "]),
    st.sampled_from(["{p}{d}{n}", "{p}({d}) {n}", "{p} {d} {n}"]),
)


@given(st.one_of(numberish, brazil_mobiles))
def test_brazil_result_shape_and_idempotence(raw: str) -> None:
    result = normalize(raw, setbrasil=True)
    if result is None:
        return
    assert len(result) == 13
    assert result.isdigit()
    assert result.startswith("55")
    assert result[2:4] in BRAZIL_DDDS
    assert result[4] == "9"
    assert normalize(result, setbrasil=True) == result


@given(brazil_mobiles)
def test_brazil_mobiles_always_valid(raw: str) -> None:
    assert normalize(raw, setbrasil=True) is not None


@given(numberish)
def test_international_idempotent(raw: str) -> None:
    result = normalize(raw, setbrasil=False)
    if result is None:
        return
    assert 8 <= len(result) <= 15
    assert result.isdigit()
    assert not result.startswith("0")
    assert normalize(result, setbrasil=False) == result
