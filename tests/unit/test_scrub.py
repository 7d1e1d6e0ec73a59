"""Connection secrets never reach a customer (domain/scrub.py): every encoded form is masked."""

from __future__ import annotations

import base64
import html
import json
from urllib.parse import quote, quote_plus, urlencode

import pytest

from pombo.domain.catalog import Catalog
from pombo.domain.model import ConnectionConfig
from pombo.domain.scrub import Scrubber, scrubber_for

PASSWORD = "p@ss w/rd&1"
SECRET = "dlr-Secret-42"
USER = "kannel-user"
DLR = f"http://gw.example:8000/dlr/velip/{SECRET}?id=7&type=%d"
SCRUB = Scrubber([USER, PASSWORD, SECRET, "tok-en-99"], [(USER, PASSWORD)])
LEAKS = (PASSWORD, SECRET, "tok-en-99", USER, "/dlr/velip/")

FORMS = [
    ("raw", f"error: password {PASSWORD} secret {SECRET} token tok-en-99 user {USER}"),
    ("url", f"bad {quote(PASSWORD, safe='')} {quote(SECRET)} {quote(USER, safe='')}"),
    ("url lower hex", "x " + quote(PASSWORD, safe="").lower() + " y"),
    ("url plus", f"x {quote_plus(PASSWORD)} y"),
    ("html", f"<p>{html.escape(PASSWORD)} {html.escape(DLR)}</p>"),
    ("json", json.dumps({"echo": PASSWORD, "dlr": DLR})),
    ("json slashes", json.dumps({"dlr": DLR}).replace("/", "\\/")),
    ("basic", "Authorization: Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()),
    ("basic bare", "auth was " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode().rstrip("=")),
    ("kannel echo", "GET /cgi-bin/sendsms?" + urlencode({"username": USER, "password": PASSWORD, "to": "55",
                                                        "dlr-url": DLR}, quote_via=quote, safe="")),
    ("kannel echo plus", "/cgi-bin/sendsms?" + urlencode({"username": USER, "password": PASSWORD, "dlr-url": DLR})),
    ("html echo", html.escape("/cgi-bin/sendsms?" + urlencode({"username": USER, "password": PASSWORD,
                                                                "dlr-url": DLR}))),
    ("dlr raw", f"see {DLR} now"),
    ("dlr path only", f"404 /dlr/velip/{SECRET}"),
]


@pytest.mark.parametrize(("name", "text"), FORMS, ids=[f[0] for f in FORMS])
def test_every_form_is_masked(name: str, text: str) -> None:
    out = SCRUB(text) or ""
    for leak in LEAKS:
        for form in {leak, quote(leak, safe=""), quote_plus(leak), html.escape(leak), json.dumps(leak)[1:-1]}:
            assert form not in out, (name, form, out)
    assert "***" in out


@pytest.mark.parametrize(
    "text", ["NOK", "0: Accepted for delivery", '{"status":"error","reason":"invalid number"}', "", None],
)
def test_ordinary_answers_are_untouched(text: str | None) -> None:
    assert SCRUB(text) == text


def test_a_short_username_is_masked_where_it_is_a_parameter() -> None:
    scrub = Scrubber(["ku", "s3cr3t-pw"], [("ku", "s3cr3t-pw")])
    out = scrub("Error for /cgi-bin/sendsms?username=ku&password=s3cr3t-pw&to=55 (ku is fine as a word)") or ""
    assert "username=***" in out and "password=***" in out and "s3cr3t" not in out
    assert "(ku is fine as a word)" in out


def test_scrubber_for_a_catalog_covers_every_connection() -> None:
    catalog = Catalog(connections={
        "a": ConnectionConfig(name="a", kind="kannel", username="alpha-user", password="alpha-pass", dlr_secret="alpha-dlr"),
        "b": ConnectionConfig(name="b", kind="wavy", token="bravo-token-1", options={"headers": {"X-Key": "bravo-key"}}),
    })
    scrub = scrubber_for(catalog)
    assert scrubber_for(catalog) is scrub
    out = scrub("alpha-pass alpha-dlr bravo-token-1 bravo-key alpha-user") or ""
    assert out == "*** *** *** *** ***"
