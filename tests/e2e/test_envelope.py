"""SPEC §1: endpoints, request parsing and the response envelope, seen from outside."""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.conftest import T, expect, expect_reject, http_for


def _ct(r) -> str:
    return r.headers.get("content-type", "").replace(" ", "").lower()


def test_ok_envelope_shape_and_content_type(pombo):
    """§1 Response: JSON, `application/json; charset=utf-8`, return.{status,status_code,cdls_id}
    with string code and id, HTTP 200 for code 0."""
    r = pombo.send(T["velip"], pombo.dest(), "envelope ok")
    assert r.status == 200, str(r)
    assert _ct(r) == "application/json;charset=utf-8", r.headers
    assert isinstance(r.json, dict) and set(r.json) >= {"return"}
    ret = r.ret
    assert ret["status"] == "OK"
    assert ret["status_code"] == "0"
    assert isinstance(ret["cdls_id"], str) and re.fullmatch(r"[1-9][0-9]*", ret["cdls_id"]), ret


def test_error_envelope_400_and_content_type(pombo):
    """§1 Response: a §4 refusal is HTTP 400, JSON with string code and cdls_id "0"."""
    r = pombo.send(T["velip"], "1133334444", "landline")
    expect_reject(r, 240)
    assert _ct(r) == "application/json;charset=utf-8", r.headers


def test_auth_error_is_401_with_json(pombo):
    """§1 Response: codes 100–199 answer HTTP 401, still the JSON envelope."""
    r = pombo.send(None, pombo.dest(), "no credentials", _kw={"ip": pombo.fresh_ip()})
    expect(r, 100)
    assert _ct(r) == "application/json;charset=utf-8", r.headers
    assert r.ret.get("cdls_id", "0") == "0"


