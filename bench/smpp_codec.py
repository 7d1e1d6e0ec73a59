"""SMPP PDU codecs side by side: encode + decode of submit_sm and deliver_sm, per second.

The hot path of an SMPP connection encodes one submit_sm per part and decodes one deliver_sm
per receipt (plus the tiny submit_sm_resp). This measures exactly those two round trips for
every candidate that is importable, so the library choice in docs/smpp.md rests on a figure:

    python bench/smpp_codec.py                 # the candidates installed in this interpreter
    python bench/smpp_codec.py --seconds 2     # longer runs

Candidates: smpp34 (Rust codec), aiosmpplib, smpplib, smpp.pdu3 (Jasmin's codec), when each
can be imported. A candidate
that is missing is named and skipped. Each figure is the median of 5 runs.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

DEST, SOURCE = "5511987654321", "Pombo"
BODY = b"Ola! Seu codigo de acesso e 123456. Nao compartilhe. " * 3  # 159 octets, GSM-7 unpacked
RECEIPT = b"id:0A1B2C3D sub:001 dlvrd:001 submit date:2611251200 done date:2611251201 stat:DELIVRD err:000 text:Ola! Seu codigo"
MSG_ID = "0A1B2C3D"

Case = Callable[[], object]


def smpp34_cases() -> dict[str, Case]:
    import smpp34

    rmi = smpp34.Tlv(smpp34.TLV_RECEIPTED_MESSAGE_ID, MSG_ID.encode() + b"\0")

    def submit() -> object:
        pdu = smpp34.SubmitSm(SOURCE, DEST, BODY, source_addr_ton=5, dest_addr_ton=1, dest_addr_npi=1,
                              registered_delivery=1, sequence_number=7).encode()
        return smpp34.decode(pdu).short_message

    def deliver() -> object:
        pdu = smpp34.DeliverSm(DEST, SOURCE, RECEIPT, esm_class=4, tlvs=[rmi], sequence_number=9).encode()
        got = smpp34.decode(pdu)
        return got.short_message, [t.as_string() for t in got.tlvs]

    return {"submit_sm": submit, "deliver_sm": deliver}


def aiosmpplib_cases() -> dict[str, Case]:
    from aiosmpplib import OptionalParam, PhoneNumber
    from aiosmpplib.protocol import DeliverSm, SmppMessage, SubmitSm
    from aiosmpplib.state import RECEIPTED_MESSAGE_ID

    text, receipt = BODY.decode(), RECEIPT.decode()

    def submit() -> object:
        pdu = SubmitSm(sequence_num=7, short_message=text, source=PhoneNumber(SOURCE),
                       destination=PhoneNumber(DEST), encoding="gsm0338").pdu()
        return SubmitSm.from_pdu(pdu, SmppMessage.parse_header(pdu), "gsm0338").short_message

    def deliver() -> object:
        pdu = DeliverSm(sequence_num=9, short_message=receipt, source=PhoneNumber(DEST),
                        destination=PhoneNumber(SOURCE), esm_class=4, encoding="ascii",
                        optional_params=[OptionalParam(RECEIPTED_MESSAGE_ID, MSG_ID)]).pdu()
        return DeliverSm.from_pdu(pdu, SmppMessage.parse_header(pdu), "ascii").short_message

    return {"submit_sm": submit, "deliver_sm": deliver}


def smpplib_cases() -> dict[str, Case]:
    from smpplib import smpp

    class Sequence:
        value = 0

        def next_sequence(self) -> int:
            self.value += 1
            return self.value

    client = Sequence()

    def submit() -> object:
        pdu = smpp.make_pdu("submit_sm", client=client, source_addr=SOURCE, source_addr_ton=5,
                            destination_addr=DEST, dest_addr_ton=1, dest_addr_npi=1,
                            short_message=BODY, registered_delivery=1, data_coding=0).generate()
        return smpp.parse_pdu(pdu, client=client).short_message

    def deliver() -> object:
        pdu = smpp.make_pdu("deliver_sm", client=client, source_addr=DEST, destination_addr=SOURCE,
                            short_message=RECEIPT, esm_class=4, receipted_message_id=MSG_ID).generate()
        got = smpp.parse_pdu(pdu, client=client)
        return got.short_message, got.receipted_message_id

    return {"submit_sm": submit, "deliver_sm": deliver}


def smpp_pdu3_cases() -> dict[str, Case]:
    from smpp.pdu import pdu_types as t
    from smpp.pdu.operations import DeliverSM, SubmitSM
    from smpp.pdu.pdu_encoding import PDUEncoder

    encoder = PDUEncoder()
    receipt_class = t.EsmClass(t.EsmClassMode.DEFAULT, t.EsmClassType.SMSC_DELIVERY_RECEIPT)
    registered = t.RegisteredDelivery(t.RegisteredDeliveryReceipt.SMSC_DELIVERY_RECEIPT_REQUESTED)

    def submit() -> object:
        pdu = encoder.encode(SubmitSM(seqNum=7, source_addr=SOURCE, destination_addr=DEST,
                                      short_message=BODY, registered_delivery=registered))
        return encoder.decode(io.BytesIO(pdu)).params["short_message"]

    def deliver() -> object:
        pdu = encoder.encode(DeliverSM(seqNum=9, source_addr=DEST, destination_addr=SOURCE,
                                       short_message=RECEIPT, esm_class=receipt_class,
                                       receipted_message_id=MSG_ID))
        return encoder.decode(io.BytesIO(pdu)).params["receipted_message_id"]

    return {"submit_sm": submit, "deliver_sm": deliver}


CANDIDATES: dict[str, Callable[[], dict[str, Case]]] = {
    "smpp34 (Rust)": smpp34_cases,
    "smpplib": smpplib_cases,
    "aiosmpplib": aiosmpplib_cases,
    "smpp.pdu3 (Jasmin)": smpp_pdu3_cases,
}


def rate(case: Case, seconds: float) -> float:
    """Round trips per second, median of 5 runs of about `seconds` / 5 each."""
    batch, runs = 200, []
    for _ in range(5):
        done, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 5:
            for _ in range(batch):
                case()
            done += batch
        runs.append(done / elapsed)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per candidate and PDU")
    args = parser.parse_args()
    print(f"{'codec':<22} {'submit_sm enc+dec/s':>20} {'deliver_sm enc+dec/s':>21} {'µs per pair':>12}")
    for name, build in CANDIDATES.items():
        try:
            cases = build()
            for case in cases.values():
                case()  # a candidate that cannot do the round trip fails here, not mid-run
        except Exception as exc:  # an absent or broken candidate is reported, not fatal
            print(f"{name:<22} skipped: {type(exc).__name__}: {exc}")
            continue
        sub, dlv = rate(cases["submit_sm"], args.seconds), rate(cases["deliver_sm"], args.seconds)
        pair_us = 1e6 / sub + 1e6 / dlv
        print(f"{name:<22} {sub:>20,.0f} {dlv:>21,.0f} {pair_us:>12.1f}")


if __name__ == "__main__":
    main()
