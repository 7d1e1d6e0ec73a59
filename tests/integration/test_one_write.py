"""MakeSMS answers in one write (api/server.py OneWriteCycle): the status line, headers and
body leave in one `transport.write`, not uvicorn's two (head, then body), on the protocol
`pombo serve` runs. Other endpoints and HEAD keep uvicorn's own path. Measured on loopback by
wrapping each connection's transport and recording what the server writes."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from pombo.api.server import HeaderDeadlineProtocol
from tests.fakes.upstream import FakeUpstream
from tests.integration.gateway import TOKEN, provision, provisioning
from tests.live_server import serve


class _Recording:
    """A transport that records every write and passes everything through."""

    def __init__(self, transport: Any, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class RecordingProtocol(HeaderDeadlineProtocol):
    """The production protocol, each connection's writes recorded by its local port."""

    writes: ClassVar[dict[int, list[bytes]]] = {}
    lock = threading.Lock()

    def connection_made(self, transport: Any) -> None:
        peer_port = transport.get_extra_info("peername")[1]
        with self.lock:
            writes = self.writes.setdefault(peer_port, [])
        super().connection_made(_Recording(transport, writes))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('one-write')) / 'pombo.db'}"
    upstream = FakeUpstream()
    upstream.start_in_thread()
    try:
        doc = provisioning(upstream.url)
        for customer in doc["customers"]:
            customer["night_limit"] = None
        provision(url, doc)
        with serve(url, http=RecordingProtocol) as (host, port, _):
            yield host, port
    finally:
        upstream.stop_thread()


def _exchange(host: str, port: int, requests: list[bytes]) -> tuple[list[bytes], bytes]:
    """Send each request on one kept-alive socket, read each whole answer; the server's writes
    on that connection and everything read."""
    got = b""
    with socket.create_connection((host, port), timeout=10) as sock:
        local_port = sock.getsockname()[1]
        for request in requests:
            sock.sendall(request)
            answer = b""
            while b"\r\n\r\n" not in answer or len(answer) < _length(answer):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
            got += answer
    return RecordingProtocol.writes.get(local_port, []), got


def _length(answer: bytes) -> int:
    head, _, _ = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(head) + 4 + int(value)
    return len(answer) + 1


def _get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()


def test_a_makesms_answer_is_one_write_with_the_whole_response(gateway: tuple[str, int]) -> None:
    host, port = gateway
    requests = [_get(f"/api/v2/MakeSMS.php?tsid={TOKEN}&dest=2199{n:07d}&message=oi") for n in range(3)]
    writes, got = _exchange(host, port, requests)
    assert len(writes) == 3, writes  # one per answer, on one kept-alive connection
    for write in writes:
        assert write.startswith(b"HTTP/1.1 200 OK\r\n")
        head, _, body = write.partition(b"\r\n\r\n")
        assert b'"status_code":"0"' in body and body.endswith(b"}")
        lines = [line.lower() for line in head.split(b"\r\n")[1:]]
        assert f"content-length: {len(body)}".encode() in lines
        assert b"content-type: application/json; charset=utf-8" in lines
        assert any(line.startswith(b"date: ") for line in lines) and b"server: uvicorn" in lines
    assert got == b"".join(writes)


def test_a_rejection_is_one_write_with_its_http_status(gateway: tuple[str, int]) -> None:
    host, port = gateway
    writes, _ = _exchange(host, port, [_get("/api/v2/MakeSMS.php?tsid=nobody-at-all-here&dest=21991234567&message=oi")])
    assert len(writes) == 1
    assert writes[0].startswith(b"HTTP/1.1 401 Unauthorized\r\n") and b'"status_code":"1' in writes[0]


def test_connection_close_is_honoured_in_the_one_write(gateway: tuple[str, int]) -> None:
    host, port = gateway
    writes, got = _exchange(host, port, [_get(f"/api/v2/MakeSMS.php?tsid={TOKEN}&dest=21981234500&message=oi", "Connection: close\r\n")])
    assert len(writes) == 1 and b"\r\nconnection: close\r\n" in writes[0].lower()
    assert got == writes[0]


def test_other_endpoints_keep_uvicorn_s_way(gateway: tuple[str, int]) -> None:
    host, port = gateway
    writes, got = _exchange(host, port, [_get("/healthz")])
    assert len(writes) == 2 and writes[0].endswith(b"\r\n\r\n")  # head, then body
    assert got.startswith(b"HTTP/1.1 200 OK")
