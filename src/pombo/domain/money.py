"""Exact money: amounts are integers of ten-thousandths (4 decimal places), never floats."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

SCALE = 10_000
MAX_AMOUNT = Decimal(2**63) / SCALE  # balances live in a signed 64-bit column
_QUANTUM = Decimal("0.0001")


class MoneyError(ValueError):
    """A value that is not an exact amount with at most 4 decimal places."""


def parse(value: object) -> int:
    """'12.5' / 12.5 / Decimal -> 125000 units; more than 4 decimals is an error."""
    if isinstance(value, bool):
        raise MoneyError(f"not an amount: {value!r}")
    if isinstance(value, int):
        return value * SCALE
    try:
        dec = Decimal(str(value).strip())
        if not dec.is_finite() or abs(dec) > MAX_AMOUNT:
            raise MoneyError(f"not an amount: {value!r}")
        if dec != dec.quantize(_QUANTUM):  # also catches 1e-999999999, which * SCALE underflows
            raise MoneyError(f"more than 4 decimal places: {value!r}")
        scaled = dec * SCALE
        if not -(2**63) <= scaled < 2**63:
            raise MoneyError(f"too large: {value!r}")
        if scaled != scaled.to_integral_value():
            raise MoneyError(f"more than 4 decimal places: {value!r}")
    except (ArithmeticError, ValueError) as exc:  # InvalidOperation, Overflow...
        if isinstance(exc, MoneyError):
            raise
        raise MoneyError(f"not an amount: {value!r}") from exc
    return int(scaled)


def fmt(units: int) -> str:
    """125000 -> '12.5000'."""
    return str((Decimal(units) / SCALE).quantize(_QUANTUM, rounding=ROUND_HALF_UP))
