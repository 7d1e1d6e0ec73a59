#!/usr/bin/env python3
"""Pombo's load benchmark: one command, everything on loopback, a table at the end.

    .venv/bin/python bench/run.py                       # every scenario, 3 runs of 10 s
    .venv/bin/python bench/run.py --quick               # 1 run of 3 s each (smoke check)
    .venv/bin/python bench/run.py --scenarios sqlite-32,pg2-32 --seconds 20 --runs 5

For each scenario: a scratch directory under /tmp/pombo-bench, a fake Kannel upstream
(bench/fake_upstream.py), a provisioning file with --customers customers (flat, or all under
one reseller for the *-hot-* scenarios), `pombo load`, `pombo serve` (as a user starts them),
a 3 s warm-up, then --runs runs of wrk + bench/vary_dest.lua. Around each run it reads the
upstream's counter, the message log (count of rows), the CPU time of the gateway's process
tree, of the upstream and of wrk, and samples the gateway's RSS every 200 ms. It prints the
medians per scenario and writes every run and every median as JSON lines to
bench/results/<timestamp>.jsonl. Every process it starts runs in its own session and is stopped
by process group on exit, error or Ctrl-C.

Standard library only (plus the venv's pombo); needs `wrk` (apt-get install -y wrk) and, for the
PostgreSQL scenarios, `psql` and a server at $BENCH_PG_URL (postgresql://postgres@127.0.0.1:5432).
See bench/README.md for what each column means.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from procs import (  # noqa: E402
    BENCH,
    POMBO,
    _procs,  # noqa: E402,F401
    free_port,
    http,
    on_signal,
    start,
    start_upstream,
    stop,
    stop_all,
    tail,
    upstream_count,
)

SCRATCH = Path(os.environ.get("BENCH_SCRATCH", "/tmp/pombo-bench"))
ROOT_TREE = BENCH.parent
PG_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432").rstrip("/")
PG_ADMIN_DB = os.environ.get("BENCH_PG_ADMIN_DB", "test")
PG_DB = os.environ.get("BENCH_PG_DB", "pombo_bench")
HZ = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

WARMUP_S = 3
WRK_THREADS = 2
WRK_TIMEOUT = "5s"
DRAIN_STILL_S = 1.0  # the upstream counter must stand still this long after a run
DRAIN_MAX_S = 40.0
TARIFF = "0.0500"
RESELLER_TARIFF = "0.0300"
BALANCE = "100000000.00"
RESELLER_ID = 10
FIRST_CUSTOMER = 1000


@dataclass(frozen=True)
class Scenario:
    name: str
    db: str  # sqlite | pg
    workers: int
    conns: int
    hot: bool = False  # every customer under one reseller
    delay_ms: float = 0.0  # the upstream's answer delay
    customers: int | None = None  # overrides --customers (1: one hot customer)
    night: bool = False  # every customer inside its night window now (00:00-23:59), a huge night_limit
    prefill: int = 0  # messages (and as many old auth failures) written with SQL before serve
    prefill_auth: bool = True  # False: the messages only
    mints: int = 0  # GetUserID tsid=1 calls fired at once a third into each run
    mints_spread: bool = False  # ... or one after another, evenly over the middle 60% of the run


SCENARIOS = [
    Scenario("sqlite-32", "sqlite", 1, 32),
    Scenario("sqlite-64", "sqlite", 1, 64),
    Scenario("pg2-32", "pg", 2, 32),
    Scenario("pg2-64", "pg", 2, 64),
    Scenario("pg2-hot-32", "pg", 2, 32, hot=True),
    Scenario("sqlite-hot-32", "sqlite", 1, 32, hot=True),
    Scenario("sqlite-slow50-256", "sqlite", 1, 256, delay_ms=50),
    Scenario("pg2-slow50-256", "pg", 2, 256, delay_ms=50),
    # issue 15: speed that does not depend on the hour or on the size of the log
    Scenario("sqlite-1c-32", "sqlite", 1, 32, customers=1),
    Scenario("sqlite-night-1c-32", "sqlite", 1, 32, customers=1, night=True),
    Scenario("sqlite-night-32", "sqlite", 1, 32, night=True),
    Scenario("sqlite-log1m-night-32", "sqlite", 1, 32, night=True, prefill=1_000_000),
    Scenario("sqlite-msgs1m-night-32", "sqlite", 1, 32, night=True, prefill=1_000_000, prefill_auth=False),
    Scenario("sqlite-mint-night-32", "sqlite", 1, 32, night=True, mints=200),
    Scenario("sqlite-mintspread-night-32", "sqlite", 1, 32, night=True, mints=200, mints_spread=True),
    Scenario("pg2-night-1c-32", "pg", 2, 32, customers=1, night=True),
]
BY_NAME = {s.name: s for s in SCENARIOS}


class Skip(Exception):
    """The scenario cannot run here (e.g. the gateway does not start on PostgreSQL yet)."""


class Fail(Exception):
    """The scenario broke."""


# ----------------------------------------------------------------------------- processes

# ----------------------------------------------------------------------------- /proc readings


def _stat(pid: int) -> tuple[int, float] | None:
    """(session id, utime+stime seconds) of a live pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rfind(")") + 2 :].split()
    return int(rest[3]), (int(rest[11]) + int(rest[12])) / HZ


