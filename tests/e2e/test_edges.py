"""Issue 16, black box: the edges an attacker and a careless client reach (rurl, raw answers,
bodies of odd types, slow clients)."""

from __future__ import annotations

import contextlib
import json
import socket
import time

from tests.e2e.conftest import SECRETS, T, spawn

INTERNAL = ["http://127.0.0.1:9163/internal/admin", "http://[::1]:9163/", "http://169.254.169.254/latest/meta-data/",
            "http://10.1.2.3/hook", "http://localhost:9163/x", "http://[::ffff:127.0.0.1]/"]


def test_a_rurl_to_an_internal_address_is_400_and_charges_nothing(pombo):
    before = pombo.balance(T["velip"])
    for rurl in INTERNAL:
        r = pombo.send(T["velip"], pombo.dest(), rurl=rurl)
        assert r.status == 400, (rurl, str(r))
        assert r.ret == {"status": "rurl not allowed", "status_code": "400", "cdls_id": "0"}, (rurl, str(r))
    assert pombo.balance(T["velip"]) == before


def test_a_rurl_to_a_public_name_is_accepted(pombo):
    r = pombo.send(T["velip"], pombo.dest(), rurl="http://callbacks.example.invalid/x")
    assert r.status == 200 and r.code == "0", str(r)


def test_text_plain_and_no_content_type_are_read_by_their_look(pombo):
    def form() -> bytes:
        return f"tsid={T['velip']}&dest={pombo.dest()}&message=plain".encode()

    def as_json() -> bytes:
        return json.dumps({"tsid": T["velip"], "dest": pombo.dest(), "message": "json"}).encode()

    # http.client adds no Content-Type of its own: None sends none
    for body, ctype in ((form(), "text/plain"), (as_json(), "text/plain; charset=utf-8"),
                        (b"  \n" + as_json(), None), (form(), None)):
        r = pombo.request("POST", "/api/v2/MakeSMS.php", data=body, content_type=ctype)
        assert r.status == 200 and r.code == "0", (ctype, body[:30], str(r))


def test_a_type_pombo_cannot_read_is_400_naming_it(pombo):
    body = f"tsid={T['velip']}&dest={pombo.dest()}&message=x".encode()
    for ctype in ("application/xml", "application/octet-stream", "text/html; charset=utf-8"):
        r = pombo.request("POST", "/api/v2/MakeSMS.php", data=body, content_type=ctype, ip=pombo.fresh_ip())
        assert r.status == 400, (ctype, str(r))
        assert r.ret["status_code"] == "400" and r.ret["status"] == f"unsupported content type: {ctype.split(';')[0]}"


def test_an_upstream_page_echoing_the_request_never_reaches_the_customer(pombo):
    pombo.upstream.behave("kannel", mode="echo")
    r = pombo.send(T["velip"], pombo.dest())
    assert r.code == "300", str(r)
    message = pombo.message(T["velip"], r.ret["cdls_id"])
    log = message["return_log"]
    assert "500 Internal Error" in log and "sendsms" in log, log
    for leak in ("kpass", "kuser", SECRETS["velip"], "%2Fdlr%2F", "/dlr/velip"):
        assert leak not in log, (leak, log)


# -------------------------------------------------------------------------------- slow clients


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    sock.settimeout(15)
    return sock


def _trickle(sock: socket.socket, data: bytes, every: float, limit: float) -> tuple[float, bytes]:
    """Send one byte every `every` seconds until the server answers or closes, or `limit`
    passes; (seconds it took, what the server sent)."""
    start = time.monotonic()
    sock.settimeout(every)
    for i in range(len(data)):
        try:
            sock.sendall(data[i:i + 1])
        except OSError:
            break
        try:
            got = sock.recv(65536)
            return time.monotonic() - start, _rest_of_answer(sock, got)  # b"": closed
        except TimeoutError:
            pass
        except OSError:
            return time.monotonic() - start, b""
        if time.monotonic() - start > limit:
            break
    return time.monotonic() - start, b"still open"


def _rest_of_answer(sock: socket.socket, got: bytes) -> bytes:
    """An answer's first bytes completed to its Content-Length (head and body may come apart)."""
    sock.settimeout(10)
    while got:
        head, sep, body = got.partition(b"\r\n\r\n")
        if sep:
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            if len(body) >= length:
                break
        more = sock.recv(65536)
        if not more:
            break
        got += more
    return got


def _answer(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_slow_clients(pombo):
    with spawn(pombo, POMBO_HEADER_TIMEOUT="3", POMBO_BODY_TIMEOUT="3") as (client, _):
        port = client.port
        # headers, one byte every 2 s: the connection is answered 408 and closed
        sock = _connect(port)
        took, got = _trickle(sock, b"POST /api/v2/MakeSMS.php HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40, 2, 20)
        sock.close()
        assert got != b"still open" and took < 10, (took, got)
        if got:
            assert _answer(got)[0] == 408
        # a kept-alive connection: the next request's headers have their whole time from its
        # first byte (not from the connection, nor from the first request), then 408
        sock = _connect(port)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _answer(_rest_of_answer(sock, sock.recv(65536)))[0] == 200
        time.sleep(2)  # the connection's first deadline falls inside the next request's headers
        took, got = _trickle(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40, 0.5, 20)
        sock.close()
        assert 2.5 <= took < 6 and _answer(got)[0] == 408, (took, got)
        # the body, one byte every 2 s: 408 in the envelope
        body = f"tsid={T['velip']}&dest=11987654321&message=slow".encode()
        sock = _connect(port)
        sock.sendall(b"POST /api/v2/MakeSMS.php HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
                     b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        took, got = _trickle(sock, body, 2, 20)
        sock.close()
        assert took < 10 and got not in (b"", b"still open"), (took, got)
        assert _answer(got) == (408, {"return": {"status": "request timeout", "status_code": "408", "cdls_id": "0"}})
        # a body shorter than its Content-Length, then silence: 408
        sock = _connect(port)
        sock.sendall(b"POST /api/v2/MakeSMS.php HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
                     b"\r\nContent-Length: 500\r\n\r\ntsid=abc&dest=1")
        start = time.monotonic()
        got = _rest_of_answer(sock, sock.recv(65536))
        sock.close()
        assert time.monotonic() - start < 8 and _answer(got)[0] == 408, got
        # headers without end, sent fast: 431 and closed, not read into memory for ever
        sock = _connect(port)
        with contextlib.suppress(OSError):  # the server may close while we are still sending
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 400_000)
        try:
            got = _rest_of_answer(sock, sock.recv(65536))
        except ConnectionResetError:  # closed while our bytes were still arriving: the 431 may be lost
            got = b""
        sock.close()
        assert got == b"" or _answer(got)[0] == 431, got[:200]
        # and the server still serves everyone else
        assert client.send(T["velip"], client.dest()).code == "0"
