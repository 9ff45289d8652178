"""The house rules of the layout table, executable: import-linter contracts (``pyproject.toml``) kept, and
equal to the README layout table's "may import" column."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from grimp import ImportGraph
from import_contract import AllowedImportsContract

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"slicing", "scheduler", "easel", "builtin_templates", "admin", "advisor", "predictor", "train_worker",
           "inference_worker", "sdk", "demo"}


def test_every_import_contract_is_kept() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def _layout_table() -> dict[str, set[str]]:
    """``{folder: project packages it may import}`` from the README's layout table."""
    rows = {}
    for line in (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        folder = re.fullmatch(r"`(\w+)/`", cells[0]) if len(cells) == 3 else None
        if folder and folder.group(1) in PROJECT:
            rows[folder.group(1)] = set(re.findall(r"`(\w+)`", cells[2])) & PROJECT
    return rows


def test_the_contracts_say_what_the_layout_table_says() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    assert set(config["root_packages"]) == PROJECT
    contracted = {}
    for contract in config["contracts"]:
        for source in contract["source_modules"]:
            contracted[source] = set(contract.get("allowed_modules", [])) & PROJECT
    table = _layout_table()
    assert set(table) == PROJECT
    assert contracted == table


def _graph() -> ImportGraph:
    graph = ImportGraph()
    for module in ("lib", "lib.core", "svc", "svc.app"):
        graph.add_module(module)
    for external in ("torch", "requests", "json"):
        graph.add_module(external, is_squashed=True)
    for importer, imported in [("lib.core", "torch"), ("lib.core", "json"), ("lib", "lib.core"),
                               ("svc.app", "requests"), ("svc.app", "lib.core")]:
        graph.add_import(importer=importer, imported=imported, line_number=3, line_contents="import x")
    return graph


def _check(**options: object) -> list[tuple[str, str]]:
    contract = AllowedImportsContract(name="c", session_options={}, contract_options=options)
    check = contract.check(_graph(), verbose=False)
    assert check.kept == (not check.metadata["violations"])
    return [(v["importer"], v["imported"]) for v in check.metadata["violations"]]


def test_the_contract_type_allows_only_what_it_names() -> None:
    assert _check(source_modules=["lib"], allowed_modules=["torch"]) == []
    assert _check(source_modules=["lib"], allowed_modules=[]) == [("lib.core", "torch")]  # json: stdlib
    assert _check(source_modules=["svc"], allowed_modules=["lib"], external="unchecked") == []
    assert _check(source_modules=["svc"], allowed_modules=[], external="unchecked") == [("svc.app", "lib.core")]
    assert _check(source_modules=["svc"], allowed_modules=["lib"]) == [("svc.app", "requests")]
    assert _check(source_modules=["svc"], allowed_modules=["requests"], pending_modules=["lib"]) == []
