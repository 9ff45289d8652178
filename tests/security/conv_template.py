"""A small convolutional template with fixed (seeded, untrained) weights: enough for Grad-CAM and for checking
that a sandboxed ``predict`` sees exactly the batch the parent sent."""

from easel.model import BaseModel, FloatKnob


class TinyConv(BaseModel):
    @classmethod
    def get_knob_config(cls):
        return {"unused": FloatKnob(0.0, 1.0)}

    def __init__(self, **knobs):
        super().__init__(**knobs)
        import torch
        from torch import nn

        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).eval()

    def train(self, dataset_path, *, context=None, **kwargs):
        pass

    def evaluate(self, dataset_path, slice_rate=1.0):
        return 0.0

    def predict(self, queries, slice_rate=1.0):
        import torch

        with torch.no_grad():
            return list(torch.softmax(self.net(torch.as_tensor(queries)), dim=1).numpy())

    def dump_parameters(self):
        return b""

    def load_parameters(self, params):
        pass

    def torch_network(self):
        return self.net
