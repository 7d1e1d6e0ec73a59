"""GSM 03.38 as unpacked septets (one octet per septet, as SMPP's data_coding 0 carries them),
UTF-16BE for UCS-2, and the split of a long body into exactly `text.segments(body)` parts."""

from __future__ import annotations

from pombo.domain.text import (
    GSM7,
    GSM7_EXTENSION,
    GSM7_PART,
    GSM7_SINGLE,
    UCS2_PART,
    UCS2_SINGLE,
    encoding_of,
)

ESC = 0x1B
# the default alphabet in code order; ESC's own slot (0x1B) holds a placeholder never encoded
_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_EXTENSION = {"\f": 0x0A, "^": 0x14, "{": 0x28, "}": 0x29, "\\": 0x2F, "[": 0x3C, "~": 0x3D,
              "]": 0x3E, "|": 0x40, "€": 0x65}
_ENCODE: dict[str, bytes] = {c: bytes([i]) for i, c in enumerate(_TABLE) if i != ESC}
_ENCODE |= {c: bytes([ESC, code]) for c, code in _EXTENSION.items()}
_DECODE = {i: c for i, c in enumerate(_TABLE) if i != ESC}
_DECODE_EXT = {code: c for c, code in _EXTENSION.items()}
assert len(_TABLE) == 128 and set(_EXTENSION) == GSM7_EXTENSION


def encode(text: str) -> bytes:
    """GSM 03.38 septets, one per octet (extension characters as ESC + code); KeyError when a
    character is outside the alphabet (callers pick UCS-2 for such a body)."""
    return b"".join(_ENCODE[c] for c in text)


def decode(data: bytes) -> str:
    """Unpacked septets back to text; an unknown ESC pair reads as its base character (03.38)."""
    out: list[str] = []
    escaped = False
    for octet in data:
        septet = octet & 0x7F
        if escaped:
            out.append(_DECODE_EXT.get(septet) or _DECODE.get(septet, " "))
            escaped = False
        elif septet == ESC:
            escaped = True
        else:
            out.append(_DECODE[septet])
    return "".join(out)


def split(text: str) -> list[str]:
    """The body as the parts it is sent in: one when it fits a single segment, else greedy
    parts of 153 septets (GSM-7) or 67 UTF-16 units (UCS-2) that never cut an ESC pair or a
    surrogate pair; the same packing as text.segments, so len(split(t)) == segments(t)."""
    if encoding_of(text) == GSM7:
        widths = [2 if c in GSM7_EXTENSION else 1 for c in text]
        single, part = GSM7_SINGLE, GSM7_PART
    else:
        widths = [2 if ord(c) > 0xFFFF else 1 for c in text]
        single, part = UCS2_SINGLE, UCS2_PART
    if sum(widths) <= single:
        return [text]
    parts: list[str] = []
    start, used = 0, 0
    for i, width in enumerate(widths):
        if used + width > part:
            parts.append(text[start:i])
            start, used = i, 0
        used += width
    parts.append(text[start:])
    return parts


def payload(text: str, encoding: str) -> bytes:
    """The short_message octets of one part: septets for GSM-7, UTF-16BE for UCS-2."""
    return encode(text) if encoding == GSM7 else text.encode("utf-16-be")
