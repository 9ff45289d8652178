"""The worker's live policy keeps the scheduler's safety reserve (EASEL_SERVING_SAFETY_SIGMAS) and its measured
spread of batch times across the rebuilds that follow drifting times."""

from __future__ import annotations

import pytest

from easel.settings import Settings
from inference_worker.policy import LivePolicy
from scheduler import paper_xray_profile


def test_a_rebuild_keeps_the_reserve_and_the_measured_spread() -> None:
    p = paper_xray_profile()
    live = LivePolicy("scheduler", p.rates, p.accuracies, p.batch_times, alpha=0.5, min_interval_s=0.0, safety=1.0)
    assert live.policy.safety == 1.0 and live.policy.noise is live.noise
    for k in range(20):  # the full width runs 1.5x and 2.5x its profiled time by turns: drift and spread
        live.observe(0, (1.5 if k % 2 else 2.5) * p.batch_times[0], full=True)
    spread = live.noise.cv
    assert spread > 0.5
    assert live.refresh(1.0)
    assert live.policy.noise is live.noise and live.noise.cv == spread and live.policy.safety == 1.0


def test_the_settings_default_keeps_one_standard_deviation_free(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().serving_safety_sigmas == 1.0
    monkeypatch.setenv("EASEL_SERVING_SAFETY_SIGMAS", "0")
    assert Settings().serving_safety_sigmas == 0.0
    monkeypatch.setenv("EASEL_SERVING_SAFETY_SIGMAS", "-1")
    with pytest.raises(ValueError, match="serving_safety_sigmas"):
        Settings()
