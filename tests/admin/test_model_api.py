"""The knob API, the template base class, safe parameter bytes and the sandboxed template checker."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from builtin_templates import BUILTIN_TEMPLATES, load_template_class
from easel.model import (
    BaseModel,
    CategoricalKnob,
    FixedKnob,
    FloatKnob,
    IntegerKnob,
    KnobError,
    PolicyKnob,
    TrainContext,
    default_knobs,
    knob_config_from_dict,
    knob_config_to_dict,
    validate_knobs,
)
from easel.model.checker import TemplateCheckError, check_template_file
from easel.model.params import is_safetensors, read_metadata
from tests.support import GOOD_TEMPLATE

CONFIG = {
    "lr": FloatKnob(1e-4, 1e-1, log_scale=True),
    "hidden": IntegerKnob(16, 512, log_scale=True),
    "depth": IntegerKnob(1, 4),
    "optimizer": CategoricalKnob(["sgd", "adam"]),
    "batch": CategoricalKnob([32, 64]),
    "epochs": FixedKnob(10),
    "early_stop": PolicyKnob("EARLY_STOP"),
}


def test_knob_config_round_trips_through_json() -> None:
    data = knob_config_to_dict(CONFIG)
    assert json.loads(json.dumps(data)) == data
    assert data["lr"] == {"type": "float", "low": 0.0001, "high": 0.1, "log_scale": True}
    assert data["optimizer"] == {"type": "categorical", "values": ["sgd", "adam"]}
    assert data["early_stop"] == {"type": "policy", "policy": "EARLY_STOP"}
    assert knob_config_from_dict(data) == CONFIG


def test_values_are_validated_and_fixed_knobs_filled() -> None:
    values = validate_knobs(CONFIG, {"lr": 0.01, "hidden": 64, "depth": 2.0, "optimizer": "adam", "batch": 32})
    assert values == {"lr": 0.01, "hidden": 64, "depth": 2, "optimizer": "adam", "batch": 32, "epochs": 10,
                      "early_stop": False}
    assert validate_knobs(CONFIG, default_knobs(CONFIG)) == default_knobs(CONFIG)
    bad = [
        ({"lr": 1.0}, "knob 'lr' must be in"),
        ({"lr": float("nan")}, "finite"),
        ({"hidden": 8}, "must be in"),
        ({"depth": 1.5}, "integer"),
        ({"optimizer": "rmsprop"}, "must be one of"),
        ({"batch": "32"}, "must be one of"),
        ({"epochs": 11}, "fixed at 10"),
        ({"early_stop": "yes"}, "true or false"),
        ({"unknown": 1}, "unknown knob"),
    ]
    base = default_knobs(CONFIG)
    for change, message in bad:
        with pytest.raises(KnobError, match=message):
            validate_knobs(CONFIG, {**base, **change})
    with pytest.raises(KnobError, match="has no value"):
        validate_knobs(CONFIG, {"lr": 0.01})


@pytest.mark.parametrize("make,message", [
    (lambda: FloatKnob(1.0, 0.5), "must not exceed"),
    (lambda: FloatKnob(0.0, 1.0, log_scale=True), "log_scale needs low > 0"),
    (lambda: IntegerKnob(1, 2.5), "must be an int"),
    (lambda: IntegerKnob(True, 3), "must be an int"),
    (lambda: CategoricalKnob([]), "at least one"),
    (lambda: CategoricalKnob(["a", "a"]), "distinct"),
    (lambda: CategoricalKnob("abc"), "list of values"),
    (lambda: CategoricalKnob([[1]]), "bool, int, float or str"),
    (lambda: FixedKnob([1, 2]), "JSON scalar"),
    (lambda: PolicyKnob("FLY"), "unknown policy"),
])
def test_bad_knobs_are_refused(make, message: str) -> None:
    with pytest.raises(KnobError, match=message):
        make()


def test_bad_configs_are_refused() -> None:
    with pytest.raises(KnobError, match="unknown knob type"):
        knob_config_from_dict({"a": {"type": "complex"}})
    with pytest.raises(KnobError, match="bad fields"):
        knob_config_from_dict({"a": {"type": "integer", "low": 1}})
    with pytest.raises(KnobError, match="identifier"):
        knob_config_to_dict({"not valid": FixedKnob(1)})
    with pytest.raises(KnobError, match="must return a dict"):
        knob_config_to_dict([FixedKnob(1)])  # type: ignore[arg-type]


@given(st.floats(1e-6, 1.0), st.floats(1e-6, 1.0), st.booleans())
def test_float_knob_accepts_exactly_its_range(a: float, b: float, log: bool) -> None:
    low, high = min(a, b), max(a, b)
    knob = FloatKnob(low, high, log_scale=log)
    assert knob.validate(low) == low and knob.validate(high) == high
    assert knob_config_from_dict(knob_config_to_dict({"k": knob}))["k"] == knob
    with pytest.raises(KnobError):
        knob.validate(high * 2 + 1)


def test_template_base_class_checks_knobs_at_init() -> None:
    namespace: dict = {}
    exec(GOOD_TEMPLATE, namespace)  # trusted test code, not an upload
    cls = namespace["TinyModel"]
    model = cls(lr=0.01, layers=2, act="relu")
    assert model.knobs == {"lr": 0.01, "layers": 2, "act": "relu", "epochs": 3, "early_stop": False}
    with pytest.raises(ValueError, match="TinyModel: knob 'layers' must be in"):
        cls(lr=0.01, layers=9, act="relu")
    assert issubclass(cls, BaseModel)
    profile = model.profile("unused", [1.0, 0.5], queries=[[0.0]] * 4, repeats=1)
    assert profile["rates"] == [1.0, 0.5] and profile["accuracy"] == [0.5, 0.5]
    assert len(profile["batch_time_s"]) == 2
    context = TrainContext()
    context.log("epoch 1", loss=0.3)
    assert context.records == [("epoch 1", {"loss": 0.3})] and context.should_stop(1, 0.1) is False


def test_builtin_templates_have_valid_knob_configs_without_importing_torch() -> None:
    for spec in BUILTIN_TEMPLATES:
        cls = load_template_class(spec.class_path)
        assert issubclass(cls, BaseModel) and spec.task in cls.TASKS
        config = knob_config_from_dict(spec.knob_config())
        values = default_knobs(config)
        assert validate_knobs(config, values) == values
        template = cls(**values)
        assert template.knobs["early_stop"] is False and cls.SLICE_RATES[0] == 1.0
    with pytest.raises(ValueError, match="not a built-in"):
        load_template_class("os:system")


def test_builtin_registration_imports_nothing_heavy() -> None:
    import subprocess

    code = ("import sys; from builtin_templates import BUILTIN_TEMPLATES as B; [t.knob_config() for t in B]; "
            "print(sorted(m for m in ('torch', 'slicing') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"



def test_admin_reads_the_builtin_catalogue_without_importing_template_code() -> None:
    import subprocess

    code = ("import json, sys; from admin.services.templates import builtin_catalogue; c = builtin_catalogue(); "
            "print(json.dumps([[t['name'], t['module']] for t in c])); "
            "print(sorted(m for m in ('builtin_templates', 'slicing', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.splitlines()
    assert json.loads(out[0]) == [[spec.name, spec.module] for spec in BUILTIN_TEMPLATES]
    assert out[1] == "[]"

def test_checker_runs_the_file_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "t.py"
    path.write_text(GOOD_TEMPLATE + "\nimport os\nopen(os.environ.get('HOME', '.') + '/ran', 'w').write('x')\n"
                    "assert 'EASEL_SECRET_KEY' not in os.environ and 'EASEL_DATABASE_URL' not in os.environ\n")
    info = check_template_file(path, timeout_s=20)
    assert info.class_name == "TinyModel" and info.tasks == ["IMAGE_CLASSIFICATION"]
    assert knob_config_from_dict(info.knob_config)["lr"] == FloatKnob(1e-4, 1e-1, log_scale=True)
    assert not (tmp_path / "ran").exists()  # it ran in a private temp HOME, not here


def test_checker_limits_memory(tmp_path: Path) -> None:
    path = tmp_path / "hog.py"
    path.write_text("block = bytearray(3 * 1024 ** 3)\n")
    with pytest.raises(TemplateCheckError, match="out of memory|MemoryError"):
        check_template_file(path, timeout_s=20, memory_mb=512)


def test_checker_kills_what_the_template_spawns(tmp_path: Path) -> None:
    path = tmp_path / "fork.py"
    pid_file = tmp_path / "child.pid"
    child = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    path.write_text(f"import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', {child!r}])\nwhile True:\n    pass\n")
    with pytest.raises(TemplateCheckError, match="timed out"):
        check_template_file(path, timeout_s=1.5)
    # The grandchild (if it got as far as writing its pid) went with the checker.
    pid = int(pid_file.read_text() or 0) if pid_file.exists() else 0
    assert not pid or _ends(pid, timeout_s=10), f"the template's child {pid} outlived the check"


def _ends(pid: int, timeout_s: float) -> bool:
    """Whether the process ends (or is a zombie: dead, waiting to be reaped) within ``timeout_s``."""
    import psutil

    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def test_safetensors_helpers() -> None:
    torch = pytest.importorskip("torch")
    from easel.model.params import bytes_to_tensors, tensors_to_bytes

    state = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.zeros(3)}
    data = tensors_to_bytes(state, metadata={"arch": "mlp"})
    assert is_safetensors(data) and read_metadata(data) == {"arch": "mlp"}
    loaded, meta = bytes_to_tensors(data)
    assert meta == {"arch": "mlp"} and torch.equal(loaded["w"], state["w"])
    assert not is_safetensors(b"\x80\x04pickle") and not is_safetensors(b"")
