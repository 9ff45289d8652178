"""Units of a sliced template train exactly as one sequential run: hopping over shards through checkpoints
(fresh template objects, state as bytes) equals plain SGD over the shards in the same order."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from hopping_data import digits, write_shards

from builtin_templates.sliced import SlicedMLPTemplate
from easel.datasets.sharding import shard_order
from easel.model import UnitSpec
from easel.model.params import bytes_to_tensors, tensors_to_bytes
from slicing import MinMaxRandomSampler, batches, build_model, model_rates, train_epoch

KNOBS = {"width": 64, "depth": 2, "lr": 0.05, "batch_size": 32, "weight_decay": 1e-4}


def _template() -> SlicedMLPTemplate:
    return SlicedMLPTemplate(**KNOBS)


def _hop(paths: list[Path], epochs: int, sizes: tuple[int, ...],
         between=lambda state: state) -> SlicedMLPTemplate:  # noqa: ANN001 - a test hook
    """Every unit on a new template object (as on another worker), the state passed only as bytes."""
    state, template = None, None
    for index in range(epochs * len(paths)):
        shard = index % len(paths)
        unit = UnitSpec(index=index, epoch=index // len(paths) + 1, epochs=epochs, shard=shard,
                        shards=len(paths), shard_sizes=sizes)
        template = _template()
        state = between(template.train_unit(str(paths[shard]), state, unit))
    assert template is not None
    return template


def _sequential(paths: list[Path], epochs: int) -> dict[str, torch.Tensor]:
    """Reference: one model, one optimiser, no checkpoint; each epoch visits shard 0, then shard 1, ..."""
    from easel.datasets import read_dataset

    shards = [read_dataset(p) for p in paths]
    xs = [(torch.from_numpy(s.x), torch.from_numpy(s.y)) for s in shards]
    template = _template()
    torch.manual_seed(0)
    net = build_model("mlp", num_classes=10, input_shape=(1, 8, 8), rates=template.SLICE_RATES, groups=8,
                      width=64, depth=2)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    total = epochs * sum(math.ceil(len(y) / 32) for _x, y in xs)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    sampler = MinMaxRandomSampler(model_rates(net), k=1, seed=0)
    generator = torch.Generator().manual_seed(0)
    step = 0
    for _epoch in range(epochs):
        for x, y in xs:
            stats = train_epoch(net, batches(x, y, 32, shuffle=True, generator=generator), optimizer, sampler,
                                device="cpu", start_step=step, scheduler=schedule)
            step = stats.next_step
    return net.state_dict()


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], tuple[int, ...]]:
    data = digits(limit=300)
    paths = write_shards(tmp_path_factory.mktemp("shards"), data, 2)
    return paths, tuple(len(rows) for rows in shard_order(len(data.y), 2, seed=0))


def test_hopping_over_two_shards_equals_sequential_sgd_over_them(shards) -> None:  # noqa: ANN001
    paths, sizes = shards
    hopped = _hop(paths, epochs=1, sizes=sizes)._net.state_dict()
    reference = _sequential(paths, epochs=1)
    assert hopped.keys() == reference.keys()
    for name, value in reference.items():
        torch.testing.assert_close(hopped[name], value, rtol=1e-5, atol=1e-6, msg=name)


def test_a_resumed_trial_continues_with_its_optimiser_state(shards) -> None:  # noqa: ANN001
    paths, sizes = shards
    reference = _sequential(paths, epochs=2)
    resumed = _hop(paths, epochs=2, sizes=sizes)._net.state_dict()
    for name, value in reference.items():
        torch.testing.assert_close(resumed[name], value, rtol=1e-5, atol=1e-6, msg=name)

    def forget_momentum(state: bytes) -> bytes:
        tensors, meta = bytes_to_tensors(state)
        assert any(k.startswith("optim.") for k in tensors), "the checkpoint carries the momentum buffers"
        return tensors_to_bytes({k: v for k, v in tensors.items() if not k.startswith("optim.")}, meta)

    # The same hops without the optimiser's state end elsewhere: the equality above is not a tautology.
    amnesic = _hop(paths, epochs=2, sizes=sizes, between=forget_momentum)._net.state_dict()
    assert any(not torch.allclose(amnesic[n], v, atol=1e-4) for n, v in reference.items())


def test_a_unit_state_of_another_architecture_is_refused(shards) -> None:  # noqa: ANN001
    paths, sizes = shards
    state = _template().train_unit(str(paths[0]), None, UnitSpec(0, 1, 1, 0, 2, sizes))
    from builtin_templates.sliced import SlicedCNNTemplate

    cnn = SlicedCNNTemplate(width=16, depth=2, lr=0.05, batch_size=32, weight_decay=1e-4)
    with pytest.raises(ValueError, match="'mlp', not 'cnn'"):
        cnn.train_unit(str(paths[1]), state, UnitSpec(1, 1, 1, 1, 2, sizes))


def test_unit_spec_rejects_impossible_units() -> None:
    with pytest.raises(ValueError, match="shard"):
        UnitSpec(index=0, epoch=1, epochs=1, shard=2, shards=2)
    with pytest.raises(ValueError, match="epoch"):
        UnitSpec(index=0, epoch=3, epochs=2)
    assert UnitSpec(index=3, epoch=2, epochs=2, shard=1, shards=2).ends_epoch
    assert SlicedMLPTemplate.supports_units()


def test_units_on_one_object_train_as_units_on_fresh_ones(shards) -> None:  # noqa: ANN001
    """The in-memory shortcut (the state this object just returned) changes nothing."""
    paths, sizes = shards
    template, state = _template(), None
    for index in range(2):
        state = template.train_unit(str(paths[index]), state, UnitSpec(index, 1, 1, index, 2, sizes))
    hopped = _hop(paths, epochs=1, sizes=sizes)._net.state_dict()
    for name, value in template._net.state_dict().items():
        torch.testing.assert_close(hopped[name], value, rtol=1e-5, atol=1e-6, msg=name)
