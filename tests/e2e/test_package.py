"""The release as a user gets it (issue 17, item 7): the sdist and the wheel built from the tracked
files, the wheel installed in a clean venv (no site packages, dependencies from the index), and
`pombo demo` there answering the curl it prints.

It downloads and installs the dependencies, so it runs where POMBO_TEST_PACKAGE=1 (CI, .ci/run,
sets it) and is skipped, with the reason, elsewhere.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from tests.e2e.test_first_day import _env
from tests.fakes.upstream import pick_free_port

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.package,
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("POMBO_TEST_PACKAGE") != "1",
                       reason="builds and installs the package with its dependencies: set POMBO_TEST_PACKAGE=1"),
]


def _tracked_copy(dest: Path) -> Path:
    """The repository's tracked files (what a clean clone has), copied to dest."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def _run(*args: str | Path, cwd: Path, timeout: float = 300) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")})
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_wheel_in_a_clean_venv_runs_the_demo(tmp_path: Path) -> None:
    source = _tracked_copy(tmp_path / "src")
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", dist, source, cwd=tmp_path)
    (sdist,) = dist.glob("pombo-*.tar.gz")
    (wheel,) = dist.glob("pombo-*.whl")
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    assert any(n.endswith("/LICENSE") for n in names) and any(n.endswith("/examples/provisioning.yaml") for n in names)
    with zipfile.ZipFile(wheel) as whl:
        files = whl.namelist()
        metadata = whl.read(next(n for n in files if n.endswith(".dist-info/METADATA"))).decode()
    assert "License-Expression: MIT" in metadata
    for needed in ("pombo/console/templates/", "pombo/console/static/", "pombo/adapters/sql/migrations/versions/"):
        assert any(n.startswith(needed) for n in files), needed

    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    _run(venv / "bin" / "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile", wheel, cwd=tmp_path)
    assert _run(venv / "bin" / "pombo", "--version", cwd=tmp_path).strip() == f"pombo, version {_version(wheel)}"

    home = tmp_path / "home"
    home.mkdir()
    port = pick_free_port()
    out = home / "demo.out"
    env = {k: v for k, v in _env(home).items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    with open(out, "wb") as sink:
        proc = subprocess.Popen([str(venv / "bin" / "pombo"), "demo", "--port", str(port)], cwd=home, env=env,
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, out.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, out.read_text()
                time.sleep(0.2)
        curl = re.search(r"(curl -s '[^']*MakeSMS\.php'.*)", out.read_text())
        assert curl, out.read_text()
        answer = subprocess.run(curl.group(1), shell=True, capture_output=True, text=True, timeout=30, check=True)
        assert '"status_code":"0"' in answer.stdout, answer.stdout
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(15)
    assert (home / "pombo-demo.db").exists()


def _version(wheel: Path) -> str:
    return wheel.name.split("-")[1]
