"""Process and HTTP helpers shared by the benchmark scripts (run.py, soak.py).

Every process is started in its own session (own process group) and stopped by group, so
nothing a script started outlives it (also on error, Ctrl-C and SIGTERM).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
VENV_BIN = ROOT / ".venv" / "bin"
POMBO = str(VENV_BIN / "pombo")
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable

_procs: list[subprocess.Popen[bytes]] = []


def start(cmd: list[str], *, log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start cmd in its own session (own process group), its output to log."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
            start_new_session=True,
        )
    _procs.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the process group, wait, then SIGKILL whatever is left of it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"  ! pid {proc.pid} still alive after {timeout:g}s: SIGKILL", flush=True)
    # whatever is left in the group (workers of a dead supervisor, ...)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
    if proc in _procs:
        _procs.remove(proc)


def stop_all() -> None:
    """Stop every process started here, newest first."""
    for proc in list(reversed(_procs)):
        stop(proc, timeout=10.0)


def on_signal(signum: int, _frame: Any) -> None:
    """SIGTERM/SIGINT: unwind, so the finally blocks stop what was started."""
    raise SystemExit(128 + signum)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def upstream_count(port: int) -> int:
    return int(json.loads(http("GET", f"http://127.0.0.1:{port}/count")[1])["total"])


def tail(path: Path, n: int = 6) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join("    | " + x[:300] for x in lines[-n:])


def start_upstream(
    *args: str, port: int, log: Path, fail: Callable[[str], BaseException]
) -> subprocess.Popen[bytes]:
    """Start bench/fake_upstream.py on `port` (more options in `args`) and wait until it answers
    its counter."""
    upstream = start([PYTHON, str(BENCH / "fake_upstream.py"), "--port", str(port), *args], log=log)
    for _ in range(100):
        try:
            upstream_count(port)
            return upstream
        except OSError:
            if upstream.poll() is not None:
                raise fail("fake upstream died:\n" + tail(log)) from None
            time.sleep(0.1)
    raise fail("fake upstream does not answer")
