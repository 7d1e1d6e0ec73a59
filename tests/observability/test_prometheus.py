"""The shipped Grafana dashboard and Prometheus alert rules, against a real Prometheus (issue 17).

Debian's `prometheus` package (tests/observability/install_prometheus.sh): `promtool` checks the
rules and runs their unit tests (deploy/prometheus/alerts_test.yml, each alert fired); then a
Prometheus on a free port scrapes a running Pombo (with its /metrics bearer token) and evaluates
every dashboard query and every alert expression through its HTTP API, none with an error, and
every Pombo metric they name is one Pombo exports. Skipped when Prometheus is not installed,
unless POMBO_TEST_REQUIRE_PROMETHEUS=1 (CI sets it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from tests.fakes.upstream import FakeUpstream, pick_free_port
from tests.integration.gateway import TOKEN, provision, provisioning
from tests.live_server import serve

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
EXAMPLE_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "pombo.json"
REQUIRE = os.environ.get("POMBO_TEST_REQUIRE_PROMETHEUS") == "1"
METRICS_TOKEN = "metrics-token-for-prometheus-01"
METRIC = re.compile(r"\b(pombo_[a-z_]+|process_[a-z_]+|up)\b")


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (bash tests/observability/install_prometheus.sh)"
        if REQUIRE:
            pytest.fail(reason + " and POMBO_TEST_REQUIRE_PROMETHEUS=1")
        pytest.skip(reason)
    return path


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expr) of every target of every panel (rows' nested panels included)."""
    doc = json.loads(DASHBOARD.read_text())
    out = []
    stack = list(doc["panels"])
    while stack:
        panel = stack.pop(0)
        stack.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    return out


def alert_rules() -> list[tuple[str, str]]:
    doc = yaml.safe_load(RULES.read_text())
    return [(r.get("alert") or r["record"], r["expr"]) for g in doc["groups"] for r in g["rules"]]


def test_promtool_checks_the_rules_and_fires_each_alert_in_its_unit_tests() -> None:
    promtool = binary("promtool")
    checked = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = subprocess.run([promtool, "check", "config", str(EXAMPLE_CONFIG)], capture_output=True, text=True,
                            check=False)
    assert config.returncode == 0, config.stdout + config.stderr
    tested = subprocess.run([promtool, "test", "rules", RULE_TESTS.name], capture_output=True, text=True,
                            cwd=RULE_TESTS.parent, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    fired = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert fired == {name for name, _ in alert_rules()}  # every alert has a test that fires it


def test_the_dashboard_is_importable_grafana_json() -> None:
    doc = json.loads(DASHBOARD.read_text())
    assert doc["uid"] and doc["title"] and doc["panels"]
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])


def get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return json.loads(exc.read())


def call(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            answer.read()
            return answer.status
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code


@pytest.fixture
def pombo(tmp_path: Path) -> Iterator[str]:
    """A running Pombo on SQLite (its /metrics behind a token) that answered a send and a rejection."""
    upstream = FakeUpstream()
    upstream.start_in_thread()
    try:
        db = f"sqlite:///{tmp_path / 'pombo.db'}"
        provision(db, provisioning(upstream.url, shop_balance="100.00"))
        with serve(db, metrics_token=METRICS_TOKEN) as (host, port, errors):
            base = f"http://{host}:{port}"
            send = base + "/api/v2/MakeSMS.php?"
            assert call(send + urlencode({"tsid": TOKEN, "dest": "5511987650001", "message": "oi"})) == 200
            assert call(send + urlencode({"tsid": TOKEN, "dest": "123", "message": "oi"})) == 400
            assert call(base + "/metrics") == 401
            yield f"{host}:{port}"
            assert errors.take() == []
    finally:
        upstream.stop_thread()


@pytest.fixture
def prometheus(tmp_path: Path, pombo: str) -> Iterator[str]:
    """A Prometheus on a free loopback port scraping `pombo` every second, with the alert rules."""
    server = binary("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{
            "job_name": "pombo",
            "authorization": {"credentials": METRICS_TOKEN},
            "static_configs": [{"targets": [pombo]}],
        }],
    }
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    port = pick_free_port()
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [server, f"--config.file={path}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def until(what: str, check: Any, timeout: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError) as exc:  # not listening yet
            last = exc
        else:
            if last:
                return last
        time.sleep(0.25)
    raise AssertionError(f"{what}: still {last!r} after {timeout}s")


def query(prom: str, expr: str) -> dict[str, Any]:
    answer: dict[str, Any] = get(f"{prom}/api/v1/query?" + urlencode({"query": expr}))
    return answer


def test_prometheus_scrapes_pombo_and_evaluates_every_dashboard_and_alert_query(pombo: str, prometheus: str) -> None:
    def scraped() -> bool:
        targets = get(f"{prometheus}/api/v1/targets")["data"]["activeTargets"]
        return bool(targets) and all(t["health"] == "up" for t in targets)

    until("the pombo target up", scraped)
    # rate() needs two samples: wait until the MakeSMS answers show as a rate
    until("a rate of MakeSMS answers", lambda: query(
        prometheus, 'sum by (code) (rate(pombo_answers_total{job="pombo", endpoint="MakeSMS"}[5m]))')["data"]["result"])

    exported = set(re.findall(r"^# TYPE (\w+) ", metrics_text(pombo), re.MULTILINE))
    exported |= {f"{name}_total" for name in exported}  # counters' TYPE line names them without _total
    now = time.time()
    queries = dashboard_queries() + alert_rules()
    assert len(queries) >= 20
    for name, expr in queries:
        answer = query(prometheus, expr)
        assert answer["status"] == "success", (name, expr, answer)
        ranged = get(f"{prometheus}/api/v1/query_range?" + urlencode(
            {"query": expr, "start": now - 60, "end": now, "step": "5"}))
        assert ranged["status"] == "success", (name, expr, ranged)
        for metric in METRIC.findall(expr):
            assert metric == "up" or metric in exported, (name, metric)

    # what a scrape of this Pombo has, the dashboard shows
    for expr, want in (
        ('sum by (code) (rate(pombo_answers_total{job="pombo", endpoint="MakeSMS"}[5m]))', {"0", "240"}),
        ('max by (connection, state) (pombo_connection_state{job="pombo"}) == 1', None),
        ('bottomk(10, min by (customer) (pombo_customer_available_credit{job="pombo"}))', None),
        ('sum by (connection) (pombo_upstream_queue_length{job="pombo"})', None),
    ):
        result = query(prometheus, expr)["data"]["result"]
        assert result, expr
        if want is not None:
            assert {r["metric"]["code"] for r in result} >= want
    credit = query(prometheus, 'pombo_customer_available_credit{customer="11"}')["data"]["result"]
    assert float(credit[0]["value"][1]) < 100  # 100.00 less the one send

    # every rule evaluated by Prometheus itself, none in error
    def evaluated() -> list[dict[str, Any]]:
        groups = get(f"{prometheus}/api/v1/rules")["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        ok = len(rules) == len(alert_rules()) and all(r["health"] == "ok" and r.get("lastEvaluation", "").startswith("2")
                                                     and not r["lastEvaluation"].startswith("0001") for r in rules)
        return rules if ok else []

    rules = until("every rule evaluated", evaluated)
    assert all(not r.get("lastError") for r in rules), rules
    firing = {a["labels"]["alertname"] for a in get(f"{prometheus}/api/v1/alerts")["data"]["alerts"]}
    assert not firing & {"PomboDown", "PomboServerErrors"}, firing


def metrics_text(target: str) -> str:
    request = urllib.request.Request(f"http://{target}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        text: str = answer.read().decode()
    return text