@pytest.mark.parametrize("path", ["/api/v2/MakeSMS.php", "/api/v2/MakeSMS"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_makesms_paths_and_methods(pombo, path, method):
    """§1 Endpoints: MakeSMS answers on both paths, with GET and POST."""
    d = pombo.dest()
    params = {"tsid": T["velip"], "dest": d, "message": f"paths {method}"}
    if method == "GET":
        r = pombo.request("GET", path, query=params)
    else:
        r = pombo.request("POST", path, form=params)
    expect(r, 0)
    sent = pombo.wait_sent("kannel", "55" + d)
    assert len(sent) == 1 and sent[0].query["text"] == f"paths {method}"


@pytest.mark.parametrize("enc", ["query", "form", "multipart", "json"])
def test_parameter_encodings(pombo, enc):
    """§1 Request parsing: query string, urlencoded form, multipart and JSON bodies."""
    d = pombo.dest()
    text = f"encoding {enc} ação"
    r = pombo.api("MakeSMS", T["velip"], enc=enc, dest=d, message=text, ctid=f"enc-{enc}")
    expect(r, 0)
    sent = pombo.wait_sent("kannel", "55" + d)
    assert len(sent) == 1, sent
    assert sent[0].query["text"] == text
    m = pombo.message(T["velip"], r.ret["cdls_id"])
    assert m["ctid"] == f"enc-{enc}"


def test_json_numbers_and_strings_are_equal(pombo):
    """§1: JSON values may be numbers; `"httpdup": 60` and `"httpdup": "60"` are the same."""
    d = pombo.dest()
    r = pombo.request("POST", "/api/v2/MakeSMS.php", json={
        "tsid": T["velip"], "dest": int(d), "message": "json numbers", "httpdup": 60,
        "setbrasil": 1,
    })
    expect(r, 0)
    assert pombo.wait_sent("kannel", "55" + d)
    # the same destination inside the 60 s window, with httpdup as a string and as a number
    for hd in ("60", 60):
        r2 = pombo.request("POST", "/api/v2/MakeSMS.php", json={
            "tsid": T["velip"], "dest": d, "message": "json numbers 2", "httpdup": hd,
        })
        expect_reject(r2, 244)


def test_query_string_wins_over_body(pombo):
    """§1: a key in the query string wins over the same key in the body."""
    d_query, d_body = pombo.dest(), pombo.dest()
    r = pombo.request(
        "POST", "/api/v2/MakeSMS.php",
        query={"dest": d_query, "message": "from the query"},
        form={"tsid": T["velip"], "dest": d_body, "message": "from the body"},
    )
    expect(r, 0)
    sent = pombo.wait_sent("kannel", "55" + d_query)
    assert len(sent) == 1 and sent[0].query["text"] == "from the query"
    assert pombo.sent_to("kannel", "55" + d_body) == []


def test_query_string_wins_over_json_body(pombo):
    """§1: the query string also wins over a JSON body."""
    d_query, d_body = pombo.dest(), pombo.dest()
    r = pombo.request(
        "POST", "/api/v2/MakeSMS.php", query={"dest": d_query},
        json={"tsid": T["velip"], "dest": d_body, "message": "json body"},
    )
    expect(r, 0)
    assert len(pombo.wait_sent("kannel", "55" + d_query)) == 1
    assert pombo.sent_to("kannel", "55" + d_body) == []


@pytest.mark.parametrize(
    "fields, want",
    [
        ({"message": "M", "text": "T", "msg_text": "X"}, "M"),
        ({"text": "T", "msg_text": "X"}, "T"),
        ({"msg_text": "X"}, "X"),
        ({"message": "M", "msg_text": "X"}, "M"),
    ],
)
def test_message_aliases_preference(pombo, fields, want):
    """§3: `message`, aliases `text`, `msg_text`, in that order of preference."""
    d = pombo.dest()
    r = pombo.api("MakeSMS", T["velip"], dest=d, **fields)
    expect(r, 0)
    sent = pombo.wait_sent("kannel", "55" + d)
    assert len(sent) == 1 and sent[0].query["text"] == want


def test_utf8_form_body(pombo):
    """§1: a form body that is valid UTF-8 is decoded as UTF-8."""
    d = pombo.dest()
    body = f"tsid={T['velip']}&dest={d}&message=".encode() + "Pão quente".encode()
    r = pombo.request("POST", "/api/v2/MakeSMS.php", data=body,
                      content_type="application/x-www-form-urlencoded")
    expect(r, 0)
    sent = pombo.wait_sent("kannel", "55" + d)
    assert len(sent) == 1 and sent[0].query["text"] == "Pão quente"


def test_latin1_form_body(pombo):
    """§1: a form body that is not valid UTF-8 is decoded as ISO-8859-1 (0xE3 → "ã")."""
    d = pombo.dest()
    body = f"tsid={T['velip']}&dest={d}&message=".encode() + "Pão quente".encode("latin-1")
    assert b"\xe3" in body
    r = pombo.request("POST", "/api/v2/MakeSMS.php", data=body,
                      content_type="application/x-www-form-urlencoded")
    expect(r, 0)
    sent = pombo.wait_sent("kannel", "55" + d)
    assert len(sent) == 1 and sent[0].query["text"] == "Pão quente"
    assert pombo.message(T["velip"], r.ret["cdls_id"])["text"] == "Pão quente"


def test_unparseable_json_body_is_400_bad_request(pombo):
    """§1: a body that cannot be parsed → HTTP 400, "400", `bad request`; nothing sent."""
    r = pombo.request("POST", "/api/v2/MakeSMS.php",
                      data=b'{"tsid": "' + T["velip"].encode() + b'", "dest": ',
                      content_type="application/json")
    ret = expect(r, 400, "bad request")
    assert ret.get("cdls_id", "0") == "0"
    assert pombo.upstream.requests == []


def test_oversized_body_is_413(pombo):
    """§1: a body larger than 64 KiB → HTTP 413, "413", `request too large`."""
    d = pombo.dest()
    r = pombo.request("POST", "/api/v2/MakeSMS.php",
                      form={"tsid": T["velip"], "dest": d, "message": "a" * (70 * 1024)})
    ret = expect(r, 413, "request too large")
    assert ret.get("cdls_id", "0") == "0"
    assert pombo.sent_to("kannel", "55" + d) == []


def test_body_just_under_64k_is_not_413(pombo):
    """§1: the 413 limit is 64 KiB; a 60 000-character body is parsed and checked (238)."""
    r = pombo.send(T["velip"], pombo.dest(), "a" * 60_000)
    expect_reject(r, 238, "Text 60000 ch more than 160 ch")


def _odd_requests(pombo):
    tok = T["velip"]
    d = pombo.dest()
    return [
        ("GET", "/api/v2/MakeSMS.php", {}),
        ("POST", "/api/v2/MakeSMS.php", {"data": b"[1, 2, 3]", "content_type": "application/json"}),
        ("POST", "/api/v2/MakeSMS.php", {"data": b'"just a string"',
                                         "content_type": "application/json"}),
        ("POST", "/api/v2/MakeSMS.php", {"data": b"", "content_type": "application/json"}),
        ("POST", "/api/v2/MakeSMS.php", {"json": {"tsid": tok, "dest": {"a": 1},
                                                  "message": ["x"]}}),
        ("POST", "/api/v2/MakeSMS.php", {"json": {"tsid": tok, "dest": None, "message": None}}),
        ("POST", "/api/v2/MakeSMS.php", {"json": {"tsid": tok, "dest": d, "message": "x",
                                                  "httpdup": 1.5, "setbrasil": True}}),
        ("POST", "/api/v2/MakeSMS.php", {"form": {"tsid": tok, "dest": pombo.dest(),
                                                  "message": "odd", "httpdup": "abc",
                                                  "setbrasil": "zz", "cuttext": "maybe"}}),
        ("POST", "/api/v2/MakeSMS.php", {"form": {"tsid": tok, "dest": "9" * 1000,
                                                  "message": "odd"}}),
        ("POST", "/api/v2/MakeSMS.php", {"form": {"tsid": tok, "dest": pombo.dest(),
                                                  "message": "emoji 😀 \x00 nul",
                                                  "ctid": "c" * 1000}}),
        ("POST", "/api/v2/MakeSMS.php", {"data": b"--x\r\nbroken",
                                         "content_type": "multipart/form-data"}),
        ("POST", "/api/v2/MakeSMS.php", {"data": b"\xff\xfe\x00garbage",
                                         "content_type": "application/octet-stream"}),
        ("POST", "/api/v2/GetSMSStatus.php", {"form": {"tsid": tok, "cdls_id": "abc"}}),
        ("POST", "/api/v2/GetSMSStatus.php", {"form": {"tsid": tok, "date_start": "garbage",
                                                       "date_end": "2024-13-45",
                                                       "maxreg": "-1", "last_id": "x"}}),
        ("POST", "/api/v2/GetSMSStatus.php", {"form": {"tsid": tok, "maxreg": "abc"}}),
        ("POST", "/api/v2/GetSMSStatus.php", {"form": {"tsid": tok, "cdls_id": "9" * 40}}),
        ("POST", "/api/v2/GetBalance.php", {"data": b"a=b", "content_type": "multipart/form-data"}),
        ("GET", "/api/v2/GetUserID.php", {"query": {"tsid": "x" * 5000}}),
        ("POST", "/api/v2/GetUserID.php", {"headers": {"Authorization": "Basic !!!notbase64"}}),
        ("POST", "/api/v2/GetUserID.php", {"headers": {"Authorization": "Bearer"}}),
    ]


def test_never_a_500(pombo):
    """§1: odd, malformed or hostile input never yields a 5xx; always the JSON envelope with
    the HTTP status its code calls for."""
    bad = []
    for method, path, kw in _odd_requests(pombo):
        r = pombo.request(method, path, ip=pombo.fresh_ip(), **kw)
        data = r.json
        ok = (
            r.status < 500
            and isinstance(data, dict)
            and isinstance(data.get("return"), dict)
            and isinstance(data["return"].get("status_code"), str)
            and data["return"]["status_code"].isdigit()
            and r.status == http_for(int(data["return"]["status_code"]))
        )
        if not ok:
            bad.append(f"{method} {path} {kw!r:.160}: {r}")
    assert not bad, "\n".join(bad)


def test_healthz(pombo):
    """§1: /healthz answers 200."""
    assert pombo.request("GET", "/healthz").status == 200


def test_openapi_document(pombo):
    """§1: /openapi.json is the OpenAPI document and describes MakeSMS."""
    r = pombo.request("GET", "/openapi.json")
    assert r.status == 200, str(r)
    doc = r.json
    assert isinstance(doc, dict) and "openapi" in doc
    assert "/api/v2/MakeSMS.php" in doc.get("paths", {}), list(doc.get("paths", {}))


def test_docs_page(pombo):
    """§1: /docs is an HTML page."""
    r = pombo.request("GET", "/docs")
    assert r.status == 200
    assert "text/html" in r.headers.get("content-type", "")
    assert "<html" in r.text.lower()


def test_metrics(pombo):
    """§1: /metrics serves Prometheus text."""
    pombo.send(T["velip"], pombo.dest(), "metrics")
    r = pombo.request("GET", "/metrics")
    assert r.status == 200
    assert r.headers.get("content-type", "").startswith("text/plain"), r.headers
    assert "# TYPE" in r.text


@pytest.mark.parametrize("name", ["GetUserID", "GetSMSStatus", "GetBalance"])
def test_bad_body_and_oversize_on_every_endpoint(pombo, name):
    """§1: request parsing rules hold for all /api/v2/*: unparseable → 400 `bad request`,
    over 64 KiB → 413 `request too large`."""
    path = f"/api/v2/{name}.php"
    r = pombo.request("POST", path, data=b'{"tsid": ', content_type="application/json")
    expect(r, 400, "bad request")
    r = pombo.request("POST", path, form={"tsid": T["velip"], "pad": "z" * (66 * 1024)})
    expect(r, 413, "request too large")


def test_json_with_charset_parameter(pombo):
    """§1: JSON is detected from Content-Type, parameters such as charset included."""
    d = pombo.dest()
    body = json.dumps({"tsid": T["velip"], "dest": d, "message": "json charset ação"},
                      ensure_ascii=False).encode()
    r = pombo.request("POST", "/api/v2/MakeSMS.php", data=body,
                      content_type="application/json; charset=UTF-8")
    expect(r, 0)
    assert pombo.wait_sent("kannel", "55" + d)[0].query["text"] == "json charset ação"


def test_latin1_form_body_with_declared_charset(pombo):
    """§1: a non-UTF-8 form body is read as ISO-8859-1 whatever the charset parameter says."""
    d = pombo.dest()
    body = f"tsid={T['velip']}&dest={d}&message=".encode() + "Informação".encode("latin-1")
    r = pombo.request("POST", "/api/v2/MakeSMS.php", data=body,
                      content_type="application/x-www-form-urlencoded; charset=ISO-8859-1")
    expect(r, 0)
    assert pombo.wait_sent("kannel", "55" + d)[0].query["text"] == "Informação"


def test_json_number_ctid_is_the_same_as_string(pombo):
    """§1: JSON numbers and strings are the same value: a ctid sent as a JSON number is found
    by the same ctid as a string."""
    ctid = 700000 + int(pombo.dest()[-5:])
    r = pombo.request("POST", "/api/v2/MakeSMS.php", json={
        "tsid": T["velip"], "dest": pombo.dest(), "message": "ctid numerico", "ctid": ctid,
        "cp_id": 42,
    })
    cdls = expect(r, 0)["cdls_id"]
    found = pombo.messages(T["velip"], ctid=str(ctid))
    assert [str(m["cdls_id"]) for m in found] == [cdls], found
    m = pombo.message(T["velip"], cdls)
    assert str(m["ctid"]) == str(ctid) and str(m["cp_id"]) == "42"
