"""The columnar answer (``"answers": "columns"``) says what the per-instance answer says, in arrays."""

from __future__ import annotations

import math
import time

import msgpack
import numpy as np
import orjson
import pytest

from easel.serving import DROPPED, SERVED
from easel.serving_wire import encode_results
from predictor.app import JobInfo, PredictIn, build_response
from predictor.gather import ResultRouter
from predictor.response import build_columns, kept_answers, pack_msgpack

INFO = JobInfo("job", "trial", 2, 4, (3,), ["a", "b", "c"], {1.0: 0.9, 0.5: 0.8})


def answered_waiter(outputs_a, outputs_b):  # noqa: ANN001, ANN201 - test helper
    router = ResultRouter(client=None, stream="s")  # type: ignore[arg-type]
    waiter = router.open("t", 7, time.perf_counter())
    router.dispatch(encode_results("t", "w1", 0.0, SERVED, [(0, 3)], 1.0, outputs_a, version=4))
    router.dispatch(encode_results("t", "w2", 0.0, SERVED, [(3, 2)], 0.5, outputs_b))
    router.dispatch(encode_results("t", "w1", 0.0, SERVED, [(0, 3)], 0.5, outputs_a))  # redelivered: ignored
    router.dispatch(encode_results("t", "w2", 0.0, DROPPED, [(5, 1)], report={"worker": "w2", "served": 2}))
    return waiter  # instance 6 unanswered


def as_instances(columns: dict) -> list[tuple]:
    """The columnar answer rebuilt into the instance form's (status, label, rate, worker, version) rows."""
    c = columns["columns"]
    names = columns["worker_names"]
    return [(c["status"][i], c["label"][i], None if math.isnan(c["slice_rate"][i]) else float(c["slice_rate"][i]),
             names[c["worker"][i]] if c["worker"][i] >= 0 else None,
             None if c["model_version"][i] < 0 else int(c["model_version"][i])) for i in range(len(c["status"]))]


def test_columns_carry_the_instance_forms_facts() -> None:
    rows = np.array([[0.1, 0.7, 0.2], [0.8, 0.1, 0.1], [0.0, 0.2, 0.8], [0.3, 0.3, 0.4], [0.6, 0.3, 0.1]], np.float32)
    waiter = answered_waiter(rows[:3], rows[3:])
    instances = build_response("t", waiter, INFO, 1.0, 0.5)
    columns = build_columns("t", waiter, INFO, 1.0, 0.5)
    expected = [(p["status"], (p["prediction"] or {}).get("label"), p["slice_rate"], p["worker"], p["model_version"])
                for p in instances["predictions"]]
    assert as_instances(columns) == expected
    assert [e[0] for e in expected] == [SERVED] * 5 + [DROPPED] * 2 and expected[0][1:3] == ("b", 1.0)
    assert columns["totals"] == instances["totals"] and columns["totals"]["duplicates"] == 3
    probabilities = columns["columns"]["probabilities"]
    assert np.array_equal(probabilities[:5], rows) and np.isnan(probabilities[5:]).all()
    assert columns["columns"]["latency_s"].tolist() == [p["latency_s"] for p in instances["predictions"]]
    assert kept_answers(columns) == kept_answers(instances), "feedback keeps the same answers either way"
    # msgpack: numeric columns travel as tensors; JSON: as lists with null for NaN
    packed = msgpack.unpackb(pack_msgpack(columns), raw=False)
    tensor = packed["columns"]["probabilities"]
    assert tensor["shape"] == [7, 3] and np.array_equal(
        np.frombuffer(tensor["data"], tensor["dtype"]).reshape(7, 3)[:5], rows)
    text = orjson.loads(orjson.dumps(columns, option=orjson.OPT_SERIALIZE_NUMPY))
    assert text["columns"]["slice_rate"][5] is None and text["columns"]["label"][:2] == ["b", "a"]


def test_outputs_that_are_not_numeric_rows_keep_their_predictions() -> None:
    waiter = answered_waiter(["x", "y", "z"], ["u", "v"])
    columns = build_columns("t", waiter, INFO, 1.0, 0.5)
    assert "probabilities" not in columns["columns"]
    assert columns["columns"]["label"] == ["x", "y", "z", "u", "v", None, None]
    assert columns["columns"]["prediction"][0] == {"label": "x", "probabilities": None}
    assert columns["totals"]["served"] == 5


def test_the_form_is_asked_for_and_checked() -> None:
    assert PredictIn(instances=[[1, 2, 3]], deadline_s=1).answers == "instances"
    assert PredictIn(instances=[[1, 2, 3]], deadline_s=1, answers="columns").answers == "columns"
    with pytest.raises(ValueError, match="answers"):
        PredictIn(instances=[[1, 2, 3]], deadline_s=1, answers="rows")
