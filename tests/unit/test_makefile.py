"""The README's two commands (issue 17, item 7): `make demo` installs Pombo without the test
tools and takes PORT=; only `make test` (and lint, bench) install `.[test]`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")


def _dry_run(tmp_path: Path, *args: str) -> list[str]:
    """What make would run, for a venv that does not exist yet."""
    done = subprocess.run(["make", "-n", "--no-print-directory", "-C", str(ROOT), *args, f"VENV={tmp_path / 'venv'}"],
                          capture_output=True, text=True, timeout=30, check=True,
                          env={k: v for k, v in os.environ.items() if k not in ("PORT", "MAKEFLAGS", "MFLAGS", "VENV")})
    return done.stdout.splitlines()


def test_make_demo_installs_no_test_tools_and_takes_a_port(tmp_path: Path) -> None:
    lines = _dry_run(tmp_path, "demo", "PORT=8080")
    assert not any("[test]" in line for line in lines), lines
    assert any(line.endswith("pip install --quiet -e .") for line in lines), lines
    assert lines[-1].endswith("/bin/pombo demo --port 8080"), lines
    assert _dry_run(tmp_path, "demo")[-1].endswith("/bin/pombo demo --port 8000")


def test_make_test_installs_the_test_tools(tmp_path: Path) -> None:
    lines = _dry_run(tmp_path, "test")
    assert any(line.endswith("pip install --quiet -e '.[test]'") for line in lines), lines
    assert lines[-1].endswith("/bin/python -m pytest -q"), lines
