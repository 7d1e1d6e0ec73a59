"""Message bodies: GSM-7 / UCS-2 encoding, segment count, cutting, folding, ASCII fallback."""

from __future__ import annotations

import unicodedata

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# GSM 03.38 default alphabet, in table order. ESC (0x1B) is left out on purpose: it only
# introduces the extension table and is not a character a body can carry.
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: each is sent as ESC + code, so it costs two septets.
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")

GSM7_ALL: frozenset[str] = GSM7_BASIC | GSM7_EXTENSION
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

# Typographic characters NFKD leaves alone (or would drop), mapped to their plain look-alikes.
_ASCII_TABLE = str.maketrans(
    dict.fromkeys("\r\n\t\u00a0\u202f", " ")
    | dict.fromkeys("‘’‚‛´", "'")
    | dict.fromkeys("“”„‟«»", '"')
    | dict.fromkeys("‐‑‒–—―−•", "-")
    | {"…": "...", "€": "EUR", "º": "o", "ª": "a", "ß": "ss", "Æ": "AE", "æ": "ae"}
    | {"Œ": "OE", "œ": "oe", "Ø": "O", "ø": "o"}
)


def encoding_of(text: str) -> str:
    """'GSM-7' when every character is in the GSM 03.38 tables, else 'UCS-2'."""
    if GSM7_ALL.issuperset(text):
        return GSM7
    return UCS2


def segments(text: str) -> int:
    """How many SMS parts the body takes (an empty body still takes one)."""
    if 2 * len(text) <= UCS2_SINGLE:
        return 1  # two units a character at most: one part whatever the encoding
    if encoding_of(text) == GSM7:
        widths = [2 if c in GSM7_EXTENSION else 1 for c in text]
        return _parts(widths, single=GSM7_SINGLE, part=GSM7_PART)
    # UTF-16 code units: a character outside the BMP (most emoji) is a surrogate pair.
    widths = [2 if ord(c) > 0xFFFF else 1 for c in text]
    return _parts(widths, single=UCS2_SINGLE, part=UCS2_PART)


def _parts(widths: list[int], *, single: int, part: int) -> int:
    """Pack character widths into parts, never splitting one character across two."""
    if sum(widths) <= single:
        return 1
    # Greedy packing: an ESC+code pair or a surrogate pair cannot straddle a part boundary,
    # so this can exceed ceil(total / part) but never falls below it.
    count, used = 1, 0
    for width in widths:
        if used + width > part:
            count, used = count + 1, 0
        used += width
    return count


def segment_budget(max_length: int) -> int:
    """The parts that `max_length` GSM-7 characters take (one at 160: SPEC §13)."""
    return _parts([1] * max(max_length, 0), single=GSM7_SINGLE, part=GSM7_PART)


def cut(text: str, max_length: int) -> str:
    """`cuttext` (SPEC §13): the longest prefix with at most `max_length` characters that also
    fits in the parts `max_length` GSM-7 characters take, cutting whole characters only (an
    extension character's ESC pair and an emoji's surrogate pair stay whole: both are one
    code point here). With the default 160, the result always fits one segment."""
    prefix = text[: max(max_length, 0)]
    budget = segment_budget(max_length)
    if segments(prefix) <= budget:
        return prefix
    # segments() never decreases as a prefix grows, so search for the longest that fits
    low, high = 0, len(prefix)  # text[:low] fits; text[:high] does not
    while high - low > 1:
        middle = (low + high) // 2
        if segments(prefix[:middle]) <= budget:
            low = middle
        else:
            high = middle
    return prefix[:low]


def strip_accents(text: str) -> str:
    """'Ação É' -> 'Acao E': compatibility-decompose and drop the combining marks."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold(text: str) -> str:
    """Case-folded and accent-free, for comparisons that ignore both."""
    # Decompose first: casefold() can leave marks or compatibility forms NFKD would undo.
    return strip_accents(text).casefold()


def to_ascii(text: str) -> str:
    """Printable ASCII only, for providers that reject anything else (TWW)."""
    text = text.replace("\r\n", " ").translate(_ASCII_TABLE)
    return "".join(c for c in strip_accents(text) if " " <= c <= "~")
