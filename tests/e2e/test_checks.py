"""SPEC §4 (the checks, in order), §5 (numbers) and §7 (text filter and models)."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import (
    BLOCKED_BY_CUSTOMER,
    BLOCKED_BY_RESELLER,
    T,
    expect,
    expect_reject,
)

BANK_TEXT = "Itau informa: atualize seus dados"


# ----------------------------------------------------------------------------------------------
# 220 / 230 / 235
# ----------------------------------------------------------------------------------------------


def test_220_customer_without_sms(pombo):
    """§4 220 `No sms account`: the customer is not provisioned for SMS (sms: false)."""
    d = pombo.dest()
    expect_reject(pombo.send(T["nosms"], d, "no sms"), 220)
    assert pombo.sent_anywhere("55" + d) == []


def test_220_routed_to_disabled_connection(pombo):
    """§4/§8 220: the connection the customer routes to is disabled."""
    d = pombo.dest()
    expect_reject(pombo.send(T["flash"], d, "flash is disabled"), 220)
    assert pombo.sent_anywhere("55" + d) == []
    assert [r for r in pombo.upstream.requests if r.path.startswith("/flash")] == []


def test_220_comes_first(pombo):
    """§4 order: 220 wins over every later check (no dest, no text)."""
    expect_reject(pombo.send(T["nosms"], None, None), 220)
    expect_reject(pombo.send(T["flash"], "", ""), 220)


@pytest.mark.parametrize("dest", [None, "", "   "])
def test_230_no_dest(pombo, dest):
    """§4 230 `No dest`: dest missing or blank."""
    expect_reject(pombo.send(T["velip"], dest, "hello"), 230)


@pytest.mark.parametrize("fields", [{}, {"message": ""}, {"message": "   "}, {"text": " \t "},
                                    {"msg_text": ""}])
def test_235_no_text(pombo, fields):
    """§4 235 `No text`: none of message/text/msg_text given, or the body is blank."""
    r = pombo.api("MakeSMS", T["velip"], dest=pombo.dest(), **fields)
    expect_reject(r, 235)


def test_230_before_235(pombo):
    """§4 order: blank dest and blank text at once → 230."""
    expect_reject(pombo.send(T["velip"], "", ""), 230)
    expect_reject(pombo.send(T["velip"], None, None), 230)


# ----------------------------------------------------------------------------------------------
# 238 text length
# ----------------------------------------------------------------------------------------------


def test_238_text_too_long_exact_status(pombo):
    """§4 238: `Text NN ch more than 160 ch` with NN the body's length."""
    expect_reject(pombo.send(T["velip"], pombo.dest(), "a" * 161),
                  238, "Text 161 ch more than 160 ch")
    expect_reject(pombo.send(T["velip"], pombo.dest(), "ã" * 200),
                  238, "Text 200 ch more than 160 ch")


def test_160_characters_pass(pombo):
    """§4 238: a body of exactly the limit is accepted."""
    d = pombo.dest()
    expect(pombo.send(T["velip"], d, "b" * 160), 0)
    assert pombo.wait_sent("kannel", "55" + d)[0].query["text"] == "b" * 160


def test_238_uses_customer_limit(pombo):
    """§4 238: the limit is the customer's (max_length 50 here), and shows in the text."""
    expect_reject(pombo.send(T["limit50"], pombo.dest(), "c" * 51),
                  238, "Text 51 ch more than 50 ch")
    d = pombo.dest()
    expect(pombo.send(T["limit50"], d, "c" * 50), 0)


@pytest.mark.parametrize("cut", ["1", "yes"])
def test_cuttext_cuts_instead_of_238(pombo, cut):
    """§3 cuttext=1/yes: the body is cut to the limit instead of failing with 238."""
    d = pombo.dest()
    body = "".join(chr(ord("a") + i % 26) for i in range(200))
    expect(pombo.send(T["velip"], d, body, cuttext=cut), 0)
    sent = pombo.wait_sent("kannel", "55" + d)
    assert len(sent) == 1 and sent[0].query["text"] == body[:160]
    d2 = pombo.dest()
    expect(pombo.send(T["limit50"], d2, body, cuttext=cut), 0)
    assert pombo.wait_sent("kannel", "55" + d2)[0].query["text"] == body[:50]


