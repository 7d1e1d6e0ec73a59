"""The forms one upstream message id takes in delivery receipts (SPEC §12: "whatever its case or
hex/decimal form"): keys that compare equal across them, and the spellings to look up."""

from __future__ import annotations

HEX = frozenset("0123456789abcdef")


def id_keys(upstream_id: str) -> tuple[str, ...]:
    """Keys of one id: as written (any case, leading zeros dropped), and its number read as hex
    and as decimal, whichever apply. Two ids name the same message when a key is shared."""
    text = upstream_id.strip().lower()
    keys = [f"s:{text.lstrip('0') or '0'}"]
    if text and HEX.issuperset(text):
        keys.append(f"n:{int(text, 16)}")
        if text.isdigit():
            keys.append(f"n:{int(text)}")
    return tuple(dict.fromkeys(keys))


def id_spellings(upstream_id: str) -> tuple[str, ...]:
    """How the SMSC may have written this id in its submit_sm_resp: as given, upper and lower
    case, and the same number in the other base (hex upper/lower for a decimal id, decimal for a
    hex one). Leading zeros the receipt dropped cannot be guessed."""
    text = upstream_id.strip()
    out = [text, text.upper(), text.lower()]
    low = text.lower()
    if text and HEX.issuperset(low):
        out.append(str(int(low, 16)))
        if low.isdigit():
            number = int(low)
            out += [f"{number:X}", f"{number:x}"]
    return tuple(s for s in dict.fromkeys(out) if s)
