"""The training life cycle end to end through the SDK: admin launches a real advisor and two real train
workers for the built-in sliced MLP on real digits; the trials' parameters load and predict."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from admin.app import create_app
from builtin_templates.sliced import SlicedMLPTemplate
from easel.settings import Settings
from sdk import Client, TrainBudget
from tests.support import ServerThread

EMAIL, PASSWORD = "tuning-root@easel.test", "tuning-root-password"
# A seeded search: the four knob sets are the same every run, so how well the best one learns is not a draw (one
# unseeded run drew four learning rates too small for 20 epochs: best 0.39).
SEARCH_SEED = 0


def digits_npz(folder: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(y))[:900]
    train, val = order[:600], order[600:]
    np.savez(folder / "train.npz", x=x[train], y=y[train])
    np.savez(folder / "val.npz", x=x[val], y=y[val])
    return folder / "train.npz", folder / "val.npz", x[val], y[val]


@pytest.mark.slow
def test_upload_train_with_two_workers_and_predict(settings: Settings, tmp_path: Path) -> None:
    admin_settings = settings.model_copy(update={
        "superadmin_email": EMAIL, "superadmin_password": PASSWORD,
        "password_hash_rounds": 4,
    })
    train_path, val_path, val_x, val_y = digits_npz(tmp_path)
    with ServerThread(create_app(admin_settings)) as server, Client(server.url) as client:
        client.login(EMAIL, PASSWORD)
        train = client.upload_dataset("digits-train", "IMAGE_CLASSIFICATION", train_path)
        val = client.upload_dataset("digits-val", "IMAGE_CLASSIFICATION", val_path)
        mlp = next(m for m in client.list_models(task="IMAGE_CLASSIFICATION") if m.name == "SlicedMLP")
        job = client.create_train_job("tuning-e2e", "IMAGE_CLASSIFICATION", train.id, val.id, [mlp.id],
                                      budget=TrainBudget(model_trial_count=4, workers=2, early_stop=False,
                                                         seed=SEARCH_SEED))
        assert len([s for s in job.sub_train_jobs[0].services if s.kind == "TRAIN_WORKER"]) == 2

        # A hang guard, not a speed test: 4 trials x 20 epochs, now checkpointed after every epoch, on a busy
        # 2-core CI machine.
        deadline = time.monotonic() + 600
        while client.get_train_job(job.app, job.app_version).status not in ("COMPLETED", "ERRORED", "STOPPED"):
            assert time.monotonic() < deadline, "train job did not finish in 10 minutes"
            time.sleep(1)
        assert client.get_train_job(job.app, job.app_version).status == "COMPLETED"

        trials = list(client.list_trials(job.app, job.app_version))
        assert sorted(t.no for t in trials) == [1, 2, 3, 4], "the trial budget is respected"
        assert all(t.status == "COMPLETED" for t in trials), [(t.no, t.status, t.error) for t in trials]
        for trial in trials:
            profile = trial.profile
            assert profile["rates"] == list(SlicedMLPTemplate.SLICE_RATES)
            assert len(profile["accuracy"]) == len(profile["rates"])
            assert all(t > 0 for t in profile["batch_time_s"])
            assert client.get_trial_logs(trial.id).items, "each trial logged its epochs"

        best = client.list_trials(job.app, job.app_version, best=1).items[0]
        assert best.score == max(t.score for t in trials)
        assert best.score > 0.5, "clearly better than chance (0.1) on digits"
        model = SlicedMLPTemplate(**best.knobs)
        model.load_parameters(client.get_trial_parameters(best.id))
        # The loaded parameters are the ones the trial profiled: at every width they predict the validation set
        # as the trial measured it (how well a width does is the search's draw, not what is tested here).
        for rate, profiled in zip(best.profile["rates"], best.profile["accuracy"], strict=True):
            probabilities = np.asarray(model.predict(val_x.tolist(), slice_rate=rate))
            assert probabilities.shape == (len(val_y), 10)
            accuracy = float((probabilities.argmax(axis=1) == val_y).mean())
            assert abs(accuracy - profiled) <= 1 / len(val_y), f"rate {rate}: {accuracy:.3f} vs profiled {profiled:.3f}"
            if rate == 1.0:
                assert accuracy > 0.5, f"full width predicts ({accuracy:.2f})"