def test_cuttext_other_values_do_not_cut(pombo):
    """§3: only `1` or `yes` cut; cuttext=0 still fails with 238."""
    expect_reject(pombo.send(T["velip"], pombo.dest(), "d" * 170, cuttext="0"),
                  238, "Text 170 ch more than 160 ch")


def test_238_before_240(pombo):
    """§4 order: too long and an invalid number → 238."""
    expect_reject(pombo.send(T["velip"], "1133334444", "e" * 161), 238,
                  "Text 161 ch more than 160 ch")


# ----------------------------------------------------------------------------------------------
# 240 numbers (§5)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dest",
    [
        "1133334444",  # landline, 8 digits starting 3
        "1122223333",  # landline starting 2
        "1152223333",  # landline starting 5
        "(11) 4002-8922",  # landline, formatted
        "20999998888",  # DDD 20 does not exist
        "23999998888",  # DDD 23 does not exist
        "10999998888",  # DDD 10 does not exist
        "11899998888",  # 9 digits not starting with 9
        "119999888",  # too short
        "119999988887",  # too long
        "abc",
        "55",
        "5511",
        "+1 415 555 2671",  # international with setbrasil=1
    ],
)
def test_240_invalid_brazilian_numbers(pombo, dest):
    """§5 setbrasil=1: landlines, unknown DDDs and anything not a mobile → 240."""
    expect_reject(pombo.send(T["velip"], dest, "numero invalido", httpdup=0), 240)


def _valid_forms(pombo):
    """(as typed, normalised) pairs from §5, each with a fresh subscriber."""
    cases = []
    s = pombo.dest()[3:]  # 8 unique digits after the ninth digit
    cases.append((f"11 9{s[:4]}-{s[4:]}", f"55119{s}"))
    s = pombo.dest()[3:]
    cases.append((f"011 9{s}", f"55119{s}"))  # 0DDD
    s = pombo.dest()[3:]
    cases.append((f"+55 (21) 9{s[:4]}-{s[4:]}", f"55219{s}"))
    s = pombo.dest()[3:]
    cases.append((f"55119{s}", f"55119{s}"))  # 55DDD
    s = pombo.dest()[3:]
    cases.append((f"0 15 11 9{s}", f"55119{s}"))  # carrier code, 14 digits
    s = pombo.dest()[4:]  # 7 digits
    cases.append((f"0 21 11 8{s}", f"551198{s}"))  # carrier code, 13 digits, 8-digit mobile
    s = pombo.dest()[4:]
    cases.append((f"11 8{s[:3]}-{s[3:]}", f"551198{s}"))  # 8-digit mobile gains the 9
    s = pombo.dest()[4:]
    cases.append((f"(21) 6{s}", f"552196{s}"))  # 8 digits starting with 6
    s = pombo.dest()[3:]
    cases.append((f"55 9{s}", f"55559{s}"))  # DDD 55 itself, 11 digits
    s = pombo.dest()[3:]
    cases.append((f"55 55 9{s}", f"55559{s}"))  # country code + DDD 55
    s = pombo.dest()[3:]
    cases.append((f"0 55 9{s}", f"55559{s}"))  # 0 + DDD 55
    s = pombo.dest()[3:]
    cases.append((f"0 41 55 9{s}", f"55559{s}"))  # carrier 41 + DDD 55
    return cases


def test_brazilian_number_normalisation(pombo):
    """§5 setbrasil=1: 0DDD, DDD, 55DDD, +55 (DDD), carrier codes, the ninth digit and DDD 55
    all normalise to 55 + DDD + 9 digits, which is what goes upstream."""
    failures = []
    for typed, norm in _valid_forms(pombo):
        r = pombo.send(T["velip"], typed, "normalise")
        if r.code != "0":
            failures.append(f"{typed!r}: {r}")
            continue
        sent = pombo.wait_sent("kannel", norm)
        if len(sent) != 1:
            got = [x.query.get("to") for x in pombo.upstream.received("kannel")]
            failures.append(f"{typed!r}: expected to={norm}, upstream saw {got}")
    assert not failures, "\n".join(failures)


