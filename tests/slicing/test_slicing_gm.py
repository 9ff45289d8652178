"""Adaptive Gaussian-mixture regularisation."""

from __future__ import annotations

import pytest
import torch
from sample_digits import load_digits
from torch import nn

from slicing import GMRegularizer, evaluate_rates, fit, sliced_mlp


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _layer(seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(20, 30)


def test_apply_adds_exactly_the_prior_gradient():
    layer = _layer()
    reg = GMRegularizer(layer, train_size=100, n_components=3, update_every=1)
    assert [p is layer.weight for p in reg.params] == [True]  # biases are left alone
    layer(torch.randn(4, 20)).square().sum().backward()
    data_grad = layer.weight.grad.clone()
    bias_grad = layer.bias.grad.clone()
    reg.apply(step=0)  # EM update first, then the gradient under the updated mixture
    # Independent check: autograd of strength * (-log p(w)) under the same mixture.
    w = layer.weight.detach().clone().requires_grad_(True)
    log_pdf = torch.distributions.Normal(0.0, reg.states[0].precision.rsqrt()).log_prob(w.reshape(-1, 1))
    neg_log_prior = -torch.logsumexp(log_pdf + reg.states[0].pi.log(), dim=1).sum()
    (expected,) = torch.autograd.grad(neg_log_prior / 100, w)
    assert not torch.allclose(layer.weight.grad, data_grad)
    torch.testing.assert_close(layer.weight.grad - data_grad, expected, rtol=1e-4, atol=1e-7)
    assert torch.equal(layer.bias.grad, bias_grad)


def test_em_keeps_valid_mixing_weights_and_precisions():
    layer = _layer()
    reg = GMRegularizer(layer, train_size=10, n_components=4)
    for _ in range(20):
        reg.em_step()
        with torch.no_grad():
            layer.weight.mul_(0.9)  # weights move between updates, as in training
        pi, lam = reg.states[0].pi, reg.states[0].precision
        assert pi.shape == (4,) and torch.all(pi > 0)
        assert abs(float(pi.sum()) - 1.0) < 1e-5
        assert torch.all(torch.isfinite(lam)) and torch.all(lam > 0)


def test_em_never_decreases_the_likelihood_without_priors():
    layer = _layer(1)
    reg = GMRegularizer(layer, train_size=10, prior_count=0.0)
    nll = [reg.negative_log_prior().item()]
    for _ in range(10):
        reg.em_step()
        nll.append(reg.negative_log_prior().item())
    assert all(b <= a + 1e-3 for a, b in zip(nll, nll[1:], strict=False))
    assert nll[-1] < nll[0]


def test_em_separates_a_two_scale_weight_distribution():
    torch.manual_seed(0)
    w = torch.cat([torch.randn(8000) * 0.01, torch.randn(2000) * 1.0])
    param = nn.Parameter(w.reshape(100, 100))
    reg = GMRegularizer([param], train_size=10, n_components=2, prior_count=0.0)
    for _ in range(50):
        reg.em_step()
    pi, lam = reg.states[0].pi, reg.states[0].precision
    narrow = int(lam.argmax())
    assert abs(float(pi[narrow]) - 0.8) < 0.03
    assert 0.5e4 < float(lam[narrow]) < 2e4  # 1 / 0.01**2
    assert 0.7 < float(lam[1 - narrow]) < 1.4


def test_training_with_gm_still_learns_and_shrinks_small_weights():
    train, val = load_digits(as_image=False).split(0.2, seed=0)
    results = {}
    for use_gm in (False, True):
        torch.manual_seed(0)
        model = sliced_mlp(input_shape=(64,), width=64, depth=1)
        reg = GMRegularizer(model, train_size=len(train), update_every=10) if use_gm else None
        fit(model, train, epochs=4, batch_size=32, weight_decay=0.0, regularizer=reg, device="cpu")
        w = model.features[1].weight.detach()
        results[use_gm] = (evaluate_rates(model, val, device="cpu"), float((w.abs() < 1e-2).float().mean()))
    acc_gm, small_gm = results[True]
    _, small_plain = results[False]
    assert min(acc_gm.values()) > 0.8
    assert small_gm > small_plain + 0.05


def test_bad_arguments():
    with pytest.raises(ValueError, match="train_size"):
        GMRegularizer(_layer(), train_size=0)
    with pytest.raises(ValueError, match="no weight tensors"):
        GMRegularizer(nn.GroupNorm(2, 4), train_size=10)
