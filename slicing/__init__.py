"""Slicing: model-sliced networks. Pure torch.

Sliced layers and zoo (MLP, VGG, ResNet), one API to set the slice rate of a whole model, slice-rate
training and per-rate evaluation, adaptive Gaussian-mixture regularisation, distributed training on
torch.distributed, per-rate profiles for the scheduler, and the labelled-data type (built from decoded arrays)
(Cai et al., "Model Slicing for Supporting Complex Analytics with Elastic Inference Cost", VLDB 2019).
"""

from .data import LabeledData, as_tensors
from .device import resolve_device
from .distributed import DistributedResult, default_worker_rates, distributed_train
from .flops import count_flops, count_params
from .gm import GMRegularizer
from .layers import (
    SlicedBatchNorm2d,
    SlicedConv2d,
    SlicedGroupNorm,
    SlicedLayer,
    SlicedLinear,
    make_norm,
    sliced_layers,
)
from .module import SlicedModule, get_slice_rate, model_rates, set_slice_rate, slice_rate
from .profiling import SliceProfile, profile, time_rates
from .rates import DEFAULT_RATES, active_groups, normalize_rates, sliced_width
from .sampler import (
    FixedRateSampler,
    MinMaxRandomSampler,
    RandomSampler,
    RateSampler,
    RoundRobinSampler,
    make_sampler,
)
from .train import EpochStats, FitResult, batches, evaluate_rates, fit, train_epoch
from .units import UnitTrainer
from .zoo import (
    ARCHITECTURES,
    SlicedBasicBlock,
    SlicedBottleneck,
    SlicedMLP,
    SlicedResNet,
    SlicedVGG,
    build_model,
    sliced_cnn,
    sliced_mlp,
    sliced_resnet,
    sliced_vgg,
)

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_RATES",
    "DistributedResult",
    "EpochStats",
    "FitResult",
    "FixedRateSampler",
    "GMRegularizer",
    "LabeledData",
    "MinMaxRandomSampler",
    "RandomSampler",
    "RateSampler",
    "RoundRobinSampler",
    "SliceProfile",
    "SlicedBasicBlock",
    "SlicedBatchNorm2d",
    "SlicedBottleneck",
    "SlicedConv2d",
    "SlicedGroupNorm",
    "SlicedLayer",
    "SlicedLinear",
    "SlicedMLP",
    "SlicedModule",
    "SlicedResNet",
    "SlicedVGG",
    "UnitTrainer",
    "active_groups",
    "as_tensors",
    "batches",
    "build_model",
    "count_flops",
    "count_params",
    "default_worker_rates",
    "distributed_train",
    "evaluate_rates",
    "fit",
    "get_slice_rate",
    "make_norm",
    "make_sampler",
    "model_rates",
    "normalize_rates",
    "profile",
    "resolve_device",
    "set_slice_rate",
    "slice_rate",
    "sliced_cnn",
    "sliced_layers",
    "sliced_mlp",
    "sliced_resnet",
    "sliced_vgg",
    "sliced_width",
    "time_rates",
    "train_epoch",
]