def test_international_setbrasil_0(pombo):
    """§5 setbrasil=0: spaces, dashes, dots, parentheses, leading + / 00 dropped; sent as is."""
    s = pombo.dest()[4:]  # 7 unique digits
    expect(pombo.send(T["velip"], f"+1 (415) {s[:3]}-{s[3:]}", "intl", setbrasil=0), 0)
    assert len(pombo.wait_sent("kannel", f"1415{s}")) == 1
    s = pombo.dest()[4:]
    expect(pombo.send(T["velip"], f"001.415.{s[:3]}.{s[3:]}", "intl", setbrasil=0), 0)
    assert len(pombo.wait_sent("kannel", f"1415{s}")) == 1
    s = pombo.dest()[3:]
    expect(pombo.send(T["velip"], f"55119{s}", "br as intl", setbrasil=0), 0)
    assert len(pombo.wait_sent("kannel", f"55119{s}")) == 1


@pytest.mark.parametrize("dest", ["1234567", "1234567890123456", "+0 1234 5678", "12345abc678",
                                  "0012"])
def test_240_international_rules(pombo, dest):
    """§5 setbrasil=0: what is left must be 8–15 digits not starting with 0, else 240."""
    expect_reject(pombo.send(T["velip"], dest, "intl invalid", setbrasil=0, httpdup=0), 240)


def test_240_before_270(pombo):
    """§4 order: invalid number and a blocked text → 240."""
    expect_reject(pombo.send(T["velip"], "1133334444", BANK_TEXT), 240)


# ----------------------------------------------------------------------------------------------
# 260 block lists
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["(11) 98888-7777", "1188887777", "+55 11 98888 7777",
                                   BLOCKED_BY_CUSTOMER])
def test_260_customer_block_list(pombo, typed):
    """§4 260: the *normalised* destination is on the customer's block list."""
    expect_reject(pombo.send(T["wavy"], typed, "blocked", httpdup=0), 260)
    assert pombo.sent_anywhere(BLOCKED_BY_CUSTOMER) == []


def test_260_reseller_block_list(pombo):
    """§4 260: the destination is on the block list of one of the customer's resellers."""
    expect_reject(pombo.send(T["wavy"], "11977776666", "blocked", httpdup=0), 260)
    expect_reject(pombo.send(T["velip"], BLOCKED_BY_RESELLER, "blocked", httpdup=0), 260)


def test_other_customers_list_does_not_apply(pombo):
    """§4 260: only the customer's own list and its resellers' lists apply."""
    expect(pombo.send(T["velip"], BLOCKED_BY_CUSTOMER, "not my list", httpdup=0), 0)


def test_260_before_270(pombo):
    """§4 order: blocked number and a blocked text → 260."""
    expect_reject(pombo.send(T["wavy"], BLOCKED_BY_CUSTOMER, BANK_TEXT, httpdup=0), 260)


# ----------------------------------------------------------------------------------------------
# 270 text filter and models (§7)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Itaú! Sua conta foi suspensa",
        "Cliente 1TAU, atualize o cadastro",
        "I T A U informa: premio",
        "FEBRABAN alerta seus dados",
        "Seu cartão   BLOQUEADO hoje",
        "seu c4rt4o bl0queado, ligue ja",
        "B@nco do Br4sil: acesse",
        "Sua chave PIX expirou",
        "bradesco.",
        "banco-do-brasil",
    ],
)
def test_270_blocked_text(pombo, text):
    """§7: patterns match as whole consecutive words after case folding, accent removal,
    digit/symbol swaps and joining single letters → 270 `Blocked text`."""
    d = pombo.dest()
    expect_reject(pombo.send(T["velip"], d, text), 270)
    assert pombo.sent_to("kannel", "55" + d) == []


def test_text_filter_list_replaces_default(pombo):
    """§7/§9: `text_filter` in the file *replaces* the default list: bank names that are not on
    the provisioned list pass."""
    expect(pombo.send(T["velip"], pombo.dest(), "Santander informa: promocao"), 0)
    expect(pombo.send(T["velip"], pombo.dest(), "Nubank e Caixa Economica Federal"), 0)


@pytest.mark.parametrize(
    "text",
    ["aceita um cafe?", "pixel art em promocao", "banco do brasilia fechado",
     "itaubanco nao e palavra", "cartao desbloqueado"],
)
def test_text_filter_whole_words_only(pombo, text):
    """§7: `itau` does not match `aceita um`; patterns must appear as whole words."""
    expect(pombo.send(T["velip"], pombo.dest(), text), 0)


