"""Parsing non-negative integers from request parameters."""

from __future__ import annotations

MAX_DIGITS = 18  # always fits a signed 64-bit column


def uint(value: str | None) -> int | None:
    """' 42 ' -> 42. None for anything but ASCII digits (so no '²' or '٣'), or for more than
    18 significant digits (beyond any id we store, and short of Python's int() limit)."""
    if value is None:
        return None
    value = value.strip()
    if not value or not value.isascii() or not value.isdigit():
        return None
    significant = value.lstrip("0")
    if len(significant) > MAX_DIGITS:
        return None
    return int(significant or "0")
