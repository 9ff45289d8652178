"""The monitoring files under ``deploy/monitoring`` and the metric names their queries use (shared by the static
checks here and the scrape of a running stack in ``tests/serving/test_rolling_update.py``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

FOLDER = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
RULES = FOLDER / "alerts.yml"
DASHBOARD = FOLDER / "grafana-dashboard.json"
PROMETHEUS = FOLDER / "prometheus.yml"

_METRIC = re.compile(r"\b(easel_[a-z0-9_]+)\b")


def metric_names(expr: str) -> set[str]:
    return set(_METRIC.findall(expr))


def rule_exprs() -> dict[str, str]:
    """Alert name -> PromQL expression."""
    rules = yaml.safe_load(RULES.read_text())
    return {rule["alert"]: rule["expr"] for group in rules["groups"] for rule in group["rules"]}


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panel_exprs() -> dict[str, list[str]]:
    """Panel title -> its queries' expressions."""
    return {panel["title"]: [target["expr"] for target in panel.get("targets", [])]
            for panel in dashboard()["panels"]}
