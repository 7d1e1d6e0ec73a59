"""Black-box end-to-end harness: the real `pombo` CLI and server against a fake upstream.

One server for the whole session (SPEC §9/§10 drive it):

* a FakeUpstream (tests/fakes/upstream.py) in a thread stands in for every provider;
* a provisioning YAML modelled on SPEC §9 is written to a temporary directory and loaded
  with `pombo load`, after `pombo db upgrade`;
* `pombo serve` runs on a free port; the tests talk to it over real HTTP only.

Failed authentications (codes 100/102/140) count per client IP (SPEC §2: 15 code-102 answers
in 10 minutes block an IP for good). Every test that expects such an answer therefore calls the
server from an IP of its own (`client.fresh_ip()`, anything in 127.0.0.0/8 reaches loopback),
so the ordinary traffic from 127.0.0.1 is never blocked.

`spawn()` starts further servers on the same database (a `--workers 3` one for the concurrency
tests, ones with other POMBO_* settings, and one that is SIGKILLed for the crash test).

Environment knobs: POMBO_E2E_WORKERS=N runs the session server with `--workers N`;
the crash-recovery test (test_crash.py) is marked `slow`: `make test-slow` runs it.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import itertools
import json as jsonlib
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.upstream import FakeUpstream, pick_free_port

POMBO = Path(sys.executable).parent / "pombo"

ACK_TIMEOUT = 1
FINAL_TIMEOUT = 4

# --------------------------------------------------------------------------------------------
# Provisioned secrets (tokens are 10–64 characters, SPEC §2)
# --------------------------------------------------------------------------------------------

T = {
    "adm": "tok-adm-customer-0002",
    "rev": "tok-reseller-000010",
    "wavy": "tok-wavy-customer-0011",
    "tww": "tok-tww-customer-00012",
    "velip": "tok-velip-customer-0013",
    "matrix": "tok-matrix-customer-014",
    "nosms": "tok-nosms-customer-0015",
    "inactive": "tok-inactive-cust-0016",
    "blocked": "tok-blocked-cust-00017",
    "ipdeny": "tok-ipdeny-customer-018",
    "ipallow": "tok-ipallow-customer-19",
    "flash": "tok-flash-customer-0020",
    "night": "tok-night-customer-0021",
    "notariff": "tok-notariff-cust-0022",
    "revnotariff": "tok-revnotariff-c-0023",
    "nocredit": "tok-nocredit-cust-0024",
    "revnocredit": "tok-revnocredit-c-0025",
    "conc": "tok-concurrency-c-0026",
    "limit50": "tok-limit50-cust-00027",
    "wr": "tok-waitresp-cust-0029",
    "nocredit_notariff": "tok-zero-notariff-0032",
    "postpaid": "tok-postpaid-cust-0033",
    "rev40": "tok-reseller-000040",
    "money": "tok-money-customer-0041",
    "pager": "tok-pager-customer-0042",
    "rev43": "tok-reseller-000043",
    "shared_a": "tok-shared-a-cust-0044",
    "shared_b": "tok-shared-b-cust-0045",
    "cli": "tok-cli-customer-000046",
    "small": "tok-small-balance-0047",
    "httpq": "tok-http-query-cust-48",
    "httpf": "tok-http-form-cust-049",
    "chain": "tok-chain-customer-050",
    "rev51": "tok-reseller-000051",
    "rev52": "tok-reseller-000052",
    "deepnotariff": "tok-deep-notariff-053",
    "deepnocredit": "tok-deep-nocredit-060",
    "crash": "tok-crash-customer-059",
    "night1": "tok-night-limit1-c-061",
    "night3a": "tok-night-limit3-c-062",
    "night3b": "tok-night-limit3-c-063",
    "fold": "tok-fold-accents-c-080",
    # issue 13: what wavy and http connections receive against what is charged
    "wavykeep": "tok-wavy-keep-acc-c-081",
    "wavyfold": "tok-wavy-fold-acc-c-082",
    "httpkeep": "tok-http-keep-acc-c-083",
    "httpfold": "tok-http-fold-acc-c-084",
}

USERS = {
    "adm": ("admuser", "adm-pass-1"),
    "loja": ("loja", "s3cret"),  # customer 11, send
    "viewer": ("viewer", "v1ewer-pass"),  # customer 11, no send
    "trial": ("trialuser", "trial-pass"),  # customer 11, for the 132 test
    "bloq": ("bloq", "bloq-pass"),  # customer 17 (tokens_blocked), send
    "velip": ("velipuser", "velip-pass"),  # customer 13, send
}

SECRETS = {"velip": "velip-dlr-secret", "wavy": "wavy-dlr-secret", "tww": "tww-dlr-secret"}

TEXT_FILTER = ["banco do brasil", "bradesco", "itau", "febraban", "pix", "cartao bloqueado"]
MODEL = "Seu codigo {code} do Banco do Brasil"

BLOCKED_BY_CUSTOMER = "5511988887777"  # customer 11's block list
BLOCKED_BY_RESELLER = "5511977776666"  # reseller 10's block list
BLOCKED_BY_TOP = "5511966665555"  # reseller 52's block list (two levels above customer 50)


def _tariff(customer: int, prefix: str, value: str, connection: str | None = None) -> dict:
    row: dict[str, Any] = {"customer": customer, "prefix": prefix, "value": value}
    if connection:
        row["connection"] = connection
    return row


def provisioning(upstream_url: str) -> dict[str, Any]:
    """The session's provisioning document (SPEC §9 schema)."""
    timeouts = {"ack_timeout": ACK_TIMEOUT, "final_timeout": FINAL_TIMEOUT}
    connections = [
        {
            "name": "velip",
            "kind": "kannel",
            "url": upstream_url,
            "username": "kuser",
            "password": "kpass",
            "dlr_secret": SECRETS["velip"],
            **timeouts,
        },
        {
            "name": "wavy",
            "kind": "wavy",
            "url": upstream_url,
            "username": "wuser",
            "token": "wtoken-123",
            "dlr_secret": SECRETS["wavy"],
            **timeouts,
        },
        {
            "name": "tww",
            "kind": "tww",
            "url": upstream_url + "/reluzcap/wsreluzcap.asmx",
            "username": "NUMUSU",
            "password": "SENHA",
            "dlr_secret": SECRETS["tww"],
            **timeouts,
        },
        {
            "name": "matrix",
            "kind": "http",
            "url": upstream_url,
            "method": "POST",
            "path": "/api/send",
            "json": {"to": "{dest}", "body": "{text}", "ref": "{id}"},
            "ok": r'"status"\s*:\s*"ok"',
            "id": r'"id"\s*:\s*"([^"]+)"',
            **timeouts,
        },
        {
            "name": "httpq",
            "kind": "http",
            "url": upstream_url,
            "method": "GET",
            "path": "/q/send",
            "query": {"to": "{dest}", "msg": "{text}", "ref": "{id}", "sender": "{from}"},
            "ok": r'"status"\s*:\s*"ok"',
            "id": r'"id"\s*:\s*"([^"]+)"',
            **timeouts,
        },
        {
            "name": "httpf",
            "kind": "http",
            "url": upstream_url,
            "method": "POST",
            "path": "/f/send",
            "form": {"to": "{dest}", "msg": "{text}", "ref": "{id}", "sender": "{from}"},
            "ok": "ok",
            **timeouts,
        },
        {
            "name": "flash",
            "kind": "http",
            "url": upstream_url,
            "method": "POST",
            "path": "/flash/send",
            "form": {"to": "{dest}", "msg": "{text}"},
            "ok": "ok",
            "enabled": False,
            **timeouts,
        },
    ]
    costs = [
        {"connection": "velip", "prefix": "55", "cost": "0.0100"},
        {"connection": "wavy", "prefix": "55", "cost": "0.0300"},
        {"connection": "tww", "prefix": "55", "cost": "0.0250"},
        {"connection": "matrix", "prefix": "55", "cost": "0.0200"},
        {"connection": "velip", "prefix": "5511", "cost": "0.0090"},
    ]

    def cust(cid: int, name: str, token_key: str | None, **kw: Any) -> dict[str, Any]:
        c: dict[str, Any] = {"id": cid, "name": name}
        if token_key:
            c["tokens"] = [T[token_key]]
        c.update(kw)
        return c

    def users(*keys: str, send: bool = True) -> list[dict[str, Any]]:
        return [{"username": USERS[k][0], "password": USERS[k][1], "send": send} for k in keys]

    customers = [
        cust(2, "Velip ADM", "adm", balance="1000.00", users=users("adm")),
        cust(10, "Revenda Sul", "rev", balance="500.00", credit_limit="0",
             blocklist=[BLOCKED_BY_RESELLER]),
        cust(
            11, "Loja Wavy", "wavy", parent=10, sms_provider="wavy", balance="20.00",
            night_limit=300, night_window="22:00-06:00", max_length=160, active=True,
            tokens_blocked=False,
            users=users("loja", "trial") + users("viewer", send=False),
            ip_allowlist=[], blocklist=[BLOCKED_BY_CUSTOMER], models=[MODEL],
        ),
        cust(12, "Loja TWW", "tww", parent=10, sms_provider="tww", balance="20.00"),
        cust(13, "Loja Velip", "velip", parent=10, balance="50.00", users=users("velip")),
        cust(14, "Loja Matrix", "matrix", parent=10, sms_provider="matrix", balance="20.00"),
        cust(15, "Sem SMS", "nosms", parent=10, sms=False, balance="20.00"),
        cust(16, "Inativa", "inactive", parent=10, active=False, balance="20.00"),
        cust(17, "Tokens bloqueados", "blocked", parent=10, tokens_blocked=True,
             balance="20.00", users=users("bloq")),
        cust(18, "IP restrito", "ipdeny", parent=10, balance="20.00",
             ip_allowlist=["10.0.0.0/8"]),
        cust(19, "IP exato", "ipallow", parent=10, balance="20.00",
             ip_allowlist=["127.0.0.77", "127.0.8.0/24"]),
        cust(20, "Rota flash", "flash", parent=10, sms_provider="flash", balance="20.00"),
        cust(21, "Noturna", "night", balance="20.00", night_window="00:00-23:59",
             night_limit=2),
        cust(22, "Sem tarifa", "notariff", parent=10, balance="20.00"),
        cust(30, "Revenda sem tarifa", None, balance="100.00"),
        cust(23, "Revenda sem tarifa - cliente", "revnotariff", parent=30, balance="20.00"),
        cust(24, "Sem saldo", "nocredit", parent=10, balance="0"),
        cust(31, "Revenda sem saldo", None, balance="0"),
        cust(25, "Revenda sem saldo - cliente", "revnocredit", parent=31, balance="20.00"),
        cust(26, "Concorrencia", "conc", balance="0.5000"),
        cust(27, "Limite 50", "limit50", parent=10, balance="20.00", max_length=50),
        cust(29, "Espera", "wr", balance="10.00"),
        cust(32, "Zero sem tarifa", "nocredit_notariff", balance="0"),
        cust(33, "Pos-pago", "postpaid", balance="0", credit_limit="-0.2000"),
        cust(40, "Revenda Norte", "rev40", balance="100.00"),
        cust(41, "Loja Dinheiro", "money", parent=40, balance="10.00", max_length=1000),
        cust(42, "Loja Paginas", "pager", balance="10.00"),
        cust(43, "Revenda Curta", "rev43", balance="0.2000"),
        cust(44, "Loja Partilha A", "shared_a", parent=43, balance="10.00"),
        cust(45, "Loja Partilha B", "shared_b", parent=43, balance="10.00"),
        cust(46, "Loja CLI", "cli", balance="1.00"),
        cust(47, "Saldo curto", "small", balance="0.0500"),
        cust(48, "Loja HTTP query", "httpq", sms_provider="httpq", balance="10.00"),
        cust(49, "Loja HTTP form", "httpf", sms_provider="httpf", balance="10.00"),
        cust(52, "Revenda Topo", "rev52", balance="100.00", blocklist=[BLOCKED_BY_TOP]),
        cust(51, "Revenda Meio", "rev51", parent=52, balance="100.00"),
        cust(50, "Loja Cadeia", "chain", parent=51, balance="10.00"),
        cust(55, "Topo sem tarifa", None, balance="100.00"),
        cust(54, "Meio com tarifa", None, parent=55, balance="100.00"),
        cust(53, "Cadeia sem tarifa", "deepnotariff", parent=54, balance="10.00"),
        cust(58, "Topo sem saldo", None, balance="0"),
        cust(57, "Meio com saldo", None, parent=58, balance="100.00"),
        cust(60, "Cadeia sem saldo", "deepnocredit", parent=57, balance="10.00"),
        cust(59, "Queda", "crash", balance="10.00"),
        cust(80, "Acentos dobrados", "fold", parent=10, balance="10.00", accents="fold"),
        cust(81, "Wavy acentos", "wavykeep", sms_provider="wavy", balance="10.00"),
        cust(82, "Wavy dobra", "wavyfold", sms_provider="wavy", balance="10.00", accents="fold"),
        cust(83, "HTTP acentos", "httpkeep", sms_provider="matrix", balance="10.00"),
        cust(84, "HTTP dobra", "httpfold", sms_provider="matrix", balance="10.00", accents="fold"),
        cust(61, "Noturna 1", "night1", balance="10.00", night_window="00:00-23:59",
             night_limit=1),
        cust(62, "Noturna 3a", "night3a", balance="10.00", night_window="00:00-23:59",
             night_limit=3),
        cust(63, "Noturna 3b", "night3b", balance="10.00", night_window="00:00-23:59",
             night_limit=3),
    ]
    tariffs = [
        _tariff(2, "55", "0.0100"),
        _tariff(10, "55", "0.0500"),
        _tariff(10, "1", "0.1500"),
        _tariff(11, "55", "0.0800"),
        _tariff(11, "5511", "0.0700", "wavy"),
        _tariff(12, "55", "0.0800"),
        _tariff(80, "55", "0.0800"),
        *[_tariff(c, "55", "0.0800") for c in (81, 82, 83, 84)],
        _tariff(13, "55", "0.0900"),
        _tariff(13, "1", "0.2000"),
        _tariff(14, "55", "0.0800"),
        _tariff(15, "55", "0.0800"),
        _tariff(16, "55", "0.0800"),
        _tariff(17, "55", "0.0800"),
        _tariff(18, "55", "0.0800"),
        _tariff(19, "55", "0.0800"),
        _tariff(20, "55", "0.0800"),
        _tariff(21, "55", "0.0800"),
        _tariff(23, "55", "0.0800"),
        _tariff(24, "55", "0.0800"),
        _tariff(31, "55", "0.0500"),
        _tariff(25, "55", "0.0800"),
        _tariff(26, "55", "0.1000"),
        _tariff(27, "55", "0.0800"),
        _tariff(29, "55", "0.1000"),
        _tariff(33, "55", "0.1000"),
        _tariff(40, "55", "0.0400"),
        _tariff(41, "55", "0.1000"),
        _tariff(41, "5521", "0.0900"),
        _tariff(41, "552199", "0.0850", "velip"),
        _tariff(41, "5531", "0.0700"),
        _tariff(41, "5531", "0.0750", "velip"),
        _tariff(41, "5531", "0.0100", "wavy"),
        _tariff(41, "55319", "0.0050", "wavy"),
        _tariff(42, "55", "0.1000"),
        _tariff(43, "55", "0.0500"),
        _tariff(44, "55", "0.1000"),
        _tariff(45, "55", "0.1000"),
        _tariff(46, "55", "0.1000"),
        _tariff(47, "55", "0.1000"),
        _tariff(2, "55", "0.0200", "matrix"),
        _tariff(48, "55", "0.1000"),
        _tariff(49, "55", "0.1000"),
        _tariff(52, "55", "0.0100"),
        _tariff(51, "55", "0.0200"),
        _tariff(50, "55", "0.1000"),
        _tariff(54, "55", "0.0200"),
        _tariff(53, "55", "0.1000"),
        _tariff(58, "55", "0.0100"),
        _tariff(57, "55", "0.0200"),
        _tariff(60, "55", "0.1000"),
        _tariff(59, "55", "0.1000"),
        _tariff(61, "55", "0.1000"),
        _tariff(62, "55", "0.1000"),
        _tariff(63, "55", "0.1000"),
    ]
    return {
        "connections": connections,
        "costs": costs,
        "text_filter": TEXT_FILTER,
        "customers": customers,
        "tariffs": tariffs,
    }


