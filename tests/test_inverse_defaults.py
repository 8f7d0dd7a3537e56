"""The amortised posterior's defaults: the data-sized training recipe (length from the data
size, early stopping with the best EMA weights restored) and the fast default sampler.

The task is the sbi benchmark's gaussian_linear (``make_gaussian_linear_task``): ``x ~ N(0,
0.1 I)``, ``y = x + N(0, 0.1 I)``, exact posterior ``N(y / 2, 0.05 I)`` (std 0.2236).

Statistical tolerances are stated next to their noise floor: with ``n`` samples the standard
error of a posterior-mean component is ``std / sqrt(n)``, that of a standard deviation about
``std / sqrt(2 n)``; the errors are the largest over components and observations.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

import scorepde.inverse.posterior as posterior_module
from scorepde.inverse import AmortisedPosterior, from_simulator, make_gaussian_linear_task
from scorepde.inverse.posterior import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_EPOCHS,
    DEFAULT_MAX_STEPS,
    DEFAULT_MIN_EPOCHS,
    DEFAULT_PATIENCE,
    VALIDATION_ROWS,
    default_train_config,
    fixed_steps_train_config,
)
from scorepde.inverse.recipes import InverseRecipe
from scorepde.sampling.registry import DEFAULT_POSTERIOR_SAMPLER, DEFAULT_POSTERIOR_STEPS
from scorepde.training import read_history
from test_inverse_exact_score import _exact_posterior_model


def moment_errors(samples: np.ndarray, problem, observations: np.ndarray) -> tuple[float, float]:
    """Largest ``|mean error| / posterior std`` and ``|std / exact std - 1|`` over the
    components and observations of ``samples (M, n, d)``."""
    mean_err = std_err = 0.0
    for sample, y in zip(samples, observations, strict=True):
        mean, cov = problem.exact_posterior(y)
        std = np.sqrt(np.diag(cov))
        mean_err = max(mean_err, float(np.max(np.abs(sample.mean(0) - mean) / std)))
        std_err = max(std_err, float(np.max(np.abs(sample.std(0, ddof=1) / std - 1.0))))
    return mean_err, std_err


def observations_of(problem, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return problem.noise.sample(problem.forward(problem.sample_prior(count, rng)), rng)


# ----------------------------------------------------------------------------- the recipe


def test_training_length_follows_the_data_size():
    steps = {}
    for n in (10, 100, 1000, 9000, 100_000, 1_000_000):
        config = default_train_config(n)
        per_epoch = math.ceil(n / config.batch_size)
        steps[n] = config.epochs * per_epoch
        assert config.batch_size == min(DEFAULT_BATCH_SIZE, n)
        assert DEFAULT_MIN_EPOCHS <= config.epochs <= DEFAULT_MAX_EPOCHS or n == 1_000_000
        assert steps[n] <= DEFAULT_MAX_STEPS
        assert config.patience >= DEFAULT_PATIENCE and config.restore_best
        assert config.checkpoint_every == config.epochs
        # validation (VALIDATION_ROWS rows) costs at most about a third of the training
        assert config.val_every == max(1, min(config.epochs, round(VALIDATION_ROWS / (3 * n))))
        # patience spans at least a quarter of the planned epochs
        assert config.patience * config.val_every >= config.epochs / 4
    # tiny sets: capped at DEFAULT_MAX_EPOCHS passes; ordinary ones ~3000 steps; large ones
    # 20 passes, then the step cap
    assert default_train_config(10).epochs == DEFAULT_MAX_EPOCHS
    assert 3000 <= steps[1000] < 3000 + 8 and 3000 <= steps[9000] < 3000 + 71
    assert default_train_config(100_000).epochs == DEFAULT_MIN_EPOCHS
    assert steps[1_000_000] <= DEFAULT_MAX_STEPS and default_train_config(1_000_000).epochs < 20
    with pytest.raises(ValueError, match="n_train must be an integer >= 1, got 0"):
        default_train_config(0)


def test_fixed_steps_recipe_is_the_old_default():
    config = fixed_steps_train_config(18_000)
    assert (config.batch_size, config.epochs, config.learning_rate) == (512, 556, 1e-3)
    assert config.patience is None and not config.restore_best


def test_recipes_choose_their_training_defaults():
    data_sized = InverseRecipe().train_config()
    assert data_sized.patience >= DEFAULT_PATIENCE and data_sized.restore_best
    no_validation = InverseRecipe.from_dict({"data": {"validation_fraction": 0.0}})
    assert no_validation.train_config().patience is None
    fixed = InverseRecipe.from_dict({"training_defaults": "fixed_steps"}).train_config()
    assert fixed.batch_size == 512 and fixed.patience is None
    override = InverseRecipe.from_dict({"training": {"patience": 3, "min_delta": 1e-3}})
    assert (override.train_config().patience, override.train_config().min_delta) == (3, 1e-3)
    with pytest.raises(ValueError, match="training_defaults = 'short'"):
        InverseRecipe.from_dict({"training_defaults": "short"})


# ----------------------------------------------------------------------------- training


def test_default_training_small_task(tmp_path):
    """The default recipe on d = 2 with 1000 pairs, cut to 40 epochs (320 steps) for the fast
    suite: the run records and restores its best epoch, and the posterior follows the
    observation. 320 steps are far from converged (accuracy against the exact posterior is the
    slow test's, at the full default length), so the check here is relative and loose: over 8
    observations, the mean error of the posterior mean divided by the mean distance of the
    exact posterior mean from the prior mean (about 1 for a model that ignores y, 0 for a
    perfect one). Measured (1 thread, loaded 2-core CPU, ~20 s): 0.62; tolerance 0.85.
    """
    problem = make_gaussian_linear_task(2)
    x, y = from_simulator(problem.sample_prior, problem.forward, problem.noise, 1000, seed=0)
    training = default_train_config(900).replace(epochs=40, checkpoint_every=40)
    run_dir = tmp_path / "run"
    posterior = AmortisedPosterior().train(x, y, run_dir=run_dir, training=training)
    meta = posterior.metadata
    assert meta["epochs"] <= 40 and meta["steps"] == meta["epochs"] * 8
    assert 1 <= meta["best_epoch"] <= meta["epochs"]
    history = read_history(run_dir / "history.csv")
    assert meta["best_val_loss"] == min(v for v in history["val_loss"] if math.isfinite(v))
    observations = observations_of(problem, 8, seed=3)
    samples = posterior.sample_many(1000, observations, seed=1)
    exact = np.stack([problem.exact_posterior(y0)[0] for y0 in observations])
    error = np.abs(samples.mean(axis=1) - exact).mean()
    ratio = float(error / np.abs(exact - problem.prior_mean).mean())
    print(f"\n  d=2, 320 steps: mean error / |exact mean - prior mean| = {ratio:.3f}")
    assert ratio < 0.85


def test_without_validation_set_there_is_no_early_stopping(tmp_path, monkeypatch):
    """``validation_fraction=0`` with the default recipe trains the planned length (cut to 3
    epochs here); an explicit recipe with patience and no validation set is refused."""
    monkeypatch.setattr(posterior_module, "DEFAULT_MAX_EPOCHS", 3)
    problem = make_gaussian_linear_task(2)
    x, y = from_simulator(problem.sample_prior, problem.forward, problem.noise, 64, seed=0)
    posterior = AmortisedPosterior().train(x, y, run_dir=tmp_path / "a", validation_fraction=0)
    assert posterior.metadata["epochs"] == 3 and posterior.metadata["stopped_epoch"] is None
    assert posterior.metadata["best_epoch"] is None
    with pytest.raises(ValueError, match="need a validation set"):
        AmortisedPosterior().train(
            x, y, run_dir=tmp_path / "b", validation_fraction=0, training=default_train_config(64)
        )


# ----------------------------------------------------------------------------- sampling


def test_default_sampler_is_fast_and_accurate_with_the_exact_score():
    """The default sampler (DPM-Solver-2M, 19 steps = 20 network evaluations) with the exact
    score of the 10-D task's noised posterior: 10 000 samples for each of 2 observations.
    Noise floor per component: mean 1/sqrt(n) = 0.010 posterior std, std 1/sqrt(2n) = 0.007;
    tolerances 5 SE + 2 % (as tests/test_inverse_exact_score.py). Measured: 0.033 / 0.023 (the
    same as Euler-Maruyama at 500 steps: 0.021 / 0.019, docs/inverse.md)."""
    assert (DEFAULT_POSTERIOR_SAMPLER, DEFAULT_POSTERIOR_STEPS) == ("ode_dpm2m", 19)
    problem = make_gaussian_linear_task(10)
    posterior = _exact_posterior_model(problem)
    observations = observations_of(problem, 2, seed=5)
    n = 10_000
    samples = posterior.sample_many(n, observations, seed=3, batch_size=n)
    mean_err, std_err = moment_errors(samples, problem, observations)
    assert mean_err < 5 / math.sqrt(n) + 0.02
    assert std_err < 5 / math.sqrt(2 * n) + 0.02
    # None means the default; a named sampler without steps keeps its own default
    one = posterior.sample(100, observations[0], seed=3)
    named = posterior.sample(100, observations[0], sampler="ode_dpm2m", steps=19, seed=3)
    np.testing.assert_array_equal(one, named)


@pytest.mark.slow
def test_default_sampler_matches_euler_maruyama_500_with_the_exact_score():
    """The same check for Euler-Maruyama at 500 steps (25 times the network evaluations), and
    the default's time: 10 000 samples of one observation."""
    problem = make_gaussian_linear_task(10)
    posterior = _exact_posterior_model(problem)
    observations = observations_of(problem, 2, seed=5)
    n = 10_000
    reference = posterior.sample_many(n, observations, sampler="euler_maruyama", steps=500)
    fast = posterior.sample_many(n, observations, seed=3, batch_size=n)
    tolerance = (5 / math.sqrt(n) + 0.02, 5 / math.sqrt(2 * n) + 0.02)
    for samples in (reference, fast):
        mean_err, std_err = moment_errors(samples, problem, observations)
        assert mean_err < tolerance[0] and std_err < tolerance[1]
    torch.set_num_threads(1)
    start = time.perf_counter()
    posterior.sample(n, observations[0], batch_size=n)
    print(f"\n  10 000 samples, default sampler, exact score: {time.perf_counter() - start:.2f} s")


@pytest.mark.slow
def test_default_arguments_on_gaussian_linear_10d(tmp_path):
    """The issue's case: 10 parameters, 10 observables, 10 000 pairs, every argument default
    (training and sampling). Noise floor at n = 10 000 per component: mean 0.010 posterior
    std, std 0.007 (largest of 30 components: about 3 SE). Tolerances from the measured errors
    with room for another machine's floating point (docs/inverse.md, "Defaults")."""
    problem = make_gaussian_linear_task(10)
    x, y = from_simulator(problem.sample_prior, problem.forward, problem.noise, 10_000, seed=0)
    start = time.perf_counter()
    posterior = AmortisedPosterior().train(x, y, run_dir=tmp_path / "run")
    seconds = time.perf_counter() - start
    observations = observations_of(problem, 3, seed=1)
    samples = posterior.sample_many(10_000, observations, seed=2)
    mean_err, std_err = moment_errors(samples, problem, observations)
    cov_err = 0.0
    for sample, y0 in zip(samples, observations, strict=True):
        cov = problem.exact_posterior(y0)[1]
        cov_err = max(cov_err, float(np.max(np.abs(np.cov(sample.T) - cov)) / 0.05))
    print(
        f"\n  training {seconds:.0f} s, {posterior.metadata}\n  mean err {mean_err:.3f} "
        f"std err {std_err:.3f} cov err {cov_err:.3f}"
    )
    assert mean_err < 0.4 and std_err < 0.15 and cov_err < 0.3
