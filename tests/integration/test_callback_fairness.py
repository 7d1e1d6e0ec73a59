"""Issue 16: one customer's dead callback endpoint does not delay another customer's callbacks.

Runs bench/callback_fairness.py (a real `pombo serve`): 40 messages of customer A whose rurl
accepts and never answers, then one of customer B; B's callback must arrive within 2 s (it took
22-50 s when one 16-slot semaphore and a batch-waiting loop served everyone)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import scratch_pg_database

ROOT = Path(__file__).resolve().parents[2]


def _play(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "callback_fairness.py"), "--json", "--wait", "30", *args],
        capture_output=True, text=True, timeout=180, env=dict(os.environ), cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_dead_endpoint_delays_only_its_own_customer() -> None:
    result = _play()
    assert result["b_delay"] is not None and result["b_delay"] < 2.0, result
    # A's endpoint got only its customer's few slots, not the whole sender
    assert 1 <= result["a_pushes_stalled"] <= 8, result


def test_the_same_on_postgresql_with_two_workers() -> None:
    with scratch_pg_database("pombo_fair") as url:
        result = _play("--database-url", url, "--workers", "2")
    assert result["b_delay"] is not None and result["b_delay"] < 2.0, result
