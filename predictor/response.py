"""The answer to a predict request in its columnar form, and what both answer forms share.

A client that sends ``"answers": "columns"`` gets one column per field instead of one entry per instance: the
same facts as the instance form (status, label, probabilities, slice rate, latency, worker, model version of
every instance, and the same ``totals``), built and encoded with array operations. At the narrowest widths the
per-instance entries (a dict per instance, built here and parsed again by the client) cost as much CPU as the
model itself; the columns cost a few array copies. Numeric columns are arrays: in msgpack each travels as a
tensor ``{"dtype", "shape", "data"}`` (the request's tensor form), in JSON as a list (NaN as ``null``).

Columns (position ``i`` is instance ``i``): ``status`` ("served" | "dropped"), ``label`` (None when dropped),
``probabilities`` (``(n, classes)`` float32, NaN rows where dropped; absent when the model's outputs are not
rows of numbers — then ``prediction`` carries the instance form's ``prediction`` values), ``slice_rate``
(NaN where dropped), ``latency_s``, ``worker`` (an index into the answer's ``worker_names``, -1 where unanswered),
``model_version`` (-1 where none).
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

from easel.serving import DROPPED, SERVED

COLUMNS = "columns"
INSTANCES = "instances"
_STATUS_NAMES = np.array([DROPPED, SERVED], dtype=object)


def totals(waiter: Any, info: Any, deadline_s: float, elapsed_s: float, served: int,
           metrics: Any = None) -> dict[str, Any]:
    """The ``totals`` of an answer (either form); ``served``: instances answered with a prediction."""
    n = waiter.n
    by_rate: dict[str, int] = {}
    expected = 0.0
    for block in waiter.blocks:
        rate = block.rate
        key = f"{rate:g}" if rate is not None else "?"
        count = len(block.indices)
        by_rate[key] = by_rate.get(key, 0) + count
        expected += count * info.accuracy.get(float(rate), 0.0) if rate is not None else 0.0
    workers: dict[str, dict[str, Any]] = {}
    for report in waiter.reports:
        mine = workers.setdefault(str(report.get("worker")), {"instances": 0, "served": 0, "dropped": 0,
                                                               "rates": {}, "replans": 0, "shares": 0,
                                                               "compute_s": 0.0})
        mine["shares"] += 1  # more than one: the worker got its share in pieces and planned each
        for name in ("instances", "served", "dropped", "replans"):
            mine[name] += int(report.get(name, 0))
        mine["compute_s"] += float(report.get("compute_s", 0.0))
        for rate, count in (report.get("rates") or {}).items():
            mine["rates"][rate] = mine["rates"].get(rate, 0) + int(count)
        mine["policy"] = report.get("policy")
        mine["planned_effective_accuracy"] = report.get("planned_effective_accuracy")
    dropped = n - served
    if metrics is not None:
        metrics.instances.labels(SERVED).inc(served)
        metrics.instances.labels(DROPPED).inc(dropped)
        metrics.seconds.observe(elapsed_s)
    return {
        "instances": n, "served": served, "dropped": dropped,
        "unanswered": int(n - np.count_nonzero(waiter.status)),
        "by_rate": dict(sorted(by_rate.items(), reverse=True)),
        "expected_effective_accuracy": expected / n if n and info.accuracy else None,
        "deadline_s": deadline_s, "elapsed_s": round(elapsed_s, 6), "duplicates": waiter.duplicates,
        "workers": workers,
    }


def _prediction(output: Any, classes: list[str] | None) -> dict[str, Any]:
    """One value a template returned that is not a row of numbers."""
    if isinstance(output, list) and output and all(isinstance(v, int | float) for v in output):
        best = max(range(len(output)), key=output.__getitem__)
        label = classes[best] if classes and len(classes) == len(output) else str(best)
        return {"label": label, "probabilities": output}
    if isinstance(output, str | int | float) or output is None:
        return {"label": output, "probabilities": None}
    return {"label": None, "probabilities": None, "output": output}


def predictions_of(outputs: np.ndarray | list[Any], classes: list[str] | None) -> list[dict[str, Any]]:
    """The ``prediction`` of each row of a served block: labels by one argmax over the block."""
    if not isinstance(outputs, np.ndarray):
        return [_prediction(output, classes) for output in outputs]
    if outputs.ndim == 2 and outputs.shape[1] > 0:
        names = classes if classes and len(classes) == outputs.shape[1] else [str(k) for k in range(outputs.shape[1])]
        labels = [names[k] for k in outputs.argmax(axis=1).tolist()]
        return [{"label": label, "probabilities": row} for label, row in zip(labels, outputs.tolist(), strict=True)]
    if outputs.ndim == 1:
        return [{"label": value, "probabilities": None} for value in outputs.tolist()]
    return [{"label": None, "probabilities": None, "output": value} for value in outputs.tolist()]


def _numeric_rows(outputs: Any) -> bool:
    return isinstance(outputs, np.ndarray) and outputs.ndim == 2 and outputs.dtype.kind in "fiu"


def build_columns(task: str, waiter: Any, info: Any, deadline_s: float, elapsed_s: float,
                  metrics: Any = None) -> dict[str, Any]:
    """The columnar answer (the instance form's ``prediction`` values only where outputs are not numeric rows)."""
    n = waiter.n
    served_mask = np.zeros(n, bool)
    rates = np.full(n, np.nan)
    blocks = waiter.blocks
    widths = {b.outputs.shape[1] for b in blocks if _numeric_rows(b.outputs)}
    numeric = all(_numeric_rows(b.outputs) for b in blocks) and len(widths) <= 1
    labels: np.ndarray = np.full(n, None, dtype=object)
    columns: dict[str, Any] = {}
    if numeric:
        width = widths.pop() if widths else len(info.classes or ())
        probabilities = np.full((n, width), np.nan, np.float32)
        names = info.classes if info.classes and len(info.classes) == width else [str(k) for k in range(width)]
        name_array = np.array(names, dtype=object)
        for block in blocks:
            index = block.indices
            probabilities[index] = block.outputs
            if width:
                labels[index] = name_array[block.outputs.argmax(axis=1)]
            served_mask[index] = True
            rates[index] = np.nan if block.rate is None else block.rate
        columns["probabilities"] = probabilities
    else:  # outputs a template returned as anything but rows of numbers: the instance form's values
        predictions: np.ndarray = np.full(n, None, dtype=object)
        for block in blocks:
            for i, value in zip(block.indices.tolist(), predictions_of(block.outputs, info.classes), strict=True):
                predictions[i], labels[i] = value, value.get("label")
            served_mask[block.indices] = True
            rates[block.indices] = np.nan if block.rate is None else block.rate
        columns["prediction"] = predictions.tolist()
    answered = waiter.status != 0
    latencies = np.round(np.where(answered, waiter.answered_at, elapsed_s), 6)
    columns = {"status": _STATUS_NAMES[served_mask.view(np.int8)].tolist(), "label": labels.tolist(), **columns,
               "slice_rate": rates, "latency_s": latencies, "worker": waiter.workers.astype(np.int32, copy=False),
               "model_version": waiter.versions.astype(np.int64, copy=False)}
    served = int(served_mask.sum())
    return {"task_id": task, "columns": columns, "worker_names": list(waiter.worker_names),
            "totals": totals(waiter, info, deadline_s, elapsed_s, served, metrics)}


def kept_answers(response: dict[str, Any]) -> list[tuple[str, Any, int | None]]:
    """``(status, label, model version)`` per instance of an answer in either form (what feedback keeps)."""
    columns = response.get("columns")
    if columns is None:
        return [(p["status"], (p["prediction"] or {}).get("label"), p.get("model_version"))
                for p in response["predictions"]]
    versions = [None if v < 0 else v for v in columns["model_version"].tolist()]
    return list(zip(columns["status"], columns["label"], versions, strict=True))


def answer_count(response: dict[str, Any]) -> int:
    return int(response["totals"]["instances"])


def _tensor(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        return {"dtype": array.dtype.str, "shape": list(array.shape), "data": array.tobytes()}
    raise TypeError(f"cannot serialize {type(value).__name__}")


def pack_msgpack(response: dict[str, Any]) -> bytes:
    """msgpack bytes of an answer; arrays (the columns) as tensors ``{"dtype", "shape", "data"}``."""
    return msgpack.packb(response, use_bin_type=True, default=_tensor)


__all__ = ["COLUMNS", "INSTANCES", "answer_count", "build_columns", "kept_answers", "pack_msgpack", "predictions_of",
           "totals"]
