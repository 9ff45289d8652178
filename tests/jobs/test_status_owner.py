"""Every status write goes through the one owner, ``easel.jobs``: the tree is read (as Python syntax) for
any other module that assigns a ``status`` attribute, passes ``status=`` to a model or an UPDATE, or
updates a status column by dict."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("admin", "advisor", "easel", "inference_worker", "predictor", "train_worker", "scheduler", "slicing",
            "sdk")
OWNER = ROOT / "easel" / "jobs"
#: the ORM classes with a status column (writing ``status=`` in their constructor sets one)
STATEFUL = {"TrainJob", "SubTrainJob", "Trial", "InferenceJob", "Service", "Explanation", "InferenceJobUpdate",
            "ModelVersion"}
#: the columns the owner alone writes (a model version's ``stage`` is a status by another name)
COLUMNS = {"status", "stage"}


def status_writes(source: str) -> list[int]:
    """Line numbers of status writes in ``source``: ``x.status = ...`` (also in a tuple), ``Model(status=...)``
    for a stateful model, ``.values(status=...)`` or ``.values({"status": ...})``."""
    tree = ast.parse(source)
    imports_models = any(
        isinstance(node, ast.ImportFrom) and node.module in ("easel.db.models", "easel.db")
        for node in ast.walk(tree)
    )
    lines = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        flat = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
        if imports_models and any(isinstance(t, ast.Attribute) and t.attr in COLUMNS for t in flat):
            lines.append(node.lineno)
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            keywords = {k.arg for k in node.keywords}
            if name in STATEFUL | {"values"} and keywords & COLUMNS:
                lines.append(node.lineno)
            if name == "values" and any(isinstance(a, ast.Dict) and any(
                    isinstance(k, ast.Constant) and k.value in COLUMNS for k in a.keys) for a in node.args):
                lines.append(node.lineno)
    return lines


def test_no_module_outside_the_owner_writes_a_status() -> None:
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if OWNER in path.parents or "migrations" in path.parts:
                continue
            for line in status_writes(path.read_text()):
                offenders.append(f"{path.relative_to(ROOT)}:{line}")
    assert offenders == [], "status written outside easel/jobs (use a named transition in easel.jobs.lifecycle)"


def test_the_check_catches_each_kind_of_write() -> None:
    source = '''
from easel.db.models import Trial, TrainJob
job.status = "STOPPED"
job.status, job.stopped_at = "STOPPED", now
TrainJob(app="a", status="STARTED")
session.execute(update(Trial).values(status="RUNNING"))
session.execute(update(Trial).values({"status": "RUNNING"}))
'''
    assert status_writes(source) == [3, 4, 5, 6, 7]


def test_the_check_leaves_reads_and_other_status_fields_alone() -> None:
    source = '''
from easel.db.models import Trial
if trial.status == "RUNNING":
    out = TrialOut(status=trial.status)
waiter.status[3] = "served"
'''
    assert status_writes(source) == []
    assert status_writes("self.status: list = []\n") == []  # no ORM model in sight: a field of its own
