"""Elastography end to end at toy size: pairs from the inverse problem, a 2-D U-Net with the
displacement as field conditions (y_as="fields"), a few training steps, posterior samples of
log mu; and the throughput benchmark's smallest run."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from scorepde.inverse.posterior import AmortisedPosterior, from_simulator
from scorepde.inverse.problems import build_inverse_problem
from scorepde.nets.registry import BackboneConfig
from scorepde.training.config import TrainConfig
from scorepde.training.model_config import ModelConfig
from scorepde.training.transforms import (
    LinearEstimateStandardiser,
    ResidualStandardiser,
    Standardiser,
    transform_from_record,
)

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_field_conditioned_posterior_trains_and_samples(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    problem = build_inverse_problem("elasticity", {"prior": "inclusion", "n_cells": 8})
    x, y = from_simulator(problem.sample_prior, problem.forward, problem.noise, 32, 0)
    assert x.shape == (32, 1, 8, 8) and y.shape == (32, 2, 8, 8)
    model = _unet(2)
    training = TrainConfig(
        epochs=1, batch_size=16, checkpoint_every=1, num_threads=1, plot=False, device="cpu"
    )
    posterior = AmortisedPosterior().train(
        x, y, run_dir=tmp_path / "run", model=model, training=training, y_as="fields"
    )
    assert posterior.model.conditioning_spec.field_channels == 2
    samples = posterior.sample(3, y[0], steps=4, seed=0, device="cpu")
    assert samples.shape == (3, 1, 8, 8) and np.all(np.isfinite(samples))
    again = AmortisedPosterior.load(tmp_path / "run")
    np.testing.assert_array_equal(samples, again.sample(3, y[0], steps=4, seed=0, device="cpu"))


def test_bench_elasticity_smallest_run(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location(
        "bench_elasticity", BENCHMARKS / "bench_elasticity.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    rows = module.main(["--pairs", "4", "--batch", "2", "--sizes", "8", "--campaign-pairs", "0"])
    printed = capsys.readouterr().out
    assert "| N | prior | set-up s | pairs timed | pairs/s (1 core) | 10,000 pairs, s |" in printed
    assert [(row["N"], row["prior"], row["pairs"]) for row in rows] == [
        (8, "inclusion", 4),
        (8, "grf", 4),
    ]
    assert all(row["pairs_per_s"] > 0 for row in rows)


def _unet(cond_channels: int) -> ModelConfig:
    return ModelConfig(
        backbone=BackboneConfig(
            name="unet",
            options={
                "in_channels": 1,
                "out_channels": 1,
                "dims": 2,
                "cond_channels": cond_channels,
                "base_channels": 8,
                "channel_mults": [1, 2],
            },
        ),
        process={"name": "ve", "sigma_min": 0.01, "sigma_max": 20.0},
        sigma_data=1.0,
        parametrisation="edm",
    )


@pytest.mark.parametrize("y_as", ["fields_linear", "fields_residual"])
def test_linear_estimate_channels_train_save_load_and_sample(tmp_path: Path, y_as: str) -> None:
    """y_as="fields_linear" / "fields_residual": the displacement (2 channels) and the linear
    estimate of log mu (1 channel) enter the U-Net; the gain (and the residual's scale) are
    fitted on the training pairs, saved with the model and the reloaded posterior gives the
    same samples, for one observation and for several."""
    torch.set_num_threads(1)
    problem = build_inverse_problem("elasticity", {"prior": "inclusion", "n_cells": 8})
    x, y = from_simulator(problem.sample_prior, problem.forward, problem.noise, 48, 0)
    training = TrainConfig(
        epochs=1, batch_size=16, checkpoint_every=1, num_threads=1, plot=False, device="cpu"
    )
    posterior = AmortisedPosterior().train(
        x, y, run_dir=tmp_path / "run", model=_unet(3), training=training, y_as=y_as
    )
    transform = posterior.y_standardiser
    assert isinstance(transform, LinearEstimateStandardiser)
    residual = y_as == "fields_residual"
    assert isinstance(posterior.x_standardiser, ResidualStandardiser) is residual
    assert posterior.model.conditioning_spec.field_channels == 3
    assert transform.transform(y[:5]).shape == (5, 3, 8, 8)
    samples = posterior.sample(3, y[0], steps=4, seed=0, device="cpu")
    assert samples.shape == (3, 1, 8, 8) and np.all(np.isfinite(samples))
    many = posterior.sample_many(3, y[:2], steps=4, seed=0, device="cpu")
    np.testing.assert_allclose(many[0], samples, rtol=1e-5, atol=1e-6)
    saved = posterior.save(tmp_path / "model")
    for folder in (tmp_path / "run", saved):
        again = AmortisedPosterior.load(folder)
        assert again.y_as == y_as
        np.testing.assert_array_equal(transform.gain, again.y_standardiser.gain)
        if residual:
            np.testing.assert_array_equal(
                posterior.x_standardiser.residual_scale, again.x_standardiser.residual_scale
            )
        np.testing.assert_array_equal(samples, again.sample(3, y[0], steps=4, seed=0, device="cpu"))


def test_residual_standardiser_round_trip_and_refusals() -> None:
    """transform then inverse is the identity given the same conditioning; the record round
    trips; a missing or mis-shaped conditioning is refused with the shapes named."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((50, 1, 4, 4)) * 2.0 + 1.0
    cond = rng.standard_normal((50, 3, 4, 4))
    base = Standardiser.fit(x)
    transform = ResidualStandardiser.fit_residuals(x, cond, base, offset=2)
    z = transform.transform(x, cond)
    np.testing.assert_allclose(np.sqrt(np.mean(z**2, axis=0)), 1.0)
    np.testing.assert_allclose(transform.inverse(z, cond), x, atol=1e-12)
    np.testing.assert_allclose(
        transform.inverse(z[:4], cond[:1]), transform.inverse(z[:4], np.repeat(cond[:1], 4, 0))
    )
    again = transform_from_record(transform.to_record())
    assert isinstance(again, ResidualStandardiser) and again.offset == 2
    np.testing.assert_array_equal(again.transform(x, cond), z)
    with pytest.raises(ValueError, match="needs conditions"):
        transform.inverse(z)
    with pytest.raises(ValueError, match="expected \\(50 or 1"):
        transform.transform(x, cond[:7])
    with pytest.raises(ValueError, match="estimate channels of shape"):
        transform.transform(x, cond[:, :, :2])
    with pytest.raises(ValueError, match="residual_scale of 3 values"):
        ResidualStandardiser.from_dict({**transform.to_record(), "residual_scale": [1.0] * 3})


def test_residual_standard_normal_gives_the_linear_gaussian_marginals() -> None:
    """What an untrained network would sample: a standard normal mapped back through the
    residual transform. On a linear-Gaussian problem (x ~ N(0, I), y = A x + noise) its mean
    is the exact posterior mean and its per-component spread the exact posterior std (the
    residual scale is fitted on cross-fitted estimates, so it is not shrunk by overfitting)."""
    rng = np.random.default_rng(4)
    n, d = 20000, 8
    a = rng.standard_normal((2 * d, d)) / np.sqrt(d)
    noise = 0.3
    x = rng.standard_normal((n, 1, 1, d))
    y = (x.reshape(n, d) @ a.T + noise * rng.standard_normal((n, 2 * d))).reshape(n, 2, 1, d)
    base = Standardiser.fit(x)
    channels = LinearEstimateStandardiser.fit_pairs(y, base.transform(x))
    cond = channels.out_of_fold(y, base.transform(x), folds=5, seed=0)
    transform = ResidualStandardiser.fit_residuals(x, cond, base, offset=2)
    precision = np.eye(d) + a.T @ a / noise**2
    covariance = np.linalg.inv(precision)
    y_new = rng.standard_normal((1, 2, 1, d))
    exact_mean = covariance @ a.T @ y_new.reshape(-1) / noise**2
    draws = transform.inverse(
        rng.standard_normal((20000, 1, 1, d)), channels.transform(y_new)
    ).reshape(-1, d)
    exact_std = np.sqrt(np.diag(covariance))
    # the mean's error is the least-squares gain's estimation error (~0.1 posterior std here)
    np.testing.assert_allclose(draws.mean(0), exact_mean, atol=0.3 * exact_std.min())
    np.testing.assert_allclose(draws.std(0), exact_std, rtol=0.05)


def test_linear_estimate_is_the_least_squares_fit() -> None:
    """The appended channel is the least-squares estimate of the standardised x: on pairs where
    x is an exact linear function of y it reproduces x; its residual is orthogonal to y."""
    rng = np.random.default_rng(0)
    y = rng.standard_normal((400, 2, 3, 3))
    x = (y[:, :1] - 0.5 * y[:, 1:]) * 2.0 + 1.0
    x_std = (x - x.mean(0)) / x.std(0)
    transform = LinearEstimateStandardiser.fit_pairs(y, x_std, ridge=1e-12)
    out = transform.transform(y)
    np.testing.assert_allclose(out[:, :2], (y - y.mean(0)) / y.std(0))
    np.testing.assert_allclose(out[:, 2:], x_std, atol=1e-8)
    noisy = x_std + rng.standard_normal(x_std.shape)
    fitted = LinearEstimateStandardiser.fit_pairs(y, noisy).transform(y)[:, 2:]
    residual = (noisy - fitted).reshape(400, -1)
    z = ((y - y.mean(0)) / y.std(0)).reshape(400, -1)
    assert np.max(np.abs(z.T @ residual) / 400) < 1e-3
    record = transform.to_record()
    again = LinearEstimateStandardiser.from_dict(record)
    np.testing.assert_array_equal(again.transform(y[:3]), transform.transform(y[:3]))
    with pytest.raises(TypeError, match="no inverse"):
        transform.inverse(out)
    with pytest.raises(ValueError, match="gain of shape"):
        LinearEstimateStandardiser.from_dict({**record, "gain": record["gain"][:, :-1]})


def test_fields_linear_refuses_wrong_shapes_and_channels(tmp_path: Path) -> None:
    problem = build_inverse_problem("elasticity", {"prior": "inclusion", "n_cells": 8})
    x, y = from_simulator(problem.sample_prior, problem.forward, problem.noise, 8, 0)
    training = TrainConfig(epochs=1, batch_size=4, num_threads=1, plot=False, device="cpu")
    with pytest.raises(ValueError, match=r"cond_channels = 2.*set cond_channels: 3"):
        AmortisedPosterior().train(
            x, y, run_dir=tmp_path / "a", model=_unet(2), training=training, y_as="fields_linear"
        )
    with pytest.raises(ValueError, match="on y's grid"):
        AmortisedPosterior().train(
            x[:, :, :4],
            y,
            run_dir=tmp_path / "b",
            model=_unet(3),
            training=training,
            y_as="fields_linear",
        )


def test_out_of_fold_estimates_have_the_error_of_new_data() -> None:
    """x independent of y (nothing to learn): the in-sample estimate fits the noise (residual
    variance ~ 1 - dy/n), the cross-fitted one does not (residual variance >= 1, as on new
    pairs)."""
    rng = np.random.default_rng(1)
    y = rng.standard_normal((300, 2, 50))
    x = rng.standard_normal((300, 1, 50))
    transform = LinearEstimateStandardiser.fit_pairs(y, x)
    in_sample = transform.transform(y)[:, 2:] - x
    crossed = transform.out_of_fold(y, x, folds=5, seed=0)
    np.testing.assert_allclose(crossed[:, :2], transform.transform(y)[:, :2])
    assert np.var(in_sample) < 0.75
    assert np.var(crossed[:, 2:] - x) > 1.0
    fresh_y, fresh_x = rng.standard_normal((300, 2, 50)), rng.standard_normal((300, 1, 50))
    assert np.var(transform.transform(fresh_y)[:, 2:] - fresh_x) > 1.0
    with pytest.raises(ValueError, match="folds = 1"):
        transform.out_of_fold(y, x, folds=1)
