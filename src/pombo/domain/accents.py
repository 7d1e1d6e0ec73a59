"""Folding Portuguese (and other Latin) text into the GSM 03.38 alphabet (SPEC §13).

Almost no Portuguese accent is in GSM 03.38 (`ã`, `õ`, `ç`, `á`, `ê`, `í`, `ó`, `ú`, `â`, `ô` are
not; `é`, `Ç`, `ü`, `à` are), so an ordinary accented message goes as UCS-2: 70 characters a
segment instead of 160. A customer with `accents: fold` has every character outside GSM 03.38
that has a plain Latin look-alike replaced by it before anything is counted, checked or sent.
Characters already in GSM 03.38 stay as they are. A body that still has a character outside
GSM 03.38 after folding (an emoji, a Greek word in lower case, a CJK character) is sent
unfolded, as UCS-2: folding only ever happens when it makes the whole body GSM-7.

How a character folds, in this order:
1. it is in the GSM 03.38 basic or extension table: kept;
2. it is in FOLDS below (typographic quotes, dashes, spaces, ligatures, Latin letters with no
   Unicode decomposition such as `đ`, `ł`, `ø`-like forms): the table's text;
3. its compatibility decomposition (NFKD) without combining marks is non-empty and all GSM
   03.38 (`ã` -> `a`, `ŝ` -> `s`, `ﬁ` -> `fi`, `²` -> `2`): that;
4. otherwise it is kept (and the body then stays UCS-2).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from pombo.domain.text import GSM7, GSM7_BASIC, GSM7_EXTENSION, encoding_of, to_ascii

KEEP = "keep"
FOLD = "fold"
ACCENT_MODES = (KEEP, FOLD)

# Look-alikes NFKD does not give (or gives outside GSM 03.38). Documented in docs and tested.
FOLDS: dict[str, str] = (
    dict.fromkeys("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000", " ")
    | dict.fromkeys("\t\v", " ")
    | dict.fromkeys("‘’‚‛′‵´`", "'")
    | dict.fromkeys("“”„‟″‶«»〃", '"')
    | dict.fromkeys("‐‑‒–—―−⁃", "-")
    | dict.fromkeys("•‧∙·⁌⁍", ".")
    | dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff\u00ad", "")
    | {"…": "...", "‹": "<", "›": ">", "⁄": "/", "⁅": "[", "⁆": "]", "‖": "||", "†": "+", "‡": "+"}
    | {"‰": "%", "‱": "%", "⁎": "*", "⁑": "*", "⁕": "*", "※": "*", "⁏": ";", "⁓": "~", "‽": "?!"}
    | {"¦": "|", "¨": '"', "¯": "-", "¸": ",", "°": "o", "º": "o", "ª": "a", "©": "(C)", "®": "(R)"}
    | {"™": "TM", "×": "x", "÷": "/", "¬": "-", "¶": "P", "¹": "1", "²": "2", "³": "3"}
    | {"¼": "1/4", "½": "1/2", "¾": "3/4", "¢": "c", "µ": "u"}
    | {"Đ": "D", "đ": "d", "Ð": "D", "ð": "d", "Ħ": "H", "ħ": "h", "ı": "i", "ĸ": "k"}
    | {"Ŀ": "L", "ŀ": "l", "Ł": "L", "ł": "l", "ŉ": "'n", "Ŋ": "N", "ŋ": "n", "Œ": "OE", "œ": "oe"}
    | {"Ŧ": "T", "ŧ": "t", "Þ": "Th", "þ": "th", "ſ": "s", "Ĳ": "IJ", "ĳ": "ij"}
    | {"ƒ": "f", "Ɨ": "I", "ƚ": "l", "ǝ": "e", "Ə": "E", "ə": "e", "ȷ": "j"}
    | {"ẚ": "a", "ẜ": "s", "ẝ": "s", "ẞ": "SS", "ẟ": "d", "Ỻ": "LL", "ỻ": "ll", "Ỽ": "V", "ỽ": "v"}
    | {"Ỿ": "Y", "ỿ": "y", "‣": "-", "‴": "'''", "‷": "'''", "‸": "^", "‿": "_", "⁀": "-", "⁁": "/"}
    | {"⁂": "*", "⁊": "&", "⁋": "P", "⁐": "-", "⁔": "_", "⁗": "''''", "⁜": "+"}
    | dict.fromkeys("⁖⁘⁙⁚⁛⁝⁞", ":")
)
_GSM = GSM7_BASIC | GSM7_EXTENSION


@lru_cache(maxsize=4096)
def fold_char(c: str) -> str:
    """The GSM 03.38 look-alike of one character, or the character itself when it has none."""
    if c in _GSM:
        return c
    if c in FOLDS:
        return FOLDS[c]
    plain = "".join(d for d in unicodedata.normalize("NFKD", c) if not unicodedata.combining(d))
    if plain and all(d in _GSM for d in plain):
        return plain
    return c


def fold_text(text: str) -> str:
    """Every character replaced by its look-alike (characters with none are kept)."""
    if all(c in _GSM for c in text):
        return text
    return "".join(fold_char(c) for c in text)


def fold_body(text: str) -> str:
    """The body a `fold` customer sends: folded when that makes it GSM-7, else as it came."""
    folded = fold_text(text)
    return folded if encoding_of(folded) == GSM7 else text


def as_sent(text: str, mode: str) -> str:
    """The body after the customer's `accents` setting (`keep` or `fold`)."""
    return fold_body(text) if mode == FOLD else text


# Connection kinds whose provider takes printable ASCII only: what they send is the body with
# accents removed, so that is what is counted and charged (SPEC §13: TWW is counted as GSM-7).
ASCII_KINDS = frozenset({"tww"})


def outbound_text(body: str, *, kind: str, accents: str) -> str:
    """What a connection of this kind will actually send for this body and accents setting.

    The one place that decides it: the log's text, encoding and segments, and the debit, are
    computed on this, before the accept transaction (SPEC §13)."""
    body = as_sent(body, accents)
    return to_ascii(body) if kind in ASCII_KINDS else body
