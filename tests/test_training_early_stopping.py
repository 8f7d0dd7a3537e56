"""Early stopping of the generic trainer (``TrainConfig.patience`` / ``min_delta`` /
``restore_best``): it stops, puts the best EMA weights back, survives an interruption, and is
off by default.

The case is built to make the validation loss fall, then rise: the training fields sit at level
+1, the validation fields at level 0, with the same (zero) condition. The network first learns
what both share (the scale of the noise), then the training level alone, which is what
memorising a training set looks like from the validation loss (epochs 1-8 here: 0.212, 0.211,
0.208, then 0.214, 0.227, 0.245, ...).
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from helpers import tiny_train_config
from scorepde.nets.registry import BackboneConfig
from scorepde.training import ModelConfig, Trainer, build_score_model, latest_checkpoint
from scorepde.training.config import TrainConfig

N_POINTS = 8


def model(seed: int = 0):
    options = {"data_dim": N_POINTS, "cond_dim": 1, "hidden": 32, "depth": 2}
    torch.manual_seed(seed)
    return build_score_model(ModelConfig(backbone=BackboneConfig("mlp", options)))


def level_data(level: float, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = level + 0.05 * torch.randn(n, 1, N_POINTS, generator=generator)
    return x, torch.zeros(n, 1)


TRAIN = level_data(1.0, 32, seed=1)
VAL = level_data(0.0, 16, seed=2)


def config(**changes) -> TrainConfig:
    base = {
        "epochs": 40,
        "learning_rate": 3e-3,
        "min_learning_rate": 3e-3,
        "ema_decay": 0.5,
        "checkpoint_every": 5,
        "patience": 3,
        "restore_best": True,
    }
    return tiny_train_config(**{**base, **changes})


def fit(run_dir, cfg: TrainConfig, seed: int = 0, **kwargs):
    trainer = Trainer(model(seed), cfg, run_dir)
    return trainer, trainer.fit(*TRAIN, *VAL, progress=False, **kwargs)


def test_stops_after_patience_and_restores_the_best_ema_weights(tmp_path):
    trainer, result = fit(tmp_path, config())
    val = result.history["val_loss"]
    best = min(range(len(val)), key=val.__getitem__)
    # the case does what it is built for: the validation loss fell, then rose
    assert 0 < best < len(val) - 1 and val[0] > val[best] < val[-1]
    assert result.best_epoch == best + 1
    assert result.stopped_epoch == result.best_epoch + 3  # patience 3, validated every epoch
    assert result.epochs_done == result.stopped_epoch < 40
    assert result.restored_best
    # the EMA weights now are those of the best epoch: their validation loss is the best one
    assert trainer.validation_loss(*VAL) == val[best]
    # the final checkpoint is at the stopped epoch and holds the restored EMA weights
    folder = latest_checkpoint(tmp_path)
    assert folder.name == f"epoch-{result.stopped_epoch:06d}"
    saved = load_file(folder / "ema.safetensors")
    for name, value in trainer.ema.shadow.items():
        torch.testing.assert_close(saved[name], value, rtol=0, atol=0)


def test_without_restore_the_last_weights_stay(tmp_path):
    trainer, result = fit(tmp_path, config(restore_best=False))
    assert result.stopped_epoch is not None and not result.restored_best
    assert trainer.validation_loss(*VAL) == result.history["val_loss"][-1] > result.best_val


def test_min_delta_and_val_every_count_validations(tmp_path):
    """With val_every 2, patience counts validations (2 epochs each); a huge min_delta makes
    every validation after the first a non-improvement."""
    _, result = fit(tmp_path, config(val_every=2, min_delta=1e6))
    assert result.best_epoch == 2
    assert result.stopped_epoch == 2 + 3 * 2


def test_resume_after_interruption_continues_the_patience_count(tmp_path):
    straight_dir, interrupted_dir = tmp_path / "straight", tmp_path / "interrupted"
    _, straight = fit(straight_dir, config(checkpoint_every=1))
    stop_at = straight.best_epoch + 2  # two validations without improvement so far

    def interrupt(epoch, row):
        if epoch == stop_at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(interrupted_dir, config(checkpoint_every=1), callback=interrupt)
    state = torch.load(latest_checkpoint(interrupted_dir) / "trainer_state.pt", weights_only=False)[
        "early_stopping"
    ]
    assert state["bad_validations"] == 2 and state["best_epoch"] == straight.best_epoch
    # a fresh process: other initial weights, all replaced by the checkpoint
    _, resumed = fit(interrupted_dir, config(checkpoint_every=1), seed=123)
    assert resumed.stopped_epoch == straight.stopped_epoch
    assert resumed.best_epoch == straight.best_epoch
    for name in ("model.safetensors", "ema.safetensors"):
        a = load_file(latest_checkpoint(straight_dir) / name)
        b = load_file(latest_checkpoint(interrupted_dir) / name)
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    # resuming a run that has stopped trains no further
    _, again = fit(interrupted_dir, config(checkpoint_every=1))
    assert again.epochs_done == straight.epochs_done and again.stopped_epoch is not None


def test_off_by_default_and_checked(tmp_path):
    defaults = TrainConfig()
    assert defaults.patience is None and defaults.min_delta == 0.0 and not defaults.restore_best
    _, result = fit(tmp_path, tiny_train_config(epochs=3, checkpoint_every=3))
    assert result.epochs_done == 3 and result.stopped_epoch is None and result.best_epoch is None
    state = torch.load(latest_checkpoint(tmp_path) / "trainer_state.pt", weights_only=False)
    assert "early_stopping" not in state  # the state of runs without it is unchanged
    with pytest.raises(ValueError, match="patience must be an integer >= 1, got 0"):
        TrainConfig(patience=0)
    with pytest.raises(ValueError, match="min_delta must be finite and >= 0"):
        TrainConfig(min_delta=-1.0)
    with pytest.raises(ValueError, match="restore_best must be true/false"):
        TrainConfig(restore_best="yes")
    with pytest.raises(ValueError, match="need a validation set"):
        Trainer(model(), config(), tmp_path / "noval").fit(*TRAIN, progress=False)
