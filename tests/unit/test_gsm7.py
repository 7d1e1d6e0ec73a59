"""GSM 03.38 septets and the part split (SPEC §12, §13): the parts sent equal `segments`."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pombo.adapters.connections.smpp.receipts import id_keys, read_receipt
from pombo.domain import gsm7
from pombo.domain.text import GSM7_BASIC, GSM7_EXTENSION, segments

ALPHABET = st.sampled_from([*sorted(GSM7_BASIC | GSM7_EXTENSION), "ã", "😀", "ç"])


@given(st.text(alphabet=ALPHABET, max_size=700))
def test_split_count_is_segments_and_joins_back(text):
    parts = gsm7.split(text)
    assert len(parts) == segments(text) and "".join(parts) == text


@given(st.text(alphabet=st.sampled_from(sorted(GSM7_BASIC | GSM7_EXTENSION)), max_size=400))
def test_septets_round_trip(text):
    data = gsm7.encode(text)
    assert gsm7.decode(data) == text and max(data, default=0) < 0x80


def test_receipt_text_and_tlvs():
    text = "id:0a1b sub:001 dlvrd:001 submit date:2611251200 done date:2611251201 stat:delivrd err:000"
    assert read_receipt(text, None, None) == ("0a1b", "delivered")
    assert read_receipt("stat:UNDELIV", "ABC", None) == ("ABC", "undelivered")
    assert read_receipt("no words", "ABC", 2) == ("ABC", "delivered")
    assert read_receipt("stat:WHATEVER", None, None) == (None, None)


def test_hex_and_decimal_forms_share_a_key():
    assert set(id_keys("0A1B")) & set(id_keys("2587"))
    assert set(id_keys("000a1b")) & set(id_keys("A1B"))
    assert not set(id_keys("ZZ-1")) & set(id_keys("0A1B"))