# --------------------------------------------------------------------------------------------
# HTTP client
# --------------------------------------------------------------------------------------------


@dataclass
class Resp:
    status: int
    headers: dict[str, str]
    body: bytes
    _json: Any = field(default=None, repr=False)
    _parsed: bool = field(default=False, repr=False)

    @property
    def json(self) -> Any:
        if not self._parsed:
            self._parsed = True
            try:
                self._json = jsonlib.loads(self.body)
            except ValueError:
                self._json = None
        return self._json

    @property
    def ret(self) -> dict[str, Any]:
        data = self.json
        assert isinstance(data, dict) and isinstance(data.get("return"), dict), (
            f"no 'return' object in HTTP {self.status} answer: {self.body[:300]!r}"
        )
        return data["return"]

    @property
    def code(self) -> str:
        return self.ret.get("status_code")

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.text[:400]}"


def multipart_body(fields: dict[str, Any]) -> tuple[bytes, str]:
    boundary = "----pombo-e2e-" + uuid.uuid4().hex
    parts = []
    for k, v in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
            + str(v).encode("utf-8")
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


class Pombo:
    """A small client for the running gateway plus access to its CLI and the fake upstream."""

    def __init__(self, host: str, port: int, env: dict[str, str], workdir: Path,
                 upstream: FakeUpstream, log_path: Path) -> None:
        self.host = host
        self.port = port
        self.base = f"http://{host}:{port}"
        self.env = env
        self.workdir = workdir
        self.upstream = upstream
        self.log_path = log_path
        self._ips = itertools.count(1)
        self._dests = itertools.count(10_000_000)
        self._lock = threading.Lock()

    # -- unique things ----------------------------------------------------------------------

    def fresh_ip(self) -> str:
        """A loopback address no other test uses (failed-auth counters are per IP)."""
        with self._lock:
            n = next(self._ips)
        return f"127.0.{100 + n // 250}.{1 + n % 250}"

    def dest(self, ddd: str = "11") -> str:
        """A fresh valid mobile as DDD + 9 digits (normalised form is '55' + this)."""
        with self._lock:
            n = next(self._dests)
        return f"{ddd}9{n:08d}"

    # -- HTTP -------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        form: dict[str, Any] | None = None,
        json: Any = None,
        multipart: dict[str, Any] | None = None,
        data: bytes | None = None,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
        basic: tuple[str, str] | None = None,
        bearer: str | None = None,
        ip: str | None = None,
        timeout: float = 20.0,
    ) -> Resp:
        hdrs = dict(headers or {})
        body: bytes | None = data
        if form is not None:
            body = urllib.parse.urlencode({k: str(v) for k, v in form.items()}).encode()
            content_type = content_type or "application/x-www-form-urlencoded"
        elif json is not None:
            body = jsonlib.dumps(json).encode()
            content_type = content_type or "application/json"
        elif multipart is not None:
            body, content_type = multipart_body(multipart)
        if content_type:
            hdrs["Content-Type"] = content_type
        if basic is not None:
            cred = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
            hdrs["Authorization"] = f"Basic {cred}"
        if bearer is not None:
            hdrs["Authorization"] = f"Bearer {bearer}"
        url = path
        if query:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(
                {k: str(v) for k, v in query.items()}
            )
        conn = http.client.HTTPConnection(
            self.host, self.port, timeout=timeout,
            source_address=(ip, 0) if ip else None,
        )
        try:
            conn.request(method, url, body=body, headers=hdrs)
            r = conn.getresponse()
            raw = r.read()
            return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, raw)
        finally:
            conn.close()

    def api(self, name: str, token: str | None = None, *, method: str = "POST",
            enc: str = "form", **params: Any) -> Resp:
        """Call /api/v2/{name}.php with params sent as `enc` (form|json|query|multipart)."""
        if token is not None:
            params = {"tsid": token, **params}
        kw = dict(params.pop("_kw", {}))
        path = f"/api/v2/{name}.php"
        if method == "GET" or enc == "query":
            return self.request(method, path, query=params, **kw)
        if enc == "json":
            return self.request(method, path, json=params, **kw)
        if enc == "multipart":
            return self.request(method, path, multipart=params, **kw)
        return self.request(method, path, form=params, **kw)

    def send(self, token: str | None, dest: str | None, message: str | None = "Ola, teste e2e",
             **params: Any) -> Resp:
        if dest is not None:
            params["dest"] = dest
        if message is not None:
            params["message"] = message
        return self.api("MakeSMS", token, **params)

    def send_ok(self, token: str, dest: str, message: str = "Ola, teste e2e", **params: Any) -> str:
        r = self.send(token, dest, message, **params)
        assert r.status == 200 and r.code == "0", f"expected OK, got {r}"
        return r.ret["cdls_id"]

    def balance(self, token: str) -> tuple[Decimal, Decimal]:
        r = self.api("GetBalance", token)
        assert r.status == 200, str(r)
        return Decimal(r.ret["balance"]), Decimal(r.ret["credit_limit"])

    def status(self, token: str, **params: Any) -> Resp:
        return self.api("GetSMSStatus", token, **params)

    def messages(self, token: str, **params: Any) -> list[dict[str, Any]]:
        r = self.status(token, **params)
        assert r.status == 200, str(r)
        data = r.json
        assert isinstance(data.get("messages"), list), str(r)
        return data["messages"]

    def message(self, token: str, cdls_id: str) -> dict[str, Any]:
        msgs = self.messages(token, cdls_id=cdls_id)
        assert len(msgs) == 1, f"GetSMSStatus cdls_id={cdls_id}: {msgs}"
        return msgs[0]

    def wait_message(self, token: str, cdls_id: str, pred, timeout: float = 10.0,
                     what: str = "") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        m = self.message(token, cdls_id)
        while not pred(m):
            if time.monotonic() > deadline:
                raise AssertionError(f"message {cdls_id} never reached {what}: last {m}")
            time.sleep(0.2)
            m = self.message(token, cdls_id)
        return m

    # -- fake upstream ----------------------------------------------------------------------

    def sent_to(self, kind: str, norm_dest: str) -> list[Any]:
        """Requests the fake upstream received for one kind and normalised destination."""
        out = []
        for r in self.upstream.received(kind):
            if kind == "kannel":
                d = r.query.get("to")
            elif kind == "wavy":
                d = (r.json or {}).get("destination") if isinstance(r.json, dict) else None
            elif kind == "tww":
                d = r.form.get("Celular")
            else:
                d = (r.json or {}).get("to") if isinstance(r.json, dict) else None
                d = d or r.form.get("to") or r.query.get("to")
            if d is not None and str(d) == norm_dest:
                out.append(r)
        return out

    def sent_anywhere(self, norm_dest: str) -> list[Any]:
        """Requests of any kind the fake upstream received for a normalised destination."""
        return [r for k in ("kannel", "wavy", "tww", "http") for r in self.sent_to(k, norm_dest)]

    def wait_sent(self, kind: str, norm_dest: str, n: int = 1, timeout: float = 8.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        got = self.sent_to(kind, norm_dest)
        while len(got) < n and time.monotonic() < deadline:
            time.sleep(0.1)
            got = self.sent_to(kind, norm_dest)
        return got

    # -- CLI --------------------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(POMBO), *args], env=self.env, cwd=self.workdir, capture_output=True,
            text=True, timeout=timeout,
        )

    def load(self, doc: dict[str, Any] | str, name: str | None = None) -> subprocess.CompletedProcess:
        """Write a provisioning document (dict → YAML, or raw text) and `pombo load` it."""
        path = self.workdir / (name or f"prov-{uuid.uuid4().hex[:8]}.yaml")
        text = doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False,
                                                                allow_unicode=True)
        path.write_text(text, encoding="utf-8")
        return self.cli("load", str(path))

    def server_log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def upstream():
    fake = FakeUpstream(port=0)
    fake.start_in_thread()
    try:
        yield fake
    finally:
        fake.stop_thread()


