"""A tiny template for tuning tests: score = 1 - x², a few short epochs, optional failure."""

import time

from easel.model import BaseModel, FixedKnob, FloatKnob, PolicyKnob


class Quadratic(BaseModel):
    SLICE_RATES = (1.0, 0.5)

    @classmethod
    def get_knob_config(cls):
        return {
            "x": FloatKnob(-1.0, 1.0),
            "epochs": FixedKnob(3),
            "epoch_s": FixedKnob(0.4),
            "early_stop": PolicyKnob("EARLY_STOP"),
        }

    def train(self, dataset_path, *, context=None, **kwargs):
        for epoch in range(self.knobs["epochs"]):
            time.sleep(self.knobs["epoch_s"])
            score = (1 - self.knobs["x"] ** 2) * (epoch + 1) / self.knobs["epochs"]
            if context is not None:
                context.log(f"epoch {epoch}", epoch=epoch, score=score)
                if context.should_stop(epoch, score):
                    break
        self.trained_x = self.knobs["x"]

    def evaluate(self, dataset_path, slice_rate=1.0):
        return (1 - self.trained_x ** 2) * slice_rate

    def predict(self, queries, slice_rate=1.0):
        return [self.trained_x for _ in queries]

    def dump_parameters(self):
        import torch

        from easel.model.params import tensors_to_bytes

        return tensors_to_bytes({"x": torch.tensor([self.trained_x])})

    def load_parameters(self, params):
        from easel.model.params import bytes_to_tensors

        tensors, _meta = bytes_to_tensors(params)
        self.trained_x = float(tensors["x"][0])


class AlwaysFails(Quadratic):
    def train(self, dataset_path, *, context=None, **kwargs):
        raise RuntimeError("this template always fails")
