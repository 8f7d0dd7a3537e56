"""The training loop, checkpoints/resume and the exported model, with tiny models on CPU.

Every run uses one thread (``num_threads=1``): with two or more threads on a shared CPU the
tiny convolutions spend most of their time waiting for each other.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from helpers import tiny_train_config as config
from scorepde.data.normalisation import ConditionEncoder, FieldNormaliser
from scorepde.nets.registry import BackboneConfig
from scorepde.sampling.samplers import sample_euler_maruyama
from scorepde.training import (
    CheckpointError,
    ModelConfig,
    Trainer,
    build_score_model,
    latest_checkpoint,
    load_trained_model,
    read_history,
    save_trained_model,
)

N_POINTS = 16


def tiny_model_config(channels: int = 8) -> ModelConfig:
    options = {
        "in_channels": 2,
        "out_channels": 2,
        "channels": channels,
        "blocks": 2,
        "cond_dim": 1,
        "time_embedding_dim": 16,
        "film_hidden": 16,
    }
    return ModelConfig(backbone=BackboneConfig("film", options))


def tiny_model(channels: int = 8, seed: int = 0):
    torch.manual_seed(seed)
    return build_score_model(tiny_model_config(channels))


def toy_data(n: int = 32, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised fields (n, 2, 16) whose level follows the condition (n, 1) in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    cond = torch.rand(n, 1, generator=generator) * 2 - 1
    x = cond[:, :, None] * torch.ones(n, 2, N_POINTS)
    x = x + 0.1 * torch.randn(n, 2, N_POINTS, generator=generator)
    return x, cond


def test_loss_decreases_and_history_is_recorded(tmp_path):
    """Plain noise prediction starts at loss ~1, so a working trainer must cut it clearly."""
    x, cond = toy_data(32)
    x_val, cond_val = toy_data(8, seed=2)
    model_config = tiny_model_config()
    model_config.parametrisation = "eps"
    torch.manual_seed(0)
    model = build_score_model(model_config)
    trainer = Trainer(model, config(epochs=24, checkpoint_every=24, plot=True), tmp_path)
    result = trainer.fit(x, cond, x_val, cond_val, progress=False)
    loss = result.history["train_loss"]
    assert np.mean(loss[-4:]) < 0.6 * np.mean(loss[:4])
    assert result.epochs_done == 24
    assert result.best_val == min(result.history["val_loss"])
    assert result.samples_per_second > 0
    # history.csv: one row per epoch, the documented columns, same numbers as the result
    with open(tmp_path / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == list(range(1, 25))
    assert {"train_loss", "grad_norm", "val_loss", "lr"} <= set(rows[0])
    on_disk = read_history(tmp_path / "history.csv")
    assert on_disk["train_loss"] == result.history["train_loss"]
    assert all(v > 0 and math.isfinite(v) for v in on_disk["grad_norm"])
    assert on_disk["lr"][0] > on_disk["lr"][-1] >= 1e-4
    assert (tmp_path / "history.png").is_file()
    assert latest_checkpoint(tmp_path).name == "epoch-000024"


def test_validation_loss_is_deterministic_for_fixed_weights(tmp_path):
    x, cond = toy_data(16)
    trainer = Trainer(tiny_model(), config(epochs=1), tmp_path)
    first = trainer.validation_loss(x, cond)
    assert trainer.validation_loss(x, cond) == first


def _final_weights(run_dir) -> tuple[dict, dict]:
    folder = latest_checkpoint(run_dir)
    return load_file(folder / "model.safetensors"), load_file(folder / "ema.safetensors")


def test_resume_after_interruption_gives_identical_weights(tmp_path):
    x, cond = toy_data(20)  # 3 batches of 8, 8, 4
    x_val, cond_val = toy_data(8, seed=2)
    straight = tmp_path / "straight"
    Trainer(tiny_model(), config(), straight).fit(x, cond, x_val, cond_val, progress=False)

    interrupted = tmp_path / "interrupted"

    def interrupt(epoch, row):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_model(), config(), interrupted).fit(
            x, cond, x_val, cond_val, progress=False, callback=interrupt
        )
    assert latest_checkpoint(interrupted).name == "epoch-000002"
    # a fresh process: different initial weights and global RNG, all replaced by the checkpoint
    result = Trainer(tiny_model(seed=123), config(), interrupted).fit(
        x, cond, x_val, cond_val, progress=False
    )
    assert result.epochs_done == 4
    assert len(result.history["epoch"]) == 4
    for a, b in zip(_final_weights(straight), _final_weights(interrupted), strict=True):
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    assert read_history(straight / "history.csv")["train_loss"] == pytest.approx(
        read_history(interrupted / "history.csv")["train_loss"], abs=1e-7
    )
    # only the newest keep_checkpoints=2 folders remain
    names = sorted(p.name for p in (interrupted / "checkpoints").iterdir())
    assert names == ["epoch-000002", "epoch-000004", "latest"]


def test_resume_with_another_model_config_is_an_error(tmp_path):
    x, cond = toy_data(16)
    Trainer(tiny_model(), config(epochs=2), tmp_path).fit(x, cond, progress=False)
    with pytest.raises(CheckpointError, match="different model config"):
        Trainer(tiny_model(channels=4), config(epochs=3), tmp_path).fit(x, cond, progress=False)
    with pytest.raises(CheckpointError, match="already holds checkpoints"):
        Trainer(tiny_model(), config(epochs=3), tmp_path).fit(x, cond, resume=False, progress=False)


def test_corrupt_or_missing_checkpoint_files_are_named(tmp_path):
    x, cond = toy_data(16)
    Trainer(tiny_model(), config(epochs=2), tmp_path).fit(x, cond, progress=False)
    folder = latest_checkpoint(tmp_path)
    (folder / "ema.safetensors").write_bytes(b"\x00\x01garbage")
    with pytest.raises(CheckpointError, match=r"ema\.safetensors"):
        Trainer(tiny_model(), config(epochs=3), tmp_path).fit(x, cond, progress=False)
    (folder / "trainer_state.pt").unlink()
    with pytest.raises(CheckpointError, match=r"missing trainer_state\.pt"):
        Trainer(tiny_model(), config(epochs=3), tmp_path).fit(x, cond, progress=False)
    (tmp_path / "checkpoints" / "latest").write_text("epoch-999999\n")
    with pytest.raises(CheckpointError, match="latest"):
        load_trained_model(tmp_path)


def test_non_finite_loss_stops_with_the_epoch_and_keeps_the_last_good_checkpoint(tmp_path):
    x, cond = toy_data(16)
    model = tiny_model()
    poisoned = {"on": False}

    def poison(module, inputs, output):
        return output * math.nan if poisoned["on"] else output

    model.backbone.register_forward_hook(poison)

    def switch_on(epoch, row):
        poisoned["on"] = True

    trainer = Trainer(model, config(epochs=4, checkpoint_every=1), tmp_path)
    with pytest.raises(FloatingPointError, match="epoch 2"):
        trainer.fit(x, cond, progress=False, callback=switch_on)
    assert latest_checkpoint(tmp_path).name == "epoch-000001"
    assert len(read_history(tmp_path / "history.csv")["epoch"]) == 1


def test_export_load_and_sample_in_physical_units(tmp_path):
    rng = np.random.default_rng(0)
    conditions = rng.uniform(1.0, 3.0, size=(16, 1))  # physical, e.g. volts
    fields = 1000.0 + 50.0 * conditions[:, :, None] + rng.normal(0, 5.0, (16, 2, N_POINTS))
    normaliser = FieldNormaliser(channels=["c", "phi"]).fit(fields)
    encoder = ConditionEncoder(
        names=("U",), units=("V",), low=(1.0,), high=(3.0,), log_scale=(False,)
    )
    x = torch.as_tensor(normaliser.transform(fields), dtype=torch.float32)
    cond = torch.as_tensor(encoder.encode(conditions))
    run_dir = tmp_path / "run"
    trainer = Trainer(
        tiny_model(),
        config(epochs=2),
        run_dir,
        metadata={"problem": "toy", "channel_names": ["c", "phi"]},
        normaliser=normaliser,
        condition_encoder=encoder,
    )
    trainer.fit(x, cond, progress=False)
    exported = save_trained_model(
        tmp_path / "model",
        trainer.model,
        trainer.model_config,
        normaliser=normaliser,
        condition_encoder=encoder,
        problem_name="toy",
        ema=trainer.ema,
    )
    assert {p.name for p in exported.iterdir()} == {
        "model.safetensors",
        "model.yaml",
        "normaliser.json",
        "normaliser.safetensors",
    }

    model = load_trained_model(exported)
    assert model.problem_name == "toy"
    assert model.sample_shape == (2, N_POINTS)
    assert model.condition_names == ["U"] and model.channel_names == ["c", "phi"]
    assert not model.score_model.training
    samples = model.sample([2.0], 3, steps=4, seed=5, batch_size=2)
    assert samples.shape == (3, 2, N_POINTS)
    # the same draw in the normalised space, undone by hand: the export applies the inverse
    normalised = sample_euler_maruyama(
        model.score_model,
        model.process,
        (2, N_POINTS),
        torch.as_tensor(encoder.encode([[2.0]])),
        n=3,
        steps=4,
        seed=5,
    )
    np.testing.assert_allclose(samples, normaliser.inverse(normalised.double().numpy()), rtol=1e-5)
    assert 500.0 < samples.mean() < 1700.0  # physical scale, not O(1)

    # the run folder and its checkpoint give the same (EMA) weights as the export
    for source in (run_dir, latest_checkpoint(run_dir)):
        again = load_trained_model(source)
        assert again.sample_shape == (2, N_POINTS) and again.condition_names == ["U"]
        for key, value in model.score_model.state_dict().items():
            assert torch.equal(value, again.score_model.state_dict()[key])
    with pytest.raises(ValueError, match="unknown sampler"):
        model.sample([2.0], 2, sampler="rk45")
    with pytest.raises(ValueError, match=r"\(k,\) or \(n, k\)"):
        model.sample(np.ones((2, 1)), 3)
