"""Destination numbers: Brazilian normalisation and the international rule (SPEC §5)."""

from __future__ import annotations

_ASCII_DIGITS = frozenset("0123456789")
_INTERNATIONAL_SEPARATORS = frozenset("-.()")

BRAZIL_DDDS: frozenset[str] = frozenset(
    [str(n) for n in range(11, 20)]
    + ["21", "22", "24", "27", "28"]
    + ["31", "32", "33", "34", "35", "37", "38"]
    + [str(n) for n in range(41, 50)]
    + ["51", "53", "54", "55"]
    + [str(n) for n in range(61, 70)]
    + ["71", "73", "74", "75", "77", "79"]
    + [str(n) for n in range(81, 90)]
    + [str(n) for n in range(91, 100)]
)

_MOBILE_8_FIRST = frozenset("6789")


def normalize(raw: str, *, setbrasil: bool) -> str | None:
    """Return the number to send to, or None when it is not valid (code 240)."""
    if setbrasil:
        return _normalize_brazil(raw)
    return _normalize_international(raw)


def _normalize_brazil(raw: str) -> str | None:
    """'0 15 11 98888-7777', '+55 (11) 8888-7777', … -> '5511988887777'."""
    # Only ASCII digits: str.isdigit() would also take '²' or Arabic-Indic digits.
    digits = "".join(c for c in raw if c in _ASCII_DIGITS)
    national = _drop_country_code(_drop_trunk_prefix(digits))
    ddd, subscriber = national[:2], national[2:]
    if ddd not in BRAZIL_DDDS:
        return None
    mobile = _mobile_subscriber(subscriber)
    if mobile is None:
        return None
    return "55" + ddd + mobile


def _drop_trunk_prefix(digits: str) -> str:
    """Drop the long-distance '0', with its two-digit carrier code when one is dialled."""
    if not digits.startswith("0"):
        return digits
    # 0 + carrier (2) + DDD (2) + subscriber (8 or 9) = 13 or 14 digits.
    if len(digits) in (13, 14):
        return digits[3:]
    return digits[1:]


def _drop_country_code(digits: str) -> str:
    """Drop a leading '55' only when it is the country code, not DDD 55 itself."""
    # 55 + DDD + 8 or 9 digits; 'DDD 55 + 9 digits' has 11 and keeps its 55.
    if digits.startswith("55") and len(digits) in (12, 13):
        return digits[2:]
    return digits


def _mobile_subscriber(subscriber: str) -> str | None:
    """Nine-digit mobile subscriber, or None for landlines and anything else."""
    if len(subscriber) == 9 and subscriber.startswith("9"):
        return subscriber
    # Old eight-digit mobiles (6-9…) gained the ninth digit 9; 2-5… are landlines.
    if len(subscriber) == 8 and subscriber[0] in _MOBILE_8_FIRST:
        return "9" + subscriber
    return None


def _normalize_international(raw: str) -> str | None:
    """'+44 (20) 7946-0958' -> '442079460958'; taken as given once the dressing is gone."""
    # Any white space counts as a space: form posts often carry a stray tab or newline.
    number = "".join(c for c in raw if not c.isspace() and c not in _INTERNATIONAL_SEPARATORS)
    number = number.removeprefix("+")
    number = number.removeprefix("00")
    if not 8 <= len(number) <= 15:
        return None
    if not all(c in _ASCII_DIGITS for c in number) or number.startswith("0"):
        return None
    return number


def number_forms(raw: str) -> list[str]:
    """The ways a number typed by an operator may be stored (normalised or as given)."""
    forms = [n for n in (normalize(raw, setbrasil=True), normalize(raw, setbrasil=False)) if n]
    digits = "".join(ch for ch in raw if ch.isdigit())
    return list(dict.fromkeys([*forms, digits]))
