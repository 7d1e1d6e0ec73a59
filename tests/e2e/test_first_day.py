"""A newcomer's first day (issue 17): `pombo demo` and the README's commands, as a user runs them.

The demo runs as a real process on its own port and database; its simulated upstream sends
delivery reports over HTTP to the demo itself; the console login it prints works, and so does
one made with `pombo operator add ... --database` on the same file.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.fakes.upstream import pick_free_port

POMBO = Path(sys.executable).parent / "pombo"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POMBO_")}
    env["POMBO_DATABASE_URL"] = f"sqlite:///{tmp_path / 'not-the-demo.db'}"  # the demo must not use it
    return env


def _cli(tmp_path: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(POMBO), *args], env=_env(tmp_path), cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, input=input)


@contextmanager
def demo(tmp_path: Path, *args: str) -> Iterator[tuple[str, str]]:
    """`pombo demo` in tmp_path; yields (its base URL, its banner)."""
    port = pick_free_port()
    out = tmp_path / f"demo-{port}.out"
    with open(out, "wb") as sink:
        proc = subprocess.Popen([str(POMBO), "demo", "--port", str(port), *args], env=_env(tmp_path),
                                cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, out.read_text()
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.2)
        yield base, out.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _banner_value(banner: str, pattern: str) -> str:
    found = re.search(pattern, banner)
    assert found, banner
    return found.group(1)


def _api(base: str, name: str, **params: str) -> dict:
    data = urllib.parse.urlencode(params).encode()
    with urllib.request.urlopen(f"{base}/api/v2/{name}.php", data=data, timeout=10) as r:
        return json.loads(r.read())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


def console_login(base: str, username: str, password: str) -> int:
    """The HTTP status of a console login (303: in; 401: wrong user or password)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect())
    with opener.open(base + "/console/login", timeout=10) as r:
        page = r.read().decode()
    form = urllib.parse.urlencode({"csrf": CSRF.search(page).group(1), "username": username,  # type: ignore[union-attr]
                                   "password": password, "next": "/console/"}).encode()
    try:
        with opener.open(base + "/console/login", data=form, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def test_demo_reports_balance_and_logins(tmp_path: Path) -> None:
    """Item 1 and 4: the curl the banner prints works, its message gets a delivery report about a
    second later, the printed console login works, and so does `pombo operator add` with the
    demo's --database; a second start shows the balance as it is now, on the port asked for."""
    with demo(tmp_path) as (base, banner):
        port = base.rsplit(":", 1)[1]
        assert f"port {port}" in banner and f"{base}/api/v2/MakeSMS.php" in banner
        assert "balance 100.0000" in banner
        token = _banner_value(banner, r"Token: (\S+)")
        user = _banner_value(banner, r"user (\S+)")
        password = _banner_value(banner, r"password (\S+)")
        curl = _banner_value(banner, r"(curl -s '[^']*MakeSMS\.php'.*)")
        sent = json.loads(subprocess.run(curl, shell=True, capture_output=True, text=True, timeout=30, check=True).stdout)
        assert sent["return"]["status_code"] == "0", sent
        cdls_id = sent["return"]["cdls_id"]
        deadline = time.monotonic() + 10
        while (msg := _api(base, "GetSMSStatus", tsid=token, cdls_id=cdls_id)["messages"][0])["delivery"] in ("pending", "sent"):
            assert time.monotonic() < deadline, msg
            time.sleep(0.2)
        assert msg["delivery"] in ("delivered", "undelivered"), msg
        assert console_login(base, user, password) == 303
        assert console_login(base, user, "wrong") == 401
        added = _cli(tmp_path, "operator", "add", "admin", "--password", "s3cret-first-day", "--database", "pombo-demo.db")
        assert added.returncode == 0, added.stderr
        assert console_login(base, "admin", "s3cret-first-day") == 303
    with demo(tmp_path) as (base, banner):
        assert "balance 99.9500" in banner  # one GSM-7 segment at 0.0500
        token = _banner_value(banner, r"Token: (\S+)")
        assert _api(base, "GetBalance", tsid=token)["return"]["balance"] == "99.9500"
        assert console_login(base, "admin", "s3cret-first-day") == 303  # the demo keeps other logins
        _the_handset_answers_a_question(base, banner, token)
    assert not (tmp_path / "not-the-demo.db").exists()


def _the_handset_answers_a_question(base: str, banner: str, token: str) -> None:
    """Issue 14 item 7: the banner's question gets "Sim, confirmo" from the simulated handset
    after its `delivered` report (one in ten is undelivered, and goes unanswered: ask again)."""
    ask = _banner_value(banner, r"(curl -s '[^']*MakeSMS\.php'.*message=Confirma[^\n]*)")
    read = _banner_value(banner, r"(curl -s '[^']*GetSMSReply\.php[^\n]*)")
    for attempt in range(5):
        # asked again in other words: the same text to the same handset would be a duplicate (244)
        again = ask if attempt == 0 else ask.replace("message=Confirma", f"message=({attempt}) Confirma")
        sent = json.loads(subprocess.run(again, shell=True, capture_output=True, text=True, timeout=30, check=True).stdout)
        assert sent["return"]["status_code"] == "0", sent
        cdls_id = sent["return"]["cdls_id"]
        deadline = time.monotonic() + 10
        while (msg := _api(base, "GetSMSStatus", tsid=token, cdls_id=cdls_id)["messages"][0])["delivery"] in ("pending", "sent"):
            assert time.monotonic() < deadline, msg
            time.sleep(0.2)
        if msg["delivery"] == "delivered":
            break
    else:
        raise AssertionError("five questions, none delivered")
    while not (replies := json.loads(subprocess.run(read, shell=True, capture_output=True, text=True, timeout=30,
                                                    check=True).stdout)["messages"]):
        assert time.monotonic() < deadline + 5, "no answer"
        time.sleep(0.2)
    assert [(r["from"], r["text"], r["reply_to"]) for r in replies] == [("5511987654322", "Sim, confirmo", cdls_id)]


def test_credit_add_takes_a_negative_amount(tmp_path: Path) -> None:
    """Item 2: `pombo credit add 1000 -200` debits, as --help says (click read -200 as options)."""
    db = str(tmp_path / "credit.db")
    doc = tmp_path / "one.yaml"
    doc.write_text('customers: [{id: 1000, name: Demo, balance: "1000.00"}]\n', encoding="utf-8")
    assert _cli(tmp_path, "load", str(doc), "--database", db).returncode == 0
    debit = _cli(tmp_path, "credit", "add", "1000", "-200", "--database", db)
    assert debit.returncode == 0, debit.stderr
    assert debit.stdout.strip() == "customer 1000: balance 800.0000"
    again = _cli(tmp_path, "--database", db, "credit", "add", "1000", "-0.5", "--note", "fix")
    assert again.stdout.strip() == "customer 1000: balance 799.5000", again.stderr
    bad = _cli(tmp_path, "credit", "add", "1000", "-x", "--database", db)
    assert bad.returncode == 2 and "AMOUNT" in bad.stderr


def test_version(tmp_path: Path) -> None:
    """Item 7: `pombo --version`."""
    from importlib.metadata import version

    got = _cli(tmp_path, "--version")
    assert got.returncode == 0 and got.stdout.strip() == f"pombo, version {version('pombo')}"


@pytest.mark.parametrize("args", [("--port", "abc")])
def test_demo_bad_port_is_a_usage_error(tmp_path: Path, args: tuple[str, ...]) -> None:
    got = _cli(tmp_path, "demo", *args)
    assert got.returncode == 2 and "--port" in got.stderr


# --- pombo load (item 3) ----------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "provisioning.yaml"


def test_the_example_file_loads_and_reloads(tmp_path: Path) -> None:
    first = _cli(tmp_path, "load", str(EXAMPLE), "--database", "example.db")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "loaded 6 connections, 2 costs, 3 customers, 4 tariffs, 1 tokens, 1 users"
    assert first.stderr == ""  # no warnings either
    again = _cli(tmp_path, "load", str(EXAMPLE), "--database", "example.db")
    assert again.returncode == 0 and "0 tokens" in again.stdout, again.stderr
    balance = _cli(tmp_path, "credit", "add", "11", "0.01", "--database", "example.db")
    assert balance.stdout.strip() == "customer 11: balance 20.0100"  # the opening balance, once


BAD = """\
connections:
  - {name: velip, kind: simulator}
  - {name: Bad Name, kind: kannel, url: "http://127.0.0.1:13013", username: u, password: p}
customers:
  - {id: 1, name: A, balance: "-5.00"}
  - {id: 2, name: B, balance: abc}
  - {id: 3, name: C, parent: 77}
  - {id: 4, name: D, sms_provider: wavy}
tariffs:
  - {customer: 99, prefix: "55", value: "0.05"}
  - {customer: 1, prefix: "x5", value: "0.05"}
  - {customer: 1, prefix: "55", value: "0.05"}
"""


def test_load_names_every_bad_entry_in_one_pass(tmp_path: Path) -> None:
    """Errors of the schema and of references (checked against the database for the valid
    entries) together, each with its index in the file; warnings too; nothing written."""
    (tmp_path / "bad.yaml").write_text(BAD, encoding="utf-8")
    got = _cli(tmp_path, "load", "bad.yaml", "--database", "bad.db")
    assert got.returncode == 1
    assert got.stderr.splitlines() == [
        "error: connections[1] ('Bad Name'): name: a connection name is 1-64 of a-z 0-9 _ -",
        "error: customers[1] (id 2, 'B'): balance: not an amount: 'abc'",
        "error: tariffs[1] (customer 1, prefix 'x5'): prefix: a prefix is 1-15 digits",
        "error: customers[2] (id 3): parent: customer 77 does not exist",
        "error: tariffs[0] (customer 99, prefix 55): customer 99 does not exist",
        "warning: customers[0] (id 1, 'A'): balance: the opening balance -5.0000 is negative (the customer starts in debt)",
        "warning: customers[3] (id 4): routes to connection 'wavy', which does not exist (sends will answer 220)",
        "bad.yaml: 5 problem(s); nothing was loaded",
    ]
    nothing = _cli(tmp_path, "credit", "add", "1", "1", "--database", "bad.db")
    assert nothing.returncode == 1 and "1" in nothing.stderr  # customer 1 was not created


def test_no_warning_for_a_connection_stored_before(tmp_path: Path) -> None:
    """A customer routed to a connection loaded by an earlier file: no "not defined in this
    file"; one routed to nothing gets the one warning that says what sends will answer."""
    (tmp_path / "conn.yaml").write_text("connections: [{name: velip, kind: simulator}]\n", encoding="utf-8")
    (tmp_path / "cust.yaml").write_text(
        "customers: [{id: 5, name: E}, {id: 6, name: F, sms_provider: nowhere}]\n", encoding="utf-8")
    assert _cli(tmp_path, "load", "conn.yaml", "--database", "w.db").returncode == 0
    got = _cli(tmp_path, "load", "cust.yaml", "--database", "w.db")
    assert got.returncode == 0
    assert got.stderr.splitlines() == [
        "warning: customers[1] (id 6): routes to connection 'nowhere', which does not exist (sends will answer 220)"]


def _many(n: int) -> str:
    lines = ["connections: [{name: velip, kind: simulator}]", "customers:"]
    lines += [f"  - {{id: {100 + i}, name: C{i}, balance: '1.00', tokens: [tok-many-{i:08d}]}}" for i in range(n)]
    lines += ["tariffs:"] + [f"  - {{customer: {100 + i}, prefix: '55', value: '0.05'}}" for i in range(n)]
    return "\n".join(lines) + "\n"


def test_a_big_file_shows_progress_on_a_terminal_only(tmp_path: Path) -> None:
    import pty

    (tmp_path / "many.yaml").write_text(_many(400), encoding="utf-8")
    quiet = _cli(tmp_path, "load", "many.yaml", "--database", "quiet.db")
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert quiet.stdout.strip() == "loaded 1 connections, 0 costs, 400 customers, 400 tariffs, 400 tokens, 0 users"
    leader, follower = pty.openpty()
    try:
        done = subprocess.run([str(POMBO), "load", "many.yaml", "--database", "tty.db"], env=_env(tmp_path),
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=follower, timeout=60)
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the writer is gone
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert done.returncode == 0
    assert b"loading" in shown and b"801/801" in shown, shown[-400:]


def test_a_bad_file_is_reported_even_when_the_database_does_not_answer(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(BAD, encoding="utf-8")
    got = _cli(tmp_path, "load", "bad.yaml", "--database", "postgresql://postgres@127.0.0.1:1/none")
    assert got.returncode == 1
    lines = got.stderr.splitlines()
    assert lines[:3] == [
        "error: connections[1] ('Bad Name'): name: a connection name is 1-64 of a-z 0-9 _ -",
        "error: customers[1] (id 2, 'B'): balance: not an amount: 'abc'",
        "error: tariffs[1] (customer 1, prefix 'x5'): prefix: a prefix is 1-15 digits",
    ]
    assert lines[3].startswith("error: references not checked: the database did not answer (")
    assert lines[-1] == "bad.yaml: 4 problem(s); nothing was loaded"


def test_simulator_reports_reach_the_log_and_the_customer_callback(tmp_path: Path) -> None:
    """Item 4: a simulator with `reports` posts its reports to the server's own /dlr/...; the
    states land in the log and the customer's callback hears each change (here every message
    is undelivered: `undelivered: 1`)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    heard: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            heard.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    port = pick_free_port()
    doc = {
        "connections": [{"name": "velip", "kind": "simulator", "reports": True, "report_delay": 0.3, "undelivered": 1}],
        "customers": [{"id": 7, "name": "Com callback", "balance": "1.00", "tokens": ["tok-callback-0007"],
                       "callback": {"url": f"http://127.0.0.1:{receiver.server_port}/hook"}}],
        "tariffs": [{"customer": 7, "prefix": "55", "value": "0.0500"}],
    }
    (tmp_path / "cb.yaml").write_text(json.dumps(doc), encoding="utf-8")
    assert _cli(tmp_path, "load", "cb.yaml", "--database", "cb.db").returncode == 0
    env = {**_env(tmp_path), "POMBO_PUBLIC_URL": f"http://127.0.0.1:{port}", "POMBO_CALLBACK_ALLOW": '["127.0.0.0/8"]'}
    with open(tmp_path / "serve.out", "wb") as sink:
        proc = subprocess.Popen([str(POMBO), "serve", "--port", str(port), "--database", "cb.db"], env=env,
                                cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "serve.out").read_text()
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        sent = _api(base, "MakeSMS", tsid="tok-callback-0007", dest="11987654321", message="oi")
        assert sent["return"]["status_code"] == "0", sent
        deadline = time.monotonic() + 15
        while not any(h.get("delivery") == "undelivered" for h in heard):
            assert time.monotonic() < deadline, heard
            time.sleep(0.2)
        msg = _api(base, "GetSMSStatus", tsid="tok-callback-0007", cdls_id=sent["return"]["cdls_id"])["messages"][0]
        assert msg["delivery"] == "undelivered" and msg["sent_at"] and msg["final_at"], msg
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
        receiver.shutdown()
        receiver.server_close()
