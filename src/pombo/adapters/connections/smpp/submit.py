"""What one message becomes on the wire: addresses with TON/NPI, data_coding, and the parts
with their concatenation UDH (SPEC §12)."""

from __future__ import annotations

from pombo.adapters.connections.smpp import pdu
from pombo.domain import gsm7
from pombo.domain.text import GSM7, encoding_of

ESM_UDHI = 0x40  # short_message starts with a user data header
CODING_GSM7, CODING_UCS2 = 0, 8


def source_address(sender: str) -> tuple[str, int, int]:
    """(source_addr, TON, NPI): letters -> 5/0 (alphanumeric); up to 6 digits -> 3/0 (short
    code); more digits -> 1/1 (international, E.164); nothing -> empty with 0/0."""
    value = sender.strip()
    digits = value[1:] if value.startswith("+") else value
    if not value:
        return "", 0, 0
    if not digits.isdigit() or not digits.isascii():
        return value[:20], 5, 0
    if len(digits) <= 6:
        return digits, 3, 0
    return digits[:20], 1, 1


def parts(*, text: str, dest: str, sender: str, dest_ton: int, dest_npi: int, ref: int) -> list[pdu.Submit]:
    """One submit_sm per segment: exactly text.segments(text) of them; a long body's parts
    carry the 8-bit-reference concatenation UDH (05 00 03 ref total seq) and esm_class 0x40."""
    encoding = encoding_of(text)
    coding = CODING_GSM7 if encoding == GSM7 else CODING_UCS2
    source, ton, npi = source_address(sender)
    chunks = gsm7.split(text)
    total = len(chunks)
    out: list[pdu.Submit] = []
    for seq, chunk in enumerate(chunks, start=1):
        body = gsm7.payload(chunk, encoding)
        esm = 0
        if total > 1:
            body = bytes([0x05, 0x00, 0x03, ref & 0xFF, total, seq]) + body
            esm = ESM_UDHI
        out.append(pdu.Submit(source, ton, npi, dest, dest_ton, dest_npi, esm, coding, body))
    return out


def decode_text(short_message: bytes, *, data_coding: int, esm_class: int) -> str:
    """An inbound short_message as text (its UDH dropped): GSM 03.38, UCS-2 or Latin-1."""
    if esm_class & ESM_UDHI and short_message:
        short_message = short_message[1 + short_message[0] :]
    if data_coding == CODING_UCS2:
        return short_message.decode("utf-16-be", "replace")
    if data_coding == CODING_GSM7:
        return gsm7.decode(short_message)
    return short_message.decode("latin-1")