def _wait_healthy(proc: subprocess.Popen, base: str, log_path: Path, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    host, port = base.removeprefix("http://").split(":")
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"pombo serve exited with {proc.returncode}:\n"
                + log_path.read_text(errors="replace")[-4000:]
            )
        conn = http.client.HTTPConnection(host, int(port), timeout=2)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.2)
    raise RuntimeError("pombo serve never answered /healthz:\n"
                       + log_path.read_text(errors="replace")[-4000:])


class Server:
    """One `pombo serve` process (in its own process group, so workers die with it)."""

    def __init__(self, env: dict[str, str], workdir: Path, port: int, log_path: Path,
                 workers: str | None = None) -> None:
        self.env, self.workdir, self.port, self.log_path = env, workdir, port, log_path
        self.cmd = [str(POMBO), "serve", "--host", "127.0.0.1", "--port", str(port)]
        if workers:
            self.cmd += ["--workers", str(workers)]
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=self.workdir, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait_healthy(self.proc, f"http://127.0.0.1:{self.port}", self.log_path)
        except BaseException:
            self.stop()
            raise

    def kill(self) -> None:
        """SIGKILL the server and its workers at once (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.kill()
            # workers left behind by a parent that exited first
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None


@contextlib.contextmanager
def spawn(client: Pombo, workers: str | None = None, **env_extra: str):
    """Another `pombo serve` on the same database (optionally other POMBO_* settings);
    yields (its client, its Server)."""
    port = pick_free_port()
    env = dict(client.env, POMBO_PUBLIC_URL=f"http://127.0.0.1:{port}", **env_extra)
    log_path = client.workdir / f"server-{port}.log"
    other = Pombo("127.0.0.1", port, env, client.workdir, client.upstream, log_path)
    other._ips = client._ips
    other._dests = client._dests
    other._lock = client._lock
    server = Server(env, client.workdir, port, log_path, workers)
    server.start()
    try:
        yield other, server
    finally:
        server.stop()


# The whole black-box suite runs against both ways of running Pombo: the embedded default, and
# PostgreSQL with two workers (issue: production backend).
TARGETS = {"sqlite": None, "postgresql-2-workers": "2"}


@pytest.fixture(scope="session", params=list(TARGETS))
def target(request):
    """Which server the suite talks to; PostgreSQL gets a scratch database of its own."""
    if request.param == "sqlite":
        yield request.param, None
        return
    from tests.conftest import scratch_pg_database

    with scratch_pg_database("pombo_e2e") as url:
        yield request.param, url


@pytest.fixture(scope="session")
def pombo(upstream, tmp_path_factory, target):
    if not POMBO.exists():
        pytest.fail(f"{POMBO} is missing")
    name, pg_url = target
    workdir = tmp_path_factory.mktemp(f"pombo-e2e-{name}")
    port = pick_free_port()
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("POMBO_"):
            del env[k]
    env.update(
        POMBO_DATABASE_URL=pg_url or f"sqlite:///{workdir / 'pombo.db'}",
        POMBO_PUBLIC_URL=f"http://127.0.0.1:{port}",
        POMBO_TIMEZONE="America/Sao_Paulo",
        POMBO_ADM_CUSTOMER_ID="2",
    )
    log_path = workdir / "server.log"
    client = Pombo("127.0.0.1", port, env, workdir, upstream, log_path)

    up = client.cli("db", "upgrade")
    assert up.returncode == 0, f"pombo db upgrade failed:\n{up.stdout}\n{up.stderr}"
    loaded = client.load(provisioning(upstream.url), name="provisioning.yaml")
    assert loaded.returncode == 0, f"pombo load failed:\n{loaded.stdout}\n{loaded.stderr}"

    server = Server(env, workdir, port, log_path, os.environ.get("POMBO_E2E_WORKERS") or TARGETS[name])
    server.start()
    try:
        yield client
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _fresh_upstream(request):
    """Every test starts with the fake upstream answering OK and an empty request list."""
    if "pombo" in request.fixturenames or "upstream" in request.fixturenames:
        fake = request.getfixturevalue("upstream")
        fake.reset()
    yield


# --------------------------------------------------------------------------------------------
# Assertions shared by the test modules
# --------------------------------------------------------------------------------------------

STATUS = {
    0: "OK",
    1: "WR",
    100: "fail authentication",
    102: "SID not found",
    110: "account inactive",
    123: "permission denied",
    131: "IP trials exceeded",
    132: "user trials exceeded",
    140: "invalid user/pass",
    142: "IP not allowed",
    198: "tokens blockeds",
    199: "IP blocked",
    220: "No sms account",
    230: "No dest",
    235: "No text",
    240: "Mobile is not valid",
    244: "http duplicidade",
    245: "night limit",
    250: "no credit",
    255: "no sms tarif",
    260: "number blocked by list",
    270: "Blocked text",
    300: "error sms provider",
    400: "bad request",
    413: "request too large",
}


def http_for(code: int) -> int:
    """SPEC §1: 200 for 0/1, 401 for 100–199, 413 for an oversized body, 400 otherwise."""
    if code in (0, 1):
        return 200
    if 100 <= code <= 199:
        return 401
    if code == 413:
        return 413
    return 400


def expect(r: Resp, code: int, status: str | None = None) -> dict[str, Any]:
    """The answer carries `code` with its exact status text and the matching HTTP status."""
    assert r.json is not None, f"answer is not JSON: {r}"
    ret = r.ret
    assert ret.get("status_code") == str(code), f"expected {code}, got {r}"
    want = status if status is not None else STATUS.get(code)
    if want is not None:
        assert ret.get("status") == want, f"expected status {want!r}, got {r}"
    assert r.status == http_for(code), f"expected HTTP {http_for(code)} for {code}, got {r}"
    return ret


def expect_reject(r: Resp, code: int, status: str | None = None) -> None:
    """A MakeSMS refusal: exact code/text/HTTP, and cdls_id "0" (no log row written)."""
    ret = expect(r, code, status)
    assert ret.get("cdls_id") == "0", f"a refusal must carry cdls_id '0': {r}"