def session_pids(sid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _stat(int(d))
            if st and st[0] == sid:
                out.append(int(d))
    return sorted(out)


def snapshot() -> dict[int, tuple[int, str, float]]:
    """pid -> (session id, command name, CPU seconds) of every live process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rfind(")") + 2 :].split()
        out[int(d)] = (
            int(rest[3]),
            s[s.find("(") + 1 : s.rfind(")")],
            (int(rest[11]) + int(rest[12])) / HZ,
        )
    return out


def cpu_split(
    s0: dict, s1: dict, sids: dict[str, int], wall: float
) -> tuple[dict[str, float], list]:
    """% of one core per named session over the window (plus "postgres": every process of the
    PostgreSQL server, ours or not), and the foreign processes above 5 %."""
    per = {name: 0.0 for name in sids}
    per["postgres"] = 0.0
    by_sid = {sid: name for name, sid in sids.items()}
    others = []
    me = os.getpid()
    for pid, (sid, comm, c1) in s1.items():
        c0 = s0.get(pid, (sid, comm, 0.0))[2]
        name = by_sid.get(sid) or ("postgres" if comm == "postgres" else None)
        if name is not None:
            per[name] += c1 - c0
        elif pid != me and c1 - c0 > 0.05 * wall:
            others.append((round(100 * (c1 - c0) / wall), f"{comm}[{pid}] {cmdline(pid)}"))
    return {k: 100 * v / wall for k, v in per.items()}, sorted(others, reverse=True)[:4]


def cmdline(pid: int, width: int = 70) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:width]
    except OSError:
        return "?"


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KB / 1024
    except (OSError, IndexError, ValueError):
        return None


def machine_busy() -> tuple[int, int]:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)


class RssSampler(threading.Thread):
    """Max VmRSS per process of a session, sampled every 200 ms."""

    def __init__(self, sid: int) -> None:
        super().__init__(daemon=True)
        self.sid = sid
        self.peak: dict[int, float] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        pids = session_pids(self.sid)
        last_scan = time.monotonic()
        while not self._halt.is_set():
            if time.monotonic() - last_scan > 1.0:
                pids, last_scan = session_pids(self.sid), time.monotonic()
            for pid in pids:
                mb = rss_mb(pid)
                if mb is not None and mb > self.peak.get(pid, 0.0):
                    self.peak[pid] = mb
            self._halt.wait(0.2)

    def finish(self) -> dict[int, float]:
        self._halt.set()
        self.join(2)
        return self.peak


def gateway_roles(sid: int, workers: int) -> dict[int, str]:
    """pid -> 'main' (the session leader: `pombo serve`) or 'w1', 'w2'... (uvicorn workers)."""
    roles = {}
    n = 0
    for pid in session_pids(sid):
        if pid == sid:
            roles[pid] = "main"
            continue
        try:
            cmd = (
                open(f"/proc/{pid}/cmdline", "rb")
                .read()
                .replace(b"\0", b" ")
                .decode(errors="replace")
            )
        except OSError:
            continue
        if "resource_tracker" in cmd:
            roles[pid] = "rtracker"
        else:
            n += 1
            roles[pid] = f"w{n}"
    return roles


# ----------------------------------------------------------------------------- helpers


def last_error_line(text: str) -> str:
    """The most telling line of a failed command's output: the last exception line, if any."""
    import re

    lines = [x.strip() for x in text.strip().splitlines() if x.strip()]
    for pattern in (r"^[\w.]*(Error|Exception|Exit)\b", r"(?i)error|unsupported"):
        for x in reversed(lines):
            if re.search(pattern, x):
                return x[:300]
    return lines[-1][:300] if lines else "no output"


def psql(db: str, sql: str, timeout: float = 60) -> str:
    r = subprocess.run(
        ["psql", f"{PG_URL}/{db}", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip() or r.stdout.strip())
    return r.stdout.strip()


class LogCounter:
    """count(*) of the message log, read straight from the database (pombo messages is slow)."""

    def __init__(self, db: str, sqlite_path: Path | None) -> None:
        self.db = db
        self.sqlite_path = sqlite_path

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        if self.db == "sqlite":
            import sqlite3

            con = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True, timeout=30)
            try:
                return con.execute(sql, args).fetchall()
            finally:
                con.close()
        sql_text = sql.replace("?", "{}").format(*args)
        out = psql(PG_DB, sql_text)
        return [tuple(int(v) for v in line.split("|")) for line in out.splitlines() if line]

    def head(self) -> tuple[int, int]:
        """(rows, highest id)"""
        ((rows, top),) = self._query("SELECT count(*), coalesce(max(id), 0) FROM messages")
        return int(rows), int(top)

    def since(self, top: int) -> dict[str, int]:
        """rows above id `top` by status_code."""
        return {
            str(code): int(n)
            for code, n in self._query(
                "SELECT status_code, count(*) FROM messages WHERE id > ? GROUP BY status_code",
                (top,),
            )
        }


# ----------------------------------------------------------------------------- provisioning


def token_of(i: int) -> str:
    return f"benchtoken{i:07d}"  # 17 characters, [A-Za-z0-9]


NIGHT = 'night_limit: 1000000000, night_window: "00:00-23:59"'  # inside the window at any hour
MINTER = ("minter", "minter-password")  # the first customer's user, for GetUserID tsid=1


def write_provisioning(
    path: Path, tokens_path: Path, *, customers: int, hot: bool, upstream_port: int,
    night: bool = False, minter: bool = False,
) -> None:
    lines = [
        "# generated by bench/run.py",
        "connections:",
        f'  - {{name: velip, kind: kannel, url: "http://127.0.0.1:{upstream_port}", '
        f"username: bench, password: bench, ack_timeout: 5, final_timeout: 30}}",
        "customers:",
    ]
    if hot:
        lines.append(
            f'  - {{id: {RESELLER_ID}, name: "Bench reseller", balance: "{BALANCE}", night_limit: null}}'
        )
    tariffs = (
        [f'  - {{customer: {RESELLER_ID}, prefix: "55", value: "{RESELLER_TARIFF}"}}']
        if hot
        else []
    )
    tokens = []
    for k in range(customers):
        cid = FIRST_CUSTOMER + k
        tok = token_of(k)
        tokens.append(tok)
        parent = f", parent: {RESELLER_ID}" if hot else ""
        # night_limit: null = no night cap, so the numbers do not depend on the time of day; the
        # night scenarios put every customer inside its window with a cap never reached
        user = (
            f', users: [{{username: {MINTER[0]}, password: "{MINTER[1]}", send: true}}]'
            if minter and k == 0 else ""
        )
        lines.append(
            f'  - {{id: {cid}, name: "bench {cid}"{parent}, balance: "{BALANCE}", '
            f'{NIGHT if night else "night_limit: null"}, tokens: ["{tok}"]{user}}}'
        )
        tariffs.append(f'  - {{customer: {cid}, prefix: "55", value: "{TARIFF}"}}')
    lines.append("tariffs:")
    lines.extend(tariffs)
    path.write_text("\n".join(lines) + "\n")
    tokens_path.write_text("\n".join(tokens) + "\n")


# ----------------------------------------------------------------------------- wrk


def run_wrk(url: str, conns: int, secs: float, tokens: Path, salt: int, log: Path) -> dict:
    env = dict(os.environ, BENCH_TOKENS=str(tokens), BENCH_SALT=str(salt))
    cmd = [
        "wrk",
        "-t",
        str(min(WRK_THREADS, conns)),
        "-c",
        str(conns),
        "-d",
        f"{secs:g}s",
        "--timeout",
        WRK_TIMEOUT,
        "--latency",
        "-s",
        str(BENCH / "vary_dest.lua"),
        url,
    ]
    p = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    _procs.append(p)
    try:
        out, _ = p.communicate(timeout=secs + 60)
    except BaseException:  # Ctrl-C, SIGTERM, a hung wrk: stop it before going on
        stop(p, timeout=2.0)
        raise
    if p in _procs:
        _procs.remove(p)
    with open(log, "a") as f:
        f.write(out + "\n")
    res: dict = {"codes": {}}
    for line in out.splitlines():
        if line.startswith("BENCHRESULT "):
            for kv in line.split()[1:]:
                k, v = kv.split("=")
                res[k] = float(v)
        elif line.startswith("BENCHCODE "):
            _, k, v = line.split()
            res["codes"][k] = res["codes"].get(k, 0) + int(v)
    if "requests" not in res:
        raise Fail("wrk failed:\n" + out[-2000:])
    return res


def drain(port: int) -> tuple[int, float]:
    """Wait until the upstream counter stands still for DRAIN_STILL_S. -> (count, seconds)"""
    t0 = time.monotonic()
    last = upstream_count(port)
    still_since = time.monotonic()
    while time.monotonic() - t0 < DRAIN_MAX_S:
        time.sleep(0.2)
        c = upstream_count(port)
        if c != last:
            last, still_since = c, time.monotonic()
        elif time.monotonic() - still_since >= DRAIN_STILL_S:
            break
    return last, max(0.0, still_since - t0)


# ----------------------------------------------------------------------------- one scenario


def pombo_cmd(tree: Path | None) -> tuple[list[str], dict[str, str]]:
    """The `pombo` command of this checkout's venv, or of another tree's source (--tree/--compare)
    run by this interpreter with that tree's src first on PYTHONPATH."""
    if tree is None and os.access(POMBO, os.X_OK):
        return [POMBO], {}
    tree = tree or ROOT_TREE
    return [sys.executable, "-c", "from pombo.cli import main; main()"], {"PYTHONPATH": str(tree / "src")}


def prefill(sc: Scenario, sqlite_path: Path | None, customers: int) -> float:
    """`sc.prefill` messages, all OK, spread over the customers and over this night so far (the
    night window 00:00-23:59 began at local midnight), plus as many auth failures older than
    every brute-force window, from addresses that never call. Plain SQL: seconds, not hours."""
    n = sc.prefill
    now = time.time()
    from datetime import datetime
    from zoneinfo import ZoneInfo

    midnight = datetime.now(ZoneInfo(os.environ.get("POMBO_TIMEZONE", "America/Sao_Paulo"))).replace(
        hour=0, minute=0, second=0, microsecond=0).timestamp()
    span = max(60.0, now - 60 - midnight)
    t0 = time.monotonic()
    if sc.db != "sqlite":
        raise Fail("prefill is written for SQLite")
    import sqlite3

    con = sqlite3.connect(str(sqlite_path))
    try:
        cols = {r[1] for r in con.execute("PRAGMA table_info(messages)")}
        night_col = "night_since" in cols  # the counter's schema (issue 15) keeps it in step
        con.execute("PRAGMA synchronous=OFF")
        con.execute("BEGIN")
        con.execute(
            "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < ?) "
            "INSERT INTO messages (customer_id, dest, text, connection, status_code, upstream_id, value, "
            "cost, segments, encoding, delivery, created_at, updated_at"
            + (", night_since" if night_col else "") + ") "
            "SELECT ? + n % ?, '55118' || printf('%08d', n), 'hello world', 'velip', 0, 'up' || n, 500, 0, "
            "1, 'GSM-7', 'delivered', ? + n * ? / ?, ? + n * ? / ?"
            + (", ?" if night_col else "") + " FROM seq",
            (n - 1, FIRST_CUSTOMER, customers, midnight, span, n, midnight, span, n)
            + ((midnight,) if night_col else ()),
        )
        if night_col and sc.night:
            con.execute(
                "INSERT INTO night_counts (customer_id, night_since, sent) "
                "SELECT customer_id, night_since, count(*) FROM messages GROUP BY customer_id, night_since"
            )
        if sc.prefill_auth:
            con.execute(
                "WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < ?) "
                "INSERT INTO auth_failures (ip, username, code, created_at) "
                "SELECT '198.51.' || (n / 250 % 250) || '.' || (n % 250), NULL, 102, ? - 3700 - n % 80000 FROM seq",
                (n - 1, now),
            )
        con.execute("COMMIT")
    finally:
        con.close()
    return time.monotonic() - t0


def fire_mints(port: int, calls: int, delay: float, answers: dict[str, int], over: float = 0.0) -> threading.Thread:
    """After `delay` s, `calls` GetUserID tsid=1 calls (one thread each, HTTP Basic as the
    minter), at once or, with `over` > 0, started evenly over `over` seconds; their status codes
    are counted into `answers`."""
    import base64
    import urllib.request

    auth = "Basic " + base64.b64encode(":".join(MINTER).encode()).decode()
    url = f"http://127.0.0.1:{port}/api/v2/GetUserID.php?tsid=1"
    lock = threading.Lock()

    def one() -> None:
        try:
            req = urllib.request.Request(url, headers={"Authorization": auth})
            with urllib.request.urlopen(req, timeout=30) as r:
                body = json.loads(r.read())
            code = str(body.get("return", body).get("status_code"))
        except Exception as exc:  # counted, not fatal
            code = type(exc).__name__
        with lock:
            answers[code] = answers.get(code, 0) + 1

    def run() -> None:
        time.sleep(delay)
        workers = [threading.Thread(target=one, daemon=True) for _ in range(calls)]
        for w in workers:
            w.start()
            if over > 0:
                time.sleep(over / calls)
        for w in workers:
            w.join()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def run_scenario(sc: Scenario, args: argparse.Namespace, stamp: str, out_jsonl: Path,
                 tree: Path | None = None, label: str = "") -> dict:
    customers = sc.customers or args.customers
    pombo, tree_env = pombo_cmd(tree)
    scratch = SCRATCH / f"{stamp}-{sc.name}{'-' + label if label else ''}"
    scratch.mkdir(parents=True, exist_ok=True)
    up_port, gw_port = free_port(), free_port()
    print(
        f"\n== {sc.name}{' [' + label + ': ' + str(tree) + ']' if label else ''}: {sc.db}, "
        f"{sc.workers} process(es), {sc.conns} conns, "
        f"{customers} customers{' under one reseller' if sc.hot else ''}"
        f"{', inside their night window' if sc.night else ''}"
        f"{f', {sc.prefill:,} rows preloaded' if sc.prefill else ''}"
        f"{f', {sc.mints} GetUserID tsid=1 per run' + (' spread over it' if sc.mints_spread else ' at once') if sc.mints else ''}, "
        f"upstream delay {sc.delay_ms:g} ms; scratch {scratch}",
        flush=True,
    )

    upstream = start_upstream(
        "--delay-ms", str(sc.delay_ms),
        port=up_port,
        log=scratch / "upstream.log",
        fail=Fail,
    )

    # a clean environment, but for the operator's documented speed/durability trade-off
    keep = ("POMBO_PG_SYNCHRONOUS_COMMIT",)
    env = {k: v for k, v in os.environ.items() if not k.startswith("POMBO_") or k in keep}
    env.update(tree_env)
    sqlite_path = None
    if sc.db == "sqlite":
        sqlite_path = scratch / "pombo.db"
        env["POMBO_DATABASE_URL"] = f"sqlite:///{sqlite_path}"
    else:
        if not shutil.which("psql"):
            raise Skip("psql not found")
        try:
            psql(PG_ADMIN_DB, f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
            psql(PG_ADMIN_DB, f"CREATE DATABASE {PG_DB}")
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            raise Skip(f"cannot recreate database {PG_DB}: {exc}") from None
        env["POMBO_DATABASE_URL"] = f"{PG_URL}/{PG_DB}"
    fail = Fail if sc.db == "sqlite" else Skip

    prov, tokens = scratch / "provisioning.yaml", scratch / "tokens.txt"
    write_provisioning(prov, tokens, customers=customers, hot=sc.hot, upstream_port=up_port,
                       night=sc.night, minter=sc.mints > 0)
    t0 = time.monotonic()
    r = subprocess.run(
        [*pombo, "load", str(prov)],
        env=env,
        cwd=scratch,
        capture_output=True,
        text=True,
        timeout=900,
    )
    (scratch / "load.log").write_text(r.stdout + r.stderr)
    if r.returncode != 0:
        raise fail(f"pombo load failed: {last_error_line(r.stderr + r.stdout)}")
    load_s = time.monotonic() - t0
    print(f"   pombo load: {r.stdout.strip()} ({load_s:.1f} s)", flush=True)
    if sc.prefill:
        took = prefill(sc, sqlite_path, customers)
        also = f" and {sc.prefill:,} old auth failures" if sc.prefill_auth else ""
        print(f"   preloaded {sc.prefill:,} messages{also} ({took:.1f} s)", flush=True)

    cmd = [*pombo, "serve", "--host", "127.0.0.1", "--port", str(gw_port)]
    if sc.workers > 1:
        cmd += ["--workers", str(sc.workers)]
    gw = start(cmd, log=scratch / "serve.log", env=env, cwd=scratch)
    base = f"http://127.0.0.1:{gw_port}"
    deadline = time.monotonic() + 60
    while True:
        if gw.poll() is not None:
            raise fail(
                f"pombo serve exited ({gw.returncode}): "
                f"{last_error_line((scratch / 'serve.log').read_text(errors='replace'))}"
            )
        try:
            if http("GET", base + "/healthz", timeout=2)[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise fail("no /healthz within 60 s:\n" + tail(scratch / "serve.log"))
        time.sleep(0.2)
    time.sleep(0.5)  # let every worker come up
    sid = os.getsid(gw.pid)
    up_sid = os.getsid(upstream.pid)
    roles = gateway_roles(sid, sc.workers)
    counter = LogCounter(sc.db, sqlite_path)

    # warm-up
    sampler = RssSampler(sid)
    sampler.start()
    w = run_wrk(base, sc.conns, WARMUP_S, tokens, 0, scratch / "wrk.log")
    drain(up_port)
    sampler.finish()
    rss_after_warmup = {roles.get(p, str(p)): rss_mb(p) for p in roles}
    print(
        f"   warm-up: {w['requests'] / (w['duration_us'] / 1e6):.0f} req/s, codes {w['codes']}, "
        f"RSS {fmt_rss(rss_after_warmup)}",
        flush=True,
    )

    rows = []
    for i in range(1, args.runs + 1):
        salt = i * 7_000_000
        http("POST", f"http://127.0.0.1:{up_port}/reset")
        _, top0 = counter.head()
        c0 = upstream_count(up_port)
        snap0 = snapshot()
        m0 = machine_busy()
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        me0 = resource.getrusage(resource.RUSAGE_SELF)
        sampler = RssSampler(sid)
        sampler.start()
        mint_answers: dict[str, int] = {}
        minting = (
            fire_mints(gw_port, sc.mints, args.seconds / 5, mint_answers, over=args.seconds * 0.6)
            if sc.mints_spread
            else fire_mints(gw_port, sc.mints, args.seconds / 3, mint_answers) if sc.mints else None
        )
        t0 = time.monotonic()
        res = run_wrk(base, sc.conns, args.seconds, tokens, salt, scratch / "wrk.log")
        wall = time.monotonic() - t0
        if minting is not None:
            minting.join(60)
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        me1 = resource.getrusage(resource.RUSAGE_SELF)
        m1 = machine_busy()
        snap1 = snapshot()
        c1 = upstream_count(up_port)
        peak = sampler.finish()
        c2, drain_s = drain(up_port)
        by_status = counter.since(top0)
        rss_end = {roles.get(p, str(p)): rss_mb(p) for p in roles}

        split, foreign = cpu_split(snap0, snap1, {"gateway": sid, "upstream": up_sid}, wall)
        dur = res["duration_us"] / 1e6
        codes = res["codes"]
        accepted = sum(n for k, n in codes.items() if k in ("200:0", "200:1"))
        sock = {
            k: int(res[f"err_{k}"])
            for k in ("connect", "read", "write", "timeout")
            if res[f"err_{k}"]
        }
        log_rows = sum(by_status.values())
        row = {
            "kind": "run",
            "scenario": sc.name,
            "run": i,
            "db": sc.db,
            "workers": sc.workers,
            "conns": sc.conns,
            "customers": customers,
            "hot": sc.hot,
            "delay_ms": sc.delay_ms,
            "night": sc.night,
            "prefill": sc.prefill,
            "mints": sc.mints,
            "mint_answers": mint_answers,
            "tree": str(tree) if tree else str(ROOT_TREE),
            "label": label,
            "secs": round(dur, 3),
            "requests": int(res["requests"]),
            "rps": res["requests"] / dur,
            "accepted": accepted,
            "accepted_rps": accepted / dur,
            "forwarded_in_run": c1 - c0,
            "forwarded_rps": (c1 - c0) / dur,
            "forwarded_total": c2 - c0,
            "drain_s": round(drain_s, 2),
            "log_rows": log_rows,
            "log_rows_by_status": by_status,
            "p50_ms": res["p50_us"] / 1000,
            "p90_ms": res["p90_us"] / 1000,
            "p99_ms": res["p99_us"] / 1000,
            "max_ms": res["max_us"] / 1000,
            "codes": codes,
            "socket_errors": sock,
            "cpu_gateway_pct": split["gateway"],
            "cpu_upstream_pct": split["upstream"],
            "cpu_postgres_pct": split["postgres"],
            "cpu_wrk_pct": 100
            * ((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime))
            / wall,
            "cpu_self_pct": 100
            * ((me1.ru_utime + me1.ru_stime) - (me0.ru_utime + me0.ru_stime))
            / wall,
            "cpu_machine_pct": 100 * NCPU * (m1[0] - m0[0]) / max(1, m1[1] - m0[1]),
            "cpu_foreign": foreign,
            "rss_peak_mb": {roles.get(p, str(p)): round(v, 1) for p, v in sorted(peak.items())},
            "rss_end_mb": {k: round(v, 1) for k, v in rss_end.items() if v is not None},
            "rss_after_warmup_mb": {
                k: round(v, 1) for k, v in rss_after_warmup.items() if v is not None
            },
        }
        # CPU cost of one accepted send: steadier than the rate on a busy machine
        row["gateway_cpu_us_per_send"] = (
            row["cpu_gateway_pct"] / 100 * 1e6 / row["accepted_rps"] if accepted else None
        )
        row["cpu_other_pct"] = row["cpu_machine_pct"] - sum(
            row[k]
            for k in (
                "cpu_gateway_pct",
                "cpu_upstream_pct",
                "cpu_postgres_pct",
                "cpu_wrk_pct",
                "cpu_self_pct",
            )
        )
        # foreign load (other programs on the box) makes a run's numbers suspect
        row["disturbed"] = bool(foreign) or row["cpu_other_pct"] > 15
        row["check"] = check(row)
        rows.append(row)
        with open(out_jsonl, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(
            f"   run {i}: {row['rps']:.0f} req/s, accepted {row['accepted_rps']:.0f}/s, "
            f"forwarded {row['forwarded_rps']:.0f}/s (+{row['forwarded_total']} after "
            f"{row['drain_s']}s drain, 2xx {accepted}), log rows {log_rows} {by_status}, "
            f"p50 {row['p50_ms']:.1f} ms p99 {row['p99_ms']:.1f} ms, codes {codes} {sock or ''}, "
            f"cpu gw {row['cpu_gateway_pct']:.0f}% ({row['gateway_cpu_us_per_send'] or 0:.0f} us/send) up {row['cpu_upstream_pct']:.0f}% "
            f"pg {row['cpu_postgres_pct']:.0f}% "
            f"wrk {row['cpu_wrk_pct']:.0f}% machine {row['cpu_machine_pct']:.0f}%/{NCPU * 100}% "
            f"(other {row['cpu_other_pct']:.0f}%{', foreign ' + str(foreign) if foreign else ''}), "
            f"RSS peak {fmt_rss(row['rss_peak_mb'])}"
            f"{f', GetUserID answers {mint_answers}' if sc.mints else ''} -> {row['check']}"
            + ("  ** DISTURBED: foreign CPU load **" if row["disturbed"] else ""),
            flush=True,
        )

    stop(gw)
    stop(upstream)
    summary = summarise(sc, rows, args)
    summary["customers"] = customers
    summary["label"] = label
    summary["per_run"] = [
        {"accepted_rps": round(r["accepted_rps"]), "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"]} for r in rows
    ]
    if label:
        summary["scenario"] = f"{sc.name} [{label}]"
    summary["load_s"] = round(load_s, 1)
    summary["warmup_codes"] = w["codes"]
    with open(out_jsonl, "a") as f:
        f.write(json.dumps(summary) + "\n")
    return summary


def check(row: dict) -> str:
    """forwarded and log rows must match the accepted count (wrk does not count the requests
    still in flight when it stops: up to `conns` more), and nothing but 200:0 may come back."""
    problems = []
    acc, slack = row["accepted"], row["conns"]
    if not acc <= row["forwarded_total"] <= acc + slack:
        problems.append(f"fwd {row['forwarded_total']}!=2xx {acc}")
    if not acc <= row["log_rows"] <= acc + slack:
        problems.append(f"rows {row['log_rows']}!=2xx {acc}")
    if set(row["codes"]) - {"200:0"} or row["socket_errors"]:
        problems.append("errors")
    return "ok" if not problems else "; ".join(problems)


def summarise(sc: Scenario, rows: list[dict], args: argparse.Namespace) -> dict:
    med = lambda k: statistics.median(r[k] for r in rows)  # noqa: E731
    codes: dict[str, int] = {}
    for r in rows:
        for k, n in r["codes"].items():
            codes[k] = codes.get(k, 0) + n
        for k, n in r["socket_errors"].items():
            codes[k] = codes.get(k, 0) + n
    peak: dict[str, float] = {}
    for r in rows:
        for k, v in r["rss_peak_mb"].items():
            peak[k] = max(peak.get(k, 0.0), v)
    return {
        "kind": "median",
        "scenario": sc.name,
        "runs": len(rows),
        "seconds": args.seconds,
        "db": sc.db,
        "workers": sc.workers,
        "conns": sc.conns,
        "customers": args.customers,
        "hot": sc.hot,
        "delay_ms": sc.delay_ms,
        **{
            k: med(k)
            for k in (
                "rps",
                "accepted_rps",
                "forwarded_rps",
                "log_rows",
                "accepted",
                "forwarded_total",
                "p50_ms",
                "p99_ms",
                "cpu_gateway_pct",
                "cpu_upstream_pct",
                "cpu_postgres_pct",
                "cpu_wrk_pct",
                "cpu_machine_pct",
                "cpu_other_pct",
            )
        },
        "gateway_cpu_us_per_send": statistics.median(
            [r["gateway_cpu_us_per_send"] for r in rows if r["gateway_cpu_us_per_send"]] or [0]
        ),
        "disturbed_runs": sum(r["disturbed"] for r in rows),
        "log_rows_per_s": statistics.median(r["log_rows"] / r["secs"] for r in rows),
        "codes_total": codes,
        "rss_peak_mb": peak,
        "rss_after_warmup_mb": rows[0]["rss_after_warmup_mb"],
        "rss_end_mb": rows[-1]["rss_end_mb"],
        "checks": [r["check"] for r in rows],
    }


# ----------------------------------------------------------------------------- table


def fmt_rss(d: dict) -> str:
    if not d:
        return "-"
    if set(d) == {"main"}:
        return f"{d['main']:.0f}"
    workers = [f"{v:.0f}" for k, v in sorted(d.items()) if k.startswith("w") and v is not None]
    main = d.get("main")
    return "/".join(workers) + (f" (main {main:.0f})" if main is not None else "")


def fmt_codes(codes: dict) -> str:
    errs = {k: v for k, v in codes.items() if k != "200:0"}
    if not errs:
        return "none"
    return " ".join(f"{k}={v}" for k, v in sorted(errs.items(), key=lambda kv: -kv[1]))


def print_table(results: list[dict]) -> None:
    head = [
        "scenario",
        "conns",
        "accepted/s",
        "forwarded/s",
        "log rows",
        "2xx",
        "p50 ms",
        "p99 ms",
        "errors by code (all runs)",
        "CPU %",
        "peak RSS MB",
        "check",
    ]
    body = []
    for s in results:
        if s["kind"] != "median":
            reason = s["reason"].strip().splitlines()[0] if s["reason"].strip() else ""
            body.append([s["scenario"], str(s.get("conns", "")), s["kind"].upper() + ": " + reason])
            continue
        body.append(
            [
                s["scenario"],
                str(s["conns"]),
                f"{s['accepted_rps']:.0f}",
                f"{s['forwarded_rps']:.0f}",
                f"{s['log_rows']:.0f}",
                f"{s['accepted']:.0f}",
                f"{s['p50_ms']:.1f}",
                f"{s['p99_ms']:.1f}",
                fmt_codes(s["codes_total"]),
                f"{s['cpu_gateway_pct']:.0f}",
                fmt_rss(s["rss_peak_mb"]),
                "ok" if all(c == "ok" for c in s["checks"]) else "CHECK",
            ]
        )
    widths = [
        max(len(head[i]), *(len(r[i]) for r in body if len(r) == len(head) or i < 2))
        for i in range(len(head))
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if 0 < i < 8 or i == 9 else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        )

    print("\n" + line(head))
    print("  ".join("-" * w for w in widths))
    for r in body:
        print(
            line(r)
            if len(r) == len(head)
            else f"{r[0].ljust(widths[0])}  {r[1].rjust(widths[1])}  {r[2]}"
        )

    split = [s for s in results if s["kind"] == "median"]
    if split:
        print(
            "\nCPU split (% of one core, medians; machine = all cores busy, "
            f"{NCPU * 100}% max) and gateway RSS MB after warm-up -> after the last run"
        )
        h2 = [
            "scenario",
            "gateway",
            "upstream",
            "postgres",
            "wrk",
            "machine",
            "other",
            "disturbed",
            "rps (all)",
            "gw CPU us/send",
            "RSS warm-up -> end",
        ]
        b2 = [
            [
                s["scenario"],
                f"{s['cpu_gateway_pct']:.0f}",
                f"{s['cpu_upstream_pct']:.0f}",
                f"{s['cpu_postgres_pct']:.0f}",
                f"{s['cpu_wrk_pct']:.0f}",
                f"{s['cpu_machine_pct']:.0f}",
                f"{s['cpu_other_pct']:.0f}",
                f"{s['disturbed_runs']}/{s['runs']}",
                f"{s['rps']:.0f}",
                f"{s['gateway_cpu_us_per_send']:.0f}",
                f"{fmt_rss(s['rss_after_warmup_mb'])} -> {fmt_rss(s['rss_end_mb'])}",
            ]
            for s in split
        ]
        w2 = [max(len(h2[i]), *(len(r[i]) for r in b2)) for i in range(len(h2))]
        print(
            "  ".join(
                h.rjust(w) if 0 < i < 10 else h.ljust(w)
                for i, (h, w) in enumerate(zip(h2, w2, strict=True))
            )
        )
        print("  ".join("-" * w for w in w2))
        for r in b2:
            print(
                "  ".join(
                    c.rjust(w) if 0 < i < 10 else c.ljust(w)
                    for i, (c, w) in enumerate(zip(r, w2, strict=True))
                )
            )


# ----------------------------------------------------------------------------- main


def print_per_run(results: list[dict]) -> None:
    """accepted/s and p99 of each run in order (a rate that falls run after run grows with the log)."""
    print("\nper run (accepted/s, p99 ms):")
    for r in results:
        if r["kind"] == "median":
            runs = ", ".join(f"{x['accepted_rps']:,} ({x['p99_ms']:.1f})" for x in r["per_run"])
            print(f"  {r['scenario']:<34} {runs}")


def print_ratios(results: list[dict]) -> None:
    """--compare: new / old for each scenario measured on both trees."""
    by = {(r["scenario"].split(" [")[0], r.get("label")): r for r in results if r["kind"] == "median"}
    print("\nnew vs old (medians):")
    print(f"  {'scenario':<26} {'old acc/s':>10} {'new acc/s':>10} {'new/old':>8} {'old p99':>9} {'new p99':>9}")
    for (name, label), new in by.items():
        old = by.get((name, "old"))
        if label != "new" or old is None:
            continue
        ratio = new["accepted_rps"] / old["accepted_rps"] if old["accepted_rps"] else float("inf")
        print(f"  {name:<26} {old['accepted_rps']:>10,.0f} {new['accepted_rps']:>10,.0f} {ratio:>7.2f}x "
              f"{old['p99_ms']:>7.1f}ms {new['p99_ms']:>7.1f}ms")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--scenarios",
        default="all",
        help="comma list of: " + ", ".join(BY_NAME) + " (default: all)",
    )
    ap.add_argument("--seconds", type=float, default=10, help="length of each run (default 10)")
    ap.add_argument(
        "--runs", type=int, default=3, help="runs per scenario; medians are reported (default 3)"
    )
    ap.add_argument(
        "--customers", type=int, default=1000, help="customers (one token each; default 1000)"
    )
    ap.add_argument("--quick", action="store_true", help="smoke check: 1 run of 3 s per scenario")
    ap.add_argument("--tree", type=Path, help="measure another checkout's src (default: this one)")
    ap.add_argument(
        "--compare", type=Path, metavar="OLD_TREE",
        help="run each scenario on OLD_TREE's src, then on this tree (or --tree): new/old ratios at the end",
    )
    args = ap.parse_args()
    if args.quick:
        args.runs, args.seconds = 1, 3
    names = (
        list(BY_NAME)
        if args.scenarios == "all"
        else [n.strip() for n in args.scenarios.split(",") if n.strip()]
    )
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        ap.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    if args.runs < 1 or args.seconds <= 0 or args.customers < 1:
        ap.error("--runs, --seconds and --customers must be positive")
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install -y wrk", file=sys.stderr)
        return 2
    if not os.access(POMBO, os.X_OK) and not (ROOT_TREE / "src" / "pombo").is_dir():
        print(
            f"{POMBO} not found: run `make test` or `make demo` once to create the venv",
            file=sys.stderr,
        )
        return 2

    signal.signal(signal.SIGTERM, on_signal)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    results_dir = BENCH / "results"
    results_dir.mkdir(exist_ok=True)
    out_jsonl = results_dir / f"{stamp}.jsonl"
    print(
        f"pombo bench: {', '.join(names)}; {args.runs} x {args.seconds:g} s after a {WARMUP_S} s warm-up; "
        f"{args.customers} customers; {NCPU} CPUs; results {out_jsonl}",
        flush=True,
    )
    results: list[dict] = []
    status = 0
    try:
        for name in names:
            sc = BY_NAME[name]
            try:
                if args.compare:
                    results.append(run_scenario(sc, args, stamp, out_jsonl, args.compare, "old"))
                    stop_all()
                    results.append(run_scenario(sc, args, stamp, out_jsonl, args.tree or ROOT_TREE, "new"))
                else:
                    results.append(run_scenario(sc, args, stamp, out_jsonl, args.tree))
            except Skip as exc:
                print(f"   SKIPPED: {exc}", flush=True)
                results.append(
                    {"kind": "skipped", "scenario": name, "conns": sc.conns, "reason": str(exc)}
                )
            except (Fail, Exception) as exc:  # noqa: B014 - one broken scenario must not stop the rest
                if not isinstance(exc, Fail):
                    import traceback

                    traceback.print_exc()
                    exc = Fail(f"{type(exc).__name__}: {exc}")
                print(f"   FAILED: {exc}", flush=True)
                results.append(
                    {"kind": "failed", "scenario": name, "conns": sc.conns, "reason": str(exc)}
                )
                status = 1
            finally:
                stop_all()
            if results[-1]["kind"] != "median":
                with open(out_jsonl, "a") as f:
                    f.write(json.dumps(results[-1]) + "\n")
    except KeyboardInterrupt:
        print("\ninterrupted", flush=True)
        status = 130
    finally:
        stop_all()
    if results:
        print_table(results)
        print_per_run(results)
        if args.compare:
            print_ratios(results)
        print(f"\nJSON lines: {out_jsonl}")
    return status


if __name__ == "__main__":
    sys.exit(main())
