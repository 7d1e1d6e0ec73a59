"""SMPP 3.4 PDUs: smpp34's Rust codec for the hot ones (submit_sm out, deliver_sm in), and the
few fixed-layout ones it leaves as raw bodies (binds, responses, enquire_link, unbind,
generic_nack, data_sm) read and written here with struct. docs/smpp.md says why.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import smpp34

HEADER = struct.Struct("!IIII")  # command_length, command_id, command_status, sequence_number
MAX_PDU = 64 * 1024  # a longer command_length is a broken peer, not a message

GENERIC_NACK = 0x80000000
BIND_TRANSCEIVER, BIND_TRANSCEIVER_RESP = 0x00000009, 0x80000009
SUBMIT_SM, SUBMIT_SM_RESP = 0x00000004, 0x80000004
DELIVER_SM, DELIVER_SM_RESP = 0x00000005, 0x80000005
UNBIND, UNBIND_RESP = 0x00000006, 0x80000006
ENQUIRE_LINK, ENQUIRE_LINK_RESP = 0x00000015, 0x80000015
DATA_SM, DATA_SM_RESP = 0x00000103, 0x80000103
RESPONSE_BIT = 0x80000000

TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427
TLV_MESSAGE_PAYLOAD = 0x0424

ROK, RINVCMDLEN, RINVCMDID, RSYSERR, RMSGQFUL, RTHROTTLED = 0x00, 0x02, 0x03, 0x08, 0x14, 0x58
RX_T_APPN = 0x64  # "ESME receiver temporary app error": the SMSC retries the deliver_sm later

STATUS_NAMES = {
    0x00: "ESME_ROK", 0x01: "ESME_RINVMSGLEN", 0x02: "ESME_RINVCMDLEN", 0x03: "ESME_RINVCMDID",
    0x04: "ESME_RINVBNDSTS", 0x05: "ESME_RALYBND", 0x06: "ESME_RINVPRTFLG",
    0x07: "ESME_RINVREGDLVFLG", 0x08: "ESME_RSYSERR", 0x0A: "ESME_RINVSRCADR",
    0x0B: "ESME_RINVDSTADR", 0x0C: "ESME_RINVMSGID", 0x0D: "ESME_RBINDFAIL",
    0x0E: "ESME_RINVPASWD", 0x0F: "ESME_RINVSYSID", 0x11: "ESME_RCANCELFAIL",
    0x13: "ESME_RREPLACEFAIL", 0x14: "ESME_RMSGQFUL", 0x15: "ESME_RINVSERTYP",
    0x33: "ESME_RINVNUMDESTS", 0x34: "ESME_RINVDLNAME", 0x40: "ESME_RINVDESTFLAG",
    0x42: "ESME_RINVSUBREP", 0x43: "ESME_RINVESMCLASS", 0x44: "ESME_RCNTSUBDL",
    0x45: "ESME_RSUBMITFAIL", 0x48: "ESME_RINVSRCTON", 0x49: "ESME_RINVSRCNPI",
    0x50: "ESME_RINVDSTTON", 0x51: "ESME_RINVDSTNPI", 0x53: "ESME_RINVSYSTYP",
    0x54: "ESME_RINVREPFLAG", 0x55: "ESME_RINVNUMMSGS", 0x58: "ESME_RTHROTTLED",
    0x61: "ESME_RINVSCHED", 0x62: "ESME_RINVEXPIRY", 0x63: "ESME_RINVDFTMSGID",
    0x64: "ESME_RX_T_APPN", 0x65: "ESME_RX_P_APPN", 0x66: "ESME_RX_R_APPN",
    0x67: "ESME_RQUERYFAIL", 0xC0: "ESME_RINVOPTPARSTREAM", 0xC1: "ESME_ROPTPARNOTALLWD",
    0xC2: "ESME_RINVPARLEN", 0xC3: "ESME_RMISSINGOPTPARAM", 0xC4: "ESME_RINVOPTPARAMVAL",
    0xFE: "ESME_RDELIVERYFAILURE", 0xFF: "ESME_RUNKNOWNERR",
}


def status_text(status: int) -> str:
    """`ESME_RINVDSTADR (0x0000000B)`: the name SPEC §12 wants in return_log, and the code."""
    return f"{STATUS_NAMES.get(status, 'ESME_UNKNOWN')} (0x{status:08X})"


class PduError(ValueError):
    """A PDU that cannot be read: the session answers generic_nack or drops the bind."""


@dataclass(frozen=True, slots=True)
class Header:
    """The 16 octets every PDU starts with."""

    length: int
    command_id: int
    status: int
    sequence: int


@dataclass(frozen=True, slots=True)
class Submit:
    """One submit_sm (one part of a message)."""

    source_addr: str
    source_ton: int
    source_npi: int
    destination_addr: str
    dest_ton: int
    dest_npi: int
    esm_class: int
    data_coding: int
    short_message: bytes


@dataclass(frozen=True, slots=True)
class ShortMessage:
    """A deliver_sm or data_sm as Pombo reads it (the text field from short_message or
    message_payload, whichever carries it)."""

    source_addr: str
    destination_addr: str
    esm_class: int
    data_coding: int
    short_message: bytes
    tlvs: dict[int, bytes] = field(default_factory=dict)


def header(data: bytes) -> Header:
    """The header of a PDU whose first 16 octets are in `data`."""
    return Header(*HEADER.unpack_from(data))


def pack(command_id: int, sequence: int, body: bytes = b"", status: int = ROK) -> bytes:
    """A whole PDU from its parts."""
    return HEADER.pack(16 + len(body), command_id, status, sequence) + body


def _cstr(value: str) -> bytes:
    return value.encode("ascii", "replace") + b"\0"


def bind_transceiver(sequence: int, *, system_id: str, password: str, system_type: str) -> bytes:
    """bind_transceiver, interface version 3.4, no address range."""
    body = _cstr(system_id) + _cstr(password) + _cstr(system_type) + bytes([0x34, 0, 0]) + b"\0"
    return pack(BIND_TRANSCEIVER, sequence, body)


def submit_sm(part: Submit, sequence: int) -> bytes:
    """One submit_sm asking for a receipt (registered_delivery 1)."""
    return smpp34.SubmitSm(
        part.source_addr, part.destination_addr, part.short_message,
        source_addr_ton=part.source_ton, source_addr_npi=part.source_npi,
        dest_addr_ton=part.dest_ton, dest_addr_npi=part.dest_npi, esm_class=part.esm_class,
        registered_delivery=1, data_coding=part.data_coding, sequence_number=sequence,
    ).encode()


def message_id(body: bytes) -> str:
    """The C-octet string a submit_sm_resp / data_sm_resp / bind_*_resp body starts with."""
    end = body.find(b"\0")
    return body[: end if end >= 0 else len(body)].decode("ascii", "replace")


def deliver_sm(pdu: bytes) -> ShortMessage:
    """A whole deliver_sm PDU, read by smpp34's codec."""
    try:
        got = smpp34.decode(pdu)
    except (smpp34.SmppError, ValueError) as exc:
        raise PduError(str(exc)) from None
    if not isinstance(got, smpp34.DeliverSm):
        raise PduError(f"not a deliver_sm: {type(got).__name__}")
    tlvs = {t.tag: t.value for t in got.tlvs}
    text = got.short_message or tlvs.get(TLV_MESSAGE_PAYLOAD, b"")
    return ShortMessage(got.source_addr, got.destination_addr, got.esm_class, got.data_coding, text, tlvs)


