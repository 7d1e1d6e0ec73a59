"""Delivery states from what providers send (SPEC §8, §12): Kannel's %d bit mask, the receipt
text's `stat:` word, and which moves a report may make."""

from __future__ import annotations

import pytest

from pombo.domain import delivery
from pombo.domain.delivery import kannel_mask_state, kannel_state, sources_for, state_from_receipt

# What a real Kannel puts in %d (gw/dlr.h: DLR_SUCCESS 1, DLR_FAIL 2, DLR_BUFFERED 4,
# DLR_SMSC_SUCCESS 8, DLR_SMSC_FAIL 16, DLR_EXPIRED 32|DLR_FAIL, DLR_UNKNOWN 64|DLR_FAIL)
# and the combinations its bits could make.
MASKS = [
    (1, "delivered"), (2, "undelivered"), (4, None), (8, "sent"), (16, "rejected"),
    (34, "expired"),  # SMPP message_state EXPIRED (3): 0x20|DLR_FAIL
    (32, "expired"), (66, "unknown"), (64, "unknown"),
    (0, None), (-1, None), (128, None),  # DLR_NOTHING, DLR_UNDEFINED, no bit of ours
    (5, "delivered"), (12, "sent"), (6, "undelivered"), (3, "delivered"), (33, "delivered"),
    (18, "rejected"), (24, "rejected"), (48, "expired"), (10, "undelivered"), (98, "expired"),
    (31, "delivered"), (63, "delivered"),
]


@pytest.mark.parametrize(("mask", "state"), MASKS)
def test_kannel_mask(mask: int, state: str | None) -> None:
    assert kannel_mask_state(mask) == state


RECEIPT = "id:{id} sub:001 dlvrd:{d} submit date:2401021530 done date:2401021531 stat:{stat} err:{err} text:Ola"


@pytest.mark.parametrize(
    ("stat", "state"),
    [("DELIVRD", "delivered"), ("ENROUTE", "sent"), ("ACCEPTD", "sent"), ("UNDELIV", "undelivered"),
     ("DELETED", "undelivered"), ("EXPIRED", "expired"), ("REJECTD", "rejected"), ("UNKNOWN", "unknown"),
     ("delivrd", "delivered"), ("Rejectd", "rejected"), ("expired", "expired"),
     ("BOGUS", None), ("", None)],
)
def test_receipt_stat_word(stat: str, state: str | None) -> None:
    assert state_from_receipt(RECEIPT.format(id="7f3a", d="001", stat=stat, err="000")) == state


@pytest.mark.parametrize(
    ("text", "state"),
    [("", None), ("ACK/", None), ("NACK/0x0000000b/Invalid Destination Address", None),
     ("id:1 STAT:DELIVRD", "delivered"), ("stat:REJECTD", "rejected"), ("id:1 stat: EXPIRED err:0", "expired"),
     ("id:1 stat:UNDELIV err:000 text:stat:DELIVRD", "undelivered"),  # the first stat: is the receipt's
     ("id:1 substat:DELIVRD", None), ("id:1 stat:DELIVRD\n", "delivered"),
     ("id:1+sub:001+stat:EXPIRED+err:000", "expired")],  # Kannel's escaping, if left undecoded
)
def test_receipt_text_without_the_usual_shape(text: str, state: str | None) -> None:
    assert state_from_receipt(text) == state


@pytest.mark.parametrize(
    ("type_mask", "answer", "state"),
    [("2", "id:1 sub:001 dlvrd:000 stat:REJECTD err:000", "rejected"),  # Kannel's REJECTD is DLR_FAIL
     ("34", "id:1 sub:001 dlvrd:000 stat:EXPIRED err:000", "expired"),
     ("1", "id:1 stat:DELIVRD", "delivered"),
     ("4", "id:1 stat:ENROUTE", "sent"), ("4", "id:1 stat:ACCEPTD", "sent"),
     ("2", "id:1 stat:DELETED", "undelivered"),
     ("2", "id:1 stat:UNKNOWN", "unknown"),
     ("2", "id:1 stat:NOPE", "undelivered"),  # an unknown word: the bits decide
     ("16", "NACK/0x0000000b/Invalid Destination Address", "rejected"),
     ("8", "ACK/", "sent"), ("34", "", "expired"), ("4", "", None),
     ("", "", None), ("x", "", None), (" 1 ", "", "delivered"), ("-2", "", None), ("1e3", "", None),
     ("²", "", None), ("99999999999999999999", "", None), ("", "stat:DELIVRD", "delivered")],
)
def test_kannel_report(type_mask: str, answer: str, state: str | None) -> None:
    assert kannel_state(type_mask, answer) == state


@pytest.mark.parametrize(
    ("new", "sources"),
    [("sent", ("pending", "unknown")), ("delivered", ("pending", "sent", "unknown")),
     ("undelivered", ("pending", "sent", "unknown")), ("expired", ("pending", "sent", "unknown")),
     ("rejected", ("pending", "sent", "unknown")), ("unknown", ()), ("pending", ()), ("bogus", ())],
)
def test_unknown_is_not_final(new: str, sources: tuple[str, ...]) -> None:
    assert sources_for(new) == sources


def test_taken_states_are_the_ones_the_provider_took() -> None:
    assert frozenset({"sent", "delivered", "undelivered", "expired"}) == delivery.TAKEN
    assert delivery.REJECTED not in delivery.TAKEN and delivery.UNKNOWN not in delivery.TAKEN
