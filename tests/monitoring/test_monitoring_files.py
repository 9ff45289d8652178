"""``deploy/monitoring``: the alert rules validate (``promtool check rules`` when it is installed, else against
the rule-file schema), the Prometheus config scrapes admin, and the Grafana dashboard parses with a query in every
panel naming metrics admin exports (that they really are exported is checked against a running stack in
``tests/serving/test_rolling_update.py``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from monitoring_files import DASHBOARD, PROMETHEUS, RULES, dashboard, metric_names, panel_exprs, rule_exprs

DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
RULE_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
ALERTS = {"EaselHighDropRate", "EaselEffectiveAccuracyBelowSLO", "EaselWorkerDown", "EaselPredictorDown",
          "EaselQueueLagGrowing"}


def check_rule_schema(document: object) -> list[str]:
    """Problems with a Prometheus rule file, per its schema (what promtool checks before PromQL)."""
    problems = []
    if not isinstance(document, dict) or set(document) != {"groups"} or not isinstance(document["groups"], list):
        return ["the file must be a mapping with one key, groups: a list"]
    names = set()
    for group in document["groups"]:
        if not isinstance(group, dict) or not isinstance(group.get("name"), str) or not group["name"]:
            problems.append(f"a group needs a name: {group!r}")
            continue
        if group["name"] in names:
            problems.append(f"group {group['name']} repeated")
        names.add(group["name"])
        for rule in group.get("rules") or []:
            label = rule.get("alert") if isinstance(rule, dict) else rule
            if not isinstance(rule, dict) or not isinstance(rule.get("alert"), str):
                problems.append(f"{label}: an alerting rule needs an alert name")
                continue
            if set(rule) - RULE_KEYS:
                problems.append(f"{label}: unknown keys {sorted(set(rule) - RULE_KEYS)}")
            if not isinstance(rule.get("expr"), str) or not rule["expr"].strip():
                problems.append(f"{label}: expr must be a non-empty PromQL string")
            if "for" in rule and not DURATION.match(str(rule["for"])):
                problems.append(f"{label}: for {rule['for']!r} is not a duration")
            for key in ("labels", "annotations"):
                if key in rule and not (isinstance(rule[key], dict) and all(
                        isinstance(k, str) and isinstance(v, str) for k, v in rule[key].items())):
                    problems.append(f"{label}: {key} must map names to strings")
    return problems


def test_the_alert_rules_validate() -> None:
    document = yaml.safe_load(RULES.read_text())
    assert check_rule_schema(document) == []
    assert set(rule_exprs()) == ALERTS
    promtool = shutil.which("promtool")
    if promtool is not None:
        done = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"SUCCESS: {len(ALERTS)} rules found" in done.stdout


def test_the_schema_check_catches_bad_rules() -> None:
    bad = {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "", "for": "soon", "labels": {"x": 1},
                                               "severity": "page"}]}]}
    assert check_rule_schema(bad) == ["A: unknown keys ['severity']", "A: expr must be a non-empty PromQL string",
                                      "A: for 'soon' is not a duration", "A: labels must map names to strings"]
    assert check_rule_schema({"rules": []}) == ["the file must be a mapping with one key, groups: a list"]


def test_prometheus_scrapes_admin_and_loads_the_rules(tmp_path: Path) -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    assert config["rule_files"] == [RULES.name]
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"]
    assert job["authorization"]["type"] == "Bearer" and job["authorization"]["credentials_file"]
    promtool = shutil.which("promtool")
    if promtool is not None:
        # promtool checks that the token file exists: check a copy of the folder with one written beside it
        shutil.copy(PROMETHEUS, tmp_path / PROMETHEUS.name)
        shutil.copy(RULES, tmp_path / RULES.name)
        (tmp_path / job["authorization"]["credentials_file"]).write_text("a-scrape-token-of-the-operator\n")
        done = subprocess.run([promtool, "check", "config", PROMETHEUS.name], capture_output=True, text=True,
                              timeout=60, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_dashboard_panel_queries_easel_metrics() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and DASHBOARD.read_text().endswith("\n")
    panels = panel_exprs()
    assert len(panels) == len(board["panels"]) >= 8
    ids = [p["id"] for p in board["panels"]]
    assert len(set(ids)) == len(ids)
    for title, exprs in panels.items():
        assert exprs, f"panel {title!r} has no query"
        for expr in exprs:
            assert metric_names(expr), f"panel {title!r}: {expr!r} names no easel metric"
            assert expr.count("(") == expr.count(")"), f"panel {title!r}: unbalanced {expr!r}"


@pytest.mark.parametrize("expr, names", [
    ('sum by (app) (rate(easel_app_instances_total{status="dropped"}[10m]))', {"easel_app_instances_total"}),
    ("easel_app_workers_up < easel_app_workers_wanted", {"easel_app_workers_up", "easel_app_workers_wanted"}),
])
def test_metric_names_are_read_from_expressions(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
