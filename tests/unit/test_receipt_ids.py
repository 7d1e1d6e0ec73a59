"""The forms an SMPP message id takes in receipts (domain.receipt_ids, SPEC §12)."""

from __future__ import annotations

from pombo.domain.receipt_ids import id_keys, id_spellings


def test_keys_of_the_same_id_meet_across_case_zeros_and_base() -> None:
    hexa = set(id_keys("A0000001"))
    assert hexa & set(id_keys("a0000001"))
    assert hexa & set(id_keys("2684354561"))  # the same number in decimal
    assert set(id_keys("00ABC")) & set(id_keys("abc"))
    assert not set(id_keys("A0000001")) & set(id_keys("A0000002"))


def test_uuid_ids_are_one_string_key() -> None:
    assert id_keys("04EDC83F-A77D-4B1A") == ("s:4edc83f-a77d-4b1a",)  # any case, leading zeros dropped


def test_spellings_cover_the_other_base_and_case() -> None:
    assert set(id_spellings("2684354561")) >= {"2684354561", "A0000001", "a0000001"}
    assert set(id_spellings("a0000001")) >= {"a0000001", "A0000001", "2684354561"}
    assert id_spellings("  ") == ()
    assert id_spellings("msg-1") == ("msg-1", "MSG-1")
