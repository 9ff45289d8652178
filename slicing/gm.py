"""Adaptive Gaussian-mixture regularisation (Luo et al., ICDE 2018).

Each weight tensor gets a zero-mean K-component Gaussian mixture prior
``p(w) = sum_k pi_k N(w | 0, 1/lambda_k)``. Its gradient, ``sum_k gamma_k(w) lambda_k w`` (gamma: the
posterior responsibility of component k for w), is added to ``.grad`` every step: small weights fall
under high-precision components and are pulled hard to zero, large weights under low-precision ones and
are left mostly alone. Every ``update_every`` steps an EM step re-fits ``pi`` and ``lambda`` to the
current weights (MAP, with Dirichlet / Gamma priors expressed as pseudo-counts). All of it is torch on
the parameters' own device: no host round trips.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class GMState:
    """The mixture fitted to one weight tensor."""

    param: nn.Parameter
    pi: Tensor  # (K,) mixing weights, sum to 1
    precision: Tensor  # (K,) lambda_k > 0
    prior_precision: Tensor  # (K,) where the Gamma prior pulls lambda_k back to


class GMRegularizer:
    """Opt-in regulariser; call ``apply(step)`` after ``backward()`` and before ``optimizer.step()``.

    ``strength`` multiplies the prior's gradient; the Bayesian value for a mean-over-batch loss is
    ``1 / train_size`` (the prior is added once to a likelihood over ``train_size`` examples).
    ``prior_count`` is the pseudo-count, as a fraction of the tensor's size, with which the
    Dirichlet/Gamma priors hold pi and lambda near their start — it keeps components from collapsing.
    """

    def __init__(
        self,
        params: nn.Module | Iterable[nn.Parameter],
        *,
        train_size: int,
        n_components: int = 4,
        update_every: int = 10,
        strength: float | None = None,
        prior_count: float = 0.01,
        init_spread: float = 4.0,
        precision_bounds: tuple[float, float] = (1e-3, 1e6),
    ) -> None:
        if train_size < 1:
            raise ValueError(f"train_size must be >= 1, got {train_size}")
        if n_components < 1 or update_every < 1:
            raise ValueError("n_components and update_every must be >= 1")
        if isinstance(params, nn.Module):
            # Conv/linear weights only: biases and norm scales are few and should stay free.
            params = [p for p in params.parameters() if p.dim() >= 2]
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("no weight tensors to regularise")
        self.update_every = update_every
        self.strength = 1.0 / train_size if strength is None else strength
        self.prior_count = prior_count
        self.precision_bounds = precision_bounds
        self.states = [self._init_state(p, n_components, init_spread) for p in self.params]

    @staticmethod
    @torch.no_grad()
    def _init_state(p: nn.Parameter, k: int, spread: float) -> GMState:
        # Precisions spread geometrically around 1/E[w^2] so components start distinct but plausible.
        var = float(p.detach().float().square().mean().clamp_min(1e-8))
        exponents = torch.arange(k, dtype=torch.float32, device=p.device) - (k - 1) / 2
        precision = spread**exponents / var
        pi = torch.full((k,), 1.0 / k, device=p.device)
        return GMState(p, pi, precision, precision.clone())

    @staticmethod
    def _log_joint(w2: Tensor, state: GMState) -> Tensor:
        """log(pi_k N(w | 0, 1/lambda_k)) for every weight and component: (M, K)."""
        lam = state.precision
        return state.pi.log() + 0.5 * (lam.log() - math.log(2 * math.pi)) - 0.5 * w2 * lam

    def responsibilities(self, state: GMState) -> Tensor:
        w2 = state.param.detach().reshape(-1, 1).float().square()
        return torch.softmax(self._log_joint(w2, state), dim=1)

    @torch.no_grad()
    def em_step(self) -> None:
        """One EM step per tensor: E (responsibilities), then MAP re-estimates of pi and lambda."""
        lo, hi = self.precision_bounds
        for s in self.states:
            w2 = s.param.detach().reshape(-1, 1).float().square()
            gamma = torch.softmax(self._log_joint(w2, s), dim=1)
            n_k = gamma.sum(0)
            c = self.prior_count * w2.shape[0]
            s.pi = (n_k + c) / (n_k.sum() + c * n_k.numel())
            # Gamma(a, b) prior with 2(a-1) = c and 2b = c / lambda0: a pull of c pseudo-weights to lambda0.
            s.precision = ((n_k + c) / ((gamma * w2).sum(0) + c / s.prior_precision)).clamp(lo, hi)

    @torch.no_grad()
    def gradient(self, state: GMState) -> Tensor:
        """d/dw of -log p(w): sum_k gamma_k(w) lambda_k w, shaped like the parameter."""
        w = state.param.detach()
        coef = self.responsibilities(state) @ state.precision
        return (coef.reshape(w.shape) * w.float()).to(w.dtype)

    @torch.no_grad()
    def apply(self, step: int) -> None:
        if step % self.update_every == 0:
            self.em_step()
        for s in self.states:
            g = self.strength * self.gradient(s)
            if s.param.grad is None:
                s.param.grad = g
            else:
                s.param.grad.add_(g)

    def negative_log_prior(self) -> Tensor:
        """Sum over tensors of -log p(w) (differentiable in the weights; for reporting and checks)."""
        total = torch.zeros((), device=self.params[0].device)
        for s in self.states:
            w2 = s.param.reshape(-1, 1).float().square()
            total = total - torch.logsumexp(self._log_joint(w2, s), dim=1).sum()
        return total

    def summary(self) -> list[dict[str, list[float]]]:
        """Mixing weights and precisions per tensor, as plain floats (one host copy, for logs)."""
        return [{"pi": s.pi.tolist(), "precision": s.precision.tolist()} for s in self.states]