@pytest.mark.parametrize(
    "text",
    [
        "Seu codigo 4821 do Banco do Brasil",
        "Seu código 4821 do BANCO DO BRASIL",
        "seu   codigo  AB-77   do banco do brasil",
        "Seu codigo " + "x" * 60 + " do Banco do Brasil",
    ],
)
def test_model_lets_filtered_text_pass(pombo, text):
    """§7: a body equal to an approved model (placeholder 1–60 chars; case, accents and
    white-space runs ignored) passes the filter and is sent."""
    d = pombo.dest()
    expect(pombo.send(T["wavy"], d, text), 0)
    assert len(pombo.wait_sent("wavy", "55" + d)) == 1


@pytest.mark.parametrize(
    "text",
    [
        "Seu codigo 4821 do Banco do Brasil. Clique aqui",
        "Seu codigo  do Banco do Brasil",
        "Seu codigo " + "x" * 61 + " do Banco do Brasil",
        "Codigo 4821 do Banco do Brasil",
    ],
)
def test_model_mismatch_is_270(pombo, text):
    """§7: a filtered body that does not equal a model (or a 61-char placeholder) → 270."""
    expect_reject(pombo.send(T["wavy"], pombo.dest(), text), 270)


def test_models_are_per_customer(pombo):
    """§7: another customer's model does not let the text pass."""
    expect_reject(pombo.send(T["velip"], pombo.dest(), "Seu codigo 4821 do Banco do Brasil"), 270)


def test_270_before_244(pombo):
    """§4 order: a blocked text to a destination inside the duplicate window → 270."""
    d = pombo.dest()
    expect(pombo.send(T["velip"], d, "primeiro"), 0)
    expect_reject(pombo.send(T["velip"], d, BANK_TEXT), 270)


# ----------------------------------------------------------------------------------------------
# 244 duplicates
# ----------------------------------------------------------------------------------------------


def test_244_duplicate_inside_window(pombo):
    """§4 244 `http duplicidade`: a second send to the same destination inside the default
    window; no log row, nothing more upstream."""
    d = pombo.dest()
    expect(pombo.send(T["velip"], d, "um"), 0)
    expect_reject(pombo.send(T["velip"], d, "dois"), 244)
    time.sleep(0.3)
    assert len(pombo.sent_to("kannel", "55" + d)) == 1


def test_244_compares_normalised_destinations(pombo):
    """§4 244: the window is per *normalised* destination."""
    d = pombo.dest()
    expect(pombo.send(T["velip"], d, "um"), 0)
    expect_reject(pombo.send(T["velip"], f"+55 ({d[:2]}) {d[2:7]}-{d[7:]}", "dois"), 244)
    expect_reject(pombo.send(T["velip"], "0" + d, "tres"), 244)


def test_duplicate_window_is_per_customer(pombo):
    """§4 244: *this customer* had a send to the destination; other customers are free."""
    d = pombo.dest()
    expect(pombo.send(T["velip"], d, "um"), 0)
    expect(pombo.send(T["matrix"], d, "outro cliente"), 0)


def test_httpdup_0_disables(pombo):
    """§3 httpdup=0 disables the duplicate check."""
    d = pombo.dest()
    expect(pombo.send(T["velip"], d, "um"), 0)
    expect(pombo.send(T["velip"], d, "dois", httpdup=0), 0)
    expect(pombo.send(T["velip"], d, "tres", httpdup="0"), 0)
    assert len(pombo.wait_sent("kannel", "55" + d, n=3)) == 3


@pytest.mark.parametrize("value", ["abc", "-5", "1.5", ""])
def test_httpdup_invalid_counts_as_default(pombo, value):
    """§3: an httpdup that is not a non-negative integer counts as the default (10 s)."""
    d = pombo.dest()
    expect(pombo.send(T["velip"], d, "um"), 0)
    expect_reject(pombo.send(T["velip"], d, "dois", httpdup=value), 244)


def test_httpdup_over_600_is_capped_not_disabled(pombo):
    """§3: values over 600 count as 600 (still a window)."""
    d = pombo.dest()
    expect(pombo.send(T["velip"], d, "um"), 0)
    expect_reject(pombo.send(T["velip"], d, "dois", httpdup=100000), 244)


def test_httpdup_window_expires(pombo):
    """§4 244: only sends within the last `httpdup` seconds count."""
    d = pombo.dest()
    expect(pombo.send(T["velip"], d, "um", httpdup=1), 0)
    expect_reject(pombo.send(T["velip"], d, "dois", httpdup=1), 244)
    time.sleep(1.6)
    expect(pombo.send(T["velip"], d, "tres", httpdup=1), 0)


