"""A template whose predict costs next to nothing (ten zeros per query): what remains of a sandboxed call's
time is the sandbox's own cost (shared-memory copy, socket round trip, msgpack)."""

import numpy as np

from easel.model import BaseModel, FloatKnob


class Constant(BaseModel):
    @classmethod
    def get_knob_config(cls):
        return {"unused": FloatKnob(0.0, 1.0)}

    def train(self, dataset_path, *, context=None, **kwargs):
        pass

    def evaluate(self, dataset_path, slice_rate=1.0):
        return 0.0

    def predict(self, queries, slice_rate=1.0):
        return list(np.zeros((len(queries), 10), dtype=np.float32))

    def dump_parameters(self):
        return b""

    def load_parameters(self, params):
        pass
