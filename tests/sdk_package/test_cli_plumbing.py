"""The ``easel`` command's plumbing, without a server: one command from two packages (entry points), tab
completion, and reading instances to predict."""

from __future__ import annotations

import io
import json
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sdk.cli import PLUGIN_GROUP, build_parser, main
from sdk.instances import read_instances

ROOT = Path(__file__).resolve().parents[2]


def _commands(parser) -> set[str]:
    return set(parser._subparsers._group_actions[0].choices)  # noqa: SLF001 - argparse keeps them here


def test_installed_plugins_add_their_verbs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # A real distribution on sys.path (a .dist-info with entry_points.txt), found through importlib.metadata.
    (tmp_path / "hello_plugin.py").write_text(
        "def register(sub):\n"
        "    sub.add_parser('hello').set_defaults(handler=lambda args: print('hello from a plugin') or 7)\n")
    info = tmp_path / "hello_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hello-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{PLUGIN_GROUP}]\nhello = hello_plugin:register\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["hello"]) == 7 and "hello from a plugin" in capsys.readouterr().out


def test_the_platform_contributes_its_server_verbs() -> None:
    from easel.cli import register

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"][PLUGIN_GROUP] == {"platform": "easel.cli:register"}
    assert project["scripts"]["easel"] == "sdk.cli:main"
    client_only = _commands(build_parser(plugins=[]))
    combined = _commands(build_parser(plugins=[register]))
    assert {"login", "predict", "users"} <= client_only and not {"up", "down", "status", "admin"} & client_only
    services = {"advisor", "train-worker", "predictor", "inference-worker", "explainer"}  # the image's entry points
    assert combined - client_only == {"up", "down", "status", "admin"} | services


def test_tab_completion(monkeypatch: pytest.MonkeyPatch) -> None:
    import argcomplete

    assert "easel" in argcomplete.shellcode(["easel"], shell="bash")
    line = "easel inference s"
    monkeypatch.setenv("_ARGCOMPLETE", "1")
    monkeypatch.setenv("_ARGCOMPLETE_IFS", "\n")
    monkeypatch.setenv("COMP_LINE", line)
    monkeypatch.setenv("COMP_POINT", str(len(line)))
    out = io.StringIO()
    argcomplete.autocomplete(build_parser(plugins=[]), output_stream=out, exit_method=lambda _code: None)
    assert set(out.getvalue().split()) == {"show", "stop"}


def test_completion_verb_prints_the_shell_hook(capsys) -> None:
    assert main(["completion", "zsh"], plugins=[]) == 0
    assert "easel" in capsys.readouterr().out


def test_read_instances_from_every_source(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.arange(6, dtype=np.float32).reshape(3, 2))
    np.savez(tmp_path / "b.npz", x=np.ones((1, 2)), y=np.zeros(1))
    (tmp_path / "c.json").write_text(json.dumps({"instances": [[7, 8]]}))
    Image.new("RGB", (4, 2), (255, 0, 0)).save(tmp_path / "d.png")
    got = read_instances([str(tmp_path / n) for n in ("a.npy", "b.npz", "c.json", "d.png")], io.StringIO(),
                         size=(3, 3))
    assert got[:5] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [1.0, 1.0], [7, 8]]
    image = np.array(got[5])
    assert image.shape == (3, 3, 3) and image[0].min() == 1.0 and image[1].max() == 0.0  # C, H, W; red
    assert read_instances([], io.StringIO("[[1, 2]]")) == [[1, 2]]
    assert np.array(read_instances([str(tmp_path / "d.png")], io.StringIO(), grayscale=True)).shape == (1, 1, 2, 4)  # 1 instance, C=1


@pytest.mark.parametrize(("name", "content", "message"), [
    ("x.txt", b"1,2", "cannot read '.txt'"),
    ("x.json", b"{\"nope\": 1}", "expected a list of instances"),
    ("x.json", b"not json", "not JSON"),
    ("x.npy", b"garbage", "not a readable array file"),
    ("x.png", b"not a png", "not a readable image"),
    ("empty.json", b"[]", "no instances"),
])
def test_read_instances_refuses_bad_input(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_instances([str(tmp_path / name)], io.StringIO())
    with pytest.raises(ValueError, match="no such file"):
        read_instances([str(tmp_path / "absent.npy")], io.StringIO())


def test_the_sdk_imports_no_platform_code() -> None:
    import subprocess

    code = ("import sys, sdk, sdk.cli, sdk.instances; sdk.cli.build_parser(plugins=[]); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'easel', 'admin', 'torch', 'numpy', 'slicing'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