# ----------------------------------------------------------------------------------------------
# 245 night limit
# ----------------------------------------------------------------------------------------------


def test_245_night_limit(pombo):
    """§4 245 `night limit`: window 00:00-23:59 (within one day), night_limit 2: the third
    accepted send of the night is refused; a duplicate is still 244 (checked first)."""
    d1, d2, d3 = pombo.dest(), pombo.dest(), pombo.dest()
    expect(pombo.send(T["night"], d1, "noite 1"), 0)
    expect(pombo.send(T["night"], d2, "noite 2"), 0)
    expect_reject(pombo.send(T["night"], d3, "noite 3"), 245)
    expect_reject(pombo.send(T["night"], d3, "noite 3", httpdup=0), 245)
    expect_reject(pombo.send(T["night"], d1, "noite dup"), 244)
    assert pombo.sent_to("kannel", "55" + d3) == []


def test_night_limit_counts_only_accepted_sends(pombo):
    """§4 245: only *accepted* sends count towards night_limit (here 1): a 300 does not."""
    pombo.upstream.behave("kannel", mode="error")
    expect(pombo.send(T["night1"], pombo.dest(), "falha"), 300)
    pombo.upstream.behave("kannel", mode="ok")
    expect(pombo.send(T["night1"], pombo.dest(), "aceita"), 0)
    expect_reject(pombo.send(T["night1"], pombo.dest(), "limite"), 245)


# ----------------------------------------------------------------------------------------------
# 255 / 250
# ----------------------------------------------------------------------------------------------


def test_255_no_tariff_for_customer(pombo):
    """§4 255 `no sms tarif`: no tariff matches for the customer itself."""
    expect_reject(pombo.send(T["notariff"], pombo.dest(), "sem tarifa"), 255)


def test_255_no_tariff_for_reseller(pombo):
    """§4 255: the customer has a tariff but its reseller has none."""
    expect_reject(pombo.send(T["revnotariff"], pombo.dest(), "revenda sem tarifa"), 255)


def test_255_no_tariff_for_destination_prefix(pombo):
    """§4/§6 255: a valid international number no tariff prefix covers."""
    s = pombo.dest()[3:]
    expect_reject(pombo.send(T["velip"], f"0044 20 {s}", "uk", setbrasil=0), 255)


def test_250_no_credit(pombo):
    """§4 250 `no credit`: the customer's balance is not above its credit limit."""
    expect_reject(pombo.send(T["nocredit"], pombo.dest(), "sem saldo"), 250)


def test_250_reseller_without_credit(pombo):
    """§4 250: a reseller above the customer fails `balance > credit_limit`."""
    before = pombo.balance(T["revnocredit"])
    expect_reject(pombo.send(T["revnocredit"], pombo.dest(), "revenda sem saldo"), 250)
    assert pombo.balance(T["revnocredit"]) == before


def test_255_before_250(pombo):
    """§4 order: no tariff and no credit → 255."""
    expect_reject(pombo.send(T["nocredit_notariff"], pombo.dest(), "nada"), 255)


def test_refusals_write_no_log_row(pombo):
    """§1: cdls_id "0" when no row was written — and the log indeed has none."""
    ctid = "refused-ctid-e2e"
    expect_reject(pombo.send(T["velip"], "1133334444", "x", ctid=ctid), 240)
    r = pombo.status(T["velip"], ctid=ctid)
    expect(r, 0)
    assert r.json["messages"] == []


def test_cuttext_keeps_one_segment_for_accented_and_extension_text(pombo):
    """§13: cuttext=1 at the default 160 always gives one segment: an accented (UCS-2) body is
    cut to its first 70 characters, a body of extension characters to 80 (two septets each)."""
    d = pombo.dest()
    body = "ação " * 40
    expect(pombo.send(T["velip"], d, body, cuttext="1"), 0)
    sent = pombo.wait_sent("kannel", "55" + d)
    assert len(sent) == 1 and sent[0].query["text"] == body[:70] and sent[0].query["coding"] == "2"
    d2 = pombo.dest()
    expect(pombo.send(T["velip"], d2, "€" * 100, cuttext="1"), 0)
    assert pombo.wait_sent("kannel", "55" + d2)[0].query["text"] == "€" * 80
