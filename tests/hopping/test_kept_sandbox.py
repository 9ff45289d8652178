"""MOP mode's one sandbox per worker: the uploaded template's child is kept across units of different trials
(a fresh instance with each trial's knobs, each unit's state given), and replaced when its files change or it died. Real
sandboxes; no database (the model row is built in memory)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from easel.blobstore import LocalBlobStore
from easel.db.enums import ModelSource
from easel.db.models import Model
from easel.model import UnitSpec
from easel.sandbox.errors import SandboxError
from train_worker.kept_sandbox import KeptSandbox

HERE = Path(__file__).parent
KNOBS = {"x": 0.5, "epochs": 4, "unit_s": 0.2, "early_stop": False}


def test_one_child_serves_units_of_several_trials(settings, tmp_path: Path) -> None:  # noqa: ANN001
    blobs = LocalBlobStore(tmp_path / "blobs")
    blobs.put_bytes("models/units.py", (HERE / "unit_template.py").read_bytes())
    model = Model(id="m-1", source=ModelSource.UPLOADED, module_ref="models/units.py", model_class="Counter")
    shard, other_shard, val = (tmp_path / name for name in ("0.npz", "1.npz", "val.npz"))
    for path in (shard, other_shard, val):
        path.write_bytes(b"unused")
    kept = KeptSandbox()
    try:
        first = kept.open(model, blobs, settings, KNOBS, [str(shard), str(val)])
        state = first.train_unit(str(shard), None, UnitSpec(index=0, epoch=1, epochs=4))
        process = first.process
        second = kept.open(model, blobs, settings, {**KNOBS, "x": 0.0}, [str(shard), str(val)])  # another trial
        assert second.process is process and kept.started == 1 and second.knobs["x"] == 0.0
        with pytest.raises(SandboxError, match="unit 2 given the state after 0 units"):  # a fresh instance
            second.train_unit(str(shard), None, UnitSpec(index=1, epoch=2, epochs=4))
        resumed = kept.open(model, blobs, settings, KNOBS, [str(shard), str(val)])  # the first trial hops back
        after = resumed.train_unit(str(shard), state, UnitSpec(index=1, epoch=2, epochs=4))
        assert json.loads(after) == {"units": 2} and kept.started == 1

        moved = kept.open(model, blobs, settings, KNOBS, [str(other_shard), str(val)])  # another shard: new child
        assert moved.process is not process and process.closed and kept.started == 2
        moved.process.sock.shutdown(socket.SHUT_RDWR)  # the child is lost between units (its end of the line)
        revived = kept.open(model, blobs, settings, KNOBS, [str(other_shard), str(val)])
        assert revived.process is not moved.process and kept.started == 3
        assert json.loads(revived.train_unit(str(other_shard), None, UnitSpec(index=0, epoch=1, epochs=4))) == {
            "units": 1}
    finally:
        kept.close()
    assert revived.process.closed
