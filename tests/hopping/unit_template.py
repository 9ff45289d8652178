"""A tiny unit-wise template for the runner tests (uploaded, so it runs in the sandbox): its state counts
units, so a resume from the wrong checkpoint is caught, and it logs the data file each unit read and the process
(sandbox) that ran it."""

import json
import os
import time

from easel.model import BaseModel, FixedKnob, FloatKnob, PolicyKnob

PROCESS = os.urandom(4).hex()  # names the process (sandbox) this module was imported in


class Counter(BaseModel):
    SLICE_RATES = (1.0, 0.5)

    @classmethod
    def get_knob_config(cls):
        return {"x": FloatKnob(-1.0, 1.0), "epochs": FixedKnob(4), "unit_s": FixedKnob(0.2),
                "early_stop": PolicyKnob("EARLY_STOP")}

    def planned_epochs(self):
        return self.knobs["epochs"]

    def train(self, dataset_path, *, context=None, **kwargs):
        raise AssertionError("a unit-wise template is never trained in one piece")

    def train_unit(self, dataset_path, state, unit, *, context=None):
        done = json.loads(state)["units"] if state is not None else 0
        if done != unit.index:
            raise AssertionError(f"unit {unit.index + 1} given the state after {done} units")
        time.sleep(self.knobs["unit_s"])
        if context is not None:
            context.log(f"unit {unit.index + 1} read {os.path.basename(dataset_path)} in process {PROCESS}")
        self.units = done + 1
        return json.dumps({"units": self.units}).encode()

    def evaluate(self, dataset_path, slice_rate=1.0):
        return (1 - self.knobs["x"] ** 2) * self.units / self.knobs["epochs"] * slice_rate

    def predict(self, queries, slice_rate=1.0):
        return [self.units for _ in queries]

    def dump_parameters(self):
        import torch

        from easel.model.params import tensors_to_bytes

        return tensors_to_bytes({"units": torch.tensor([self.units])})

    def load_parameters(self, params):
        from easel.model.params import bytes_to_tensors

        self.units = int(bytes_to_tensors(params)[0]["units"][0])


class SlowCounter(Counter):
    """Counter with longer units: a test that kills a worker mid-stretch has a unit or two to aim at."""

    @classmethod
    def get_knob_config(cls):
        return {**super().get_knob_config(), "unit_s": FixedKnob(1.0)}