def data_sm(body: bytes) -> ShortMessage:
    """A data_sm body (after the header): addresses, esm_class, data_coding, then TLVs only."""
    try:
        at = _skip_cstr(body, 0)  # service_type
        at += 2  # source ton, npi
        source, at = _read_cstr(body, at)
        at += 2
        dest, at = _read_cstr(body, at)
        esm_class, _registered, data_coding = body[at], body[at + 1], body[at + 2]
        tlvs = _tlvs(body, at + 3)
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise PduError(f"bad data_sm: {exc}") from None
    return ShortMessage(source, dest, esm_class, data_coding, tlvs.get(TLV_MESSAGE_PAYLOAD, b""), tlvs)


def _skip_cstr(data: bytes, at: int) -> int:
    end = data.index(b"\0", at)
    return end + 1


def _read_cstr(data: bytes, at: int) -> tuple[str, int]:
    end = data.index(b"\0", at)
    return data[at:end].decode("ascii"), end + 1


def _tlvs(data: bytes, at: int) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    while at + 4 <= len(data):
        tag, length = struct.unpack_from("!HH", data, at)
        found[tag] = data[at + 4 : at + 4 + length]
        at += 4 + length
    return found


def tlv_text(value: bytes | None) -> str | None:
    """A C-octet-string TLV (receipted_message_id) as text, without its NUL."""
    if value is None:
        return None
    return value.split(b"\0", 1)[0].decode("ascii", "replace").strip() or None


def tlv_int(value: bytes | None) -> int | None:
    """An integer TLV (message_state) of 1, 2 or 4 octets."""
    if not value or len(value) not in (1, 2, 4):
        return None
    return int.from_bytes(value, "big")
