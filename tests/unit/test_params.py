"""Request parsing at the edge (SPEC §1)."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from pombo.api.envelope import http_status
from pombo.api.params import BadBody, body_kind, credentials, decode_form, decode_json, header


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"a=1&b=2", {"a": "1", "b": "2"}),
        (b"a=1&a=2", {"a": "2"}),  # the last repeated key wins, as in PHP
        (b"message=ol%C3%A1+mundo", {"message": "olá mundo"}),
        (b"message=ol%E1", {"message": "olá"}),  # not UTF-8: ISO-8859-1
        (b"a=&b", {"a": "", "b": ""}),
        (b"", {}),
        (b"&&", {}),
    ],
)
def test_decode_form(raw: bytes, expected: dict[str, str]) -> None:
    assert decode_form(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"httpdup": 60, "dest": "11"}', {"httpdup": "60", "dest": "11"}),
        (b'{"httpdup": 60.0}', {"httpdup": "60"}),
        (b'{"cuttext": true, "x": null}', {"cuttext": "1"}),
        (b"  ", {}),
    ],
)
def test_decode_json(raw: bytes, expected: dict[str, str]) -> None:
    assert decode_json(raw) == expected


@pytest.mark.parametrize("raw", [b"{", b"[1,2]", b'"x"', b'{"a": {"b": 1}}', b'{"a": [1]}'])
def test_decode_json_rejects(raw: bytes) -> None:
    with pytest.raises(BadBody):
        decode_json(raw)


@pytest.mark.parametrize(
    ("code", "status"),
    [(0, 200), (1, 200), (100, 401), (102, 401), (199, 401), (220, 400), (300, 400), (400, 400), (413, 413)],
)
def test_http_status(code: int, status: int) -> None:
    assert http_status(code) == status


# ------------------------------------------------------------------ SPEC §1: bodies by type, or by look

@pytest.mark.parametrize(
    ("ctype", "body", "kind"),
    [
        ("application/json", b"{}", "json"),
        ("application/vnd.api+json", b"{}", "json"),
        ("multipart/form-data", b"--x", "multipart"),
        ("application/x-www-form-urlencoded", b"{a=1", "form"),
        ("", b'{"tsid": "x"}', "json"),
        ("", b' \r\n\t{"tsid": "x"}', "json"),
        ("", b"tsid=x&dest=1", "form"),
        ("text/plain", b'{"tsid": "x"}', "json"),
        ("text/plain", b"tsid=x", "form"),
        ("text/plain", b"[1, 2]", "form"),
        ("application/xml", b"<a/>", None),
        ("application/octet-stream", b"tsid=x", None),
        ("text/html", b"tsid=x", None),
        ("*/*", b"tsid=x", None),
    ],
)
def test_body_kind(ctype: str, body: bytes, kind: str | None) -> None:
    assert body_kind(ctype, body) == kind


def _request(headers: list[tuple[bytes, bytes]]) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": headers})


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"authorization", b"Bearer tok-one-0000001")],
        [(b"host", b"x"), (b"authorization", b"Basic bG9qYTpzM2NyZXQ="), (b"authorization", b"Bearer later")],
        [(b"authorization", "Bearer caf\u00e9".encode("latin-1"))],
        [(b"content-length", b"")],
        [(b"content-type", b"application/json; charset=utf-8"), (b"content-length", b"12")],
    ],
)
def test_header_reads_what_starlette_reads(headers: list[tuple[bytes, bytes]]) -> None:
    request = _request(headers)
    for name in ("authorization", "content-length", "content-type"):
        assert header(request, name.encode()) == request.headers.get(name)


def test_credentials_from_the_authorization_header() -> None:
    assert credentials(_request([(b"authorization", b"Bearer tok-one-0000001")]), {}, "127.0.0.1").token == "tok-one-0000001"
    assert credentials(_request([(b"authorization", b"Basic bG9qYTpzM2NyZXQ=")]), {}, "127.0.0.1").basic == ("loja", "s3cret")
    assert credentials(_request([]), {"tsid": " tok "}, "127.0.0.1").token == "tok"
