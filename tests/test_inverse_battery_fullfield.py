"""Battery porosity from the full c/phi fields entering the network as two field channels
(recipe ``inverse-battery-fullfield``, ``benchmarks/bench_inverse_battery_fields.py``).

Fast tests: the recipe loads with field conditions on the porosity's grid; it and the
flat-vector recipe ``inverse-battery-fields`` train on the same pairs; the benchmark at toy
sizes trains the 1-D U-Net a few steps, calibrates, compares with a short MCMC and prints its
tables; the trained model samples porosity fields of the right shape, reproducibly, also after
loading.

Slow test (``-m slow``, ~20 min on a loaded core): the recipe cut to 15 epochs against the
generalised-pCN reference on one observation; a regression bound, tolerances in its docstring.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from helpers import load_benchmark
from scorepde.inverse.battery import BatteryPorosityProblem, compare_with_mcmc
from scorepde.inverse.posterior import AmortisedPosterior, from_simulator
from scorepde.inverse.recipes import load_inverse_recipe, train_from_recipe

#: Slow test tolerances (derivation in its docstring).
MEAN_TOL, STD_TOL, COVERAGE_TOL = 3.5, 4.5, 0.95


def _benchmark() -> ModuleType:
    return load_benchmark("bench_inverse_battery_fields")


def test_recipe_puts_the_fields_on_the_porosity_grid() -> None:
    recipe = load_inverse_recipe("inverse-battery-fullfield")
    assert recipe.y_as == "fields"
    problem = recipe.build_problem()
    assert problem.x_shape == (1, 100) and problem.y_shape == (2, 100)
    assert problem.to_physical is None  # x is the porosity itself
    options = recipe.model_config(problem).backbone.options
    assert recipe.model_config(problem).backbone.name == "unet"
    assert options["dims"] == 1 and options["cond_channels"] == 2
    assert options["in_channels"] == options["out_channels"] == 1
    assert problem.noise.level == 0.01
    # the flat-vector variant stays as it was: 200 values as the condition vector
    flat = load_inverse_recipe("inverse-battery-fields")
    assert flat.y_as == "vector"
    flat_problem = flat.build_problem()
    assert flat_problem.x_shape == (10,) and flat_problem.y_shape == (2, 100)
    assert flat.model_config(flat_problem).backbone.options["cond_dim"] == 200


def test_field_and_vector_recipes_train_on_the_same_pairs() -> None:
    """Same seed and count: the same noisy observations, and the vector recipe's whitened
    ``x`` maps to the field recipe's porosity ``x`` (to rounding)."""
    field = load_inverse_recipe("inverse-battery-fullfield").build_problem()
    flat = load_inverse_recipe("inverse-battery-fields").build_problem()
    x_field, y_field = from_simulator(field.sample_prior, field.forward, field.noise, 40, 3)
    x_flat, y_flat = from_simulator(flat.sample_prior, flat.forward, flat.noise, 40, 3)
    np.testing.assert_array_equal(y_field, y_flat)
    np.testing.assert_allclose(flat.physical(x_flat), x_field, rtol=0, atol=1e-12)
    assert np.ptp(x_field[:, 0], axis=0).min() > 0.01  # not a degenerate (constant) draw


TOY = [
    "--n-train", "48", "--epochs", "2", "--n-observations", "1", "--n-samples", "6",
    "--samplers", "ode_dpm2m:3", "--n-chains", "2", "--n-draws", "8", "--n-burn", "40",
    "--calibration-observations", "4", "--calibration-samples", "3",
]  # fmt: skip


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, str]:
    """The benchmark at toy sizes with the field condition: the shipped recipe's U-Net on 48
    pairs for 2 epochs, SBC on 4 pairs, 16 MCMC draws (a few seconds)."""
    folder = tmp_path_factory.mktemp("fullfield")
    module = _benchmark()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        record = module.main([*TOY, "--out", str(folder / "run"), "--json", str(folder / "r.json")])
    return record, folder, printed.getvalue()


def test_benchmark_trains_calibrates_and_compares(toy_run) -> None:
    record, folder, printed = toy_run
    assert record["condition"] == "fields"
    assert record["training"]["epochs"] == 2 and record["training"]["n_train"] == 43
    assert "Simulation-based calibration" in printed
    assert "| obs | mean err | std err | coverage |" in printed
    assert "score" in printed and "vs MCMC" in printed
    saved = json.loads((folder / "r.json").read_text())
    (comparison,) = saved["comparisons"]
    assert comparison["settings"]["space"] == "porosity"
    row = comparison["rows"][0]
    assert row["score_samples"] == 6 and row["mcmc_draws"] == 16
    assert np.isfinite(row["mean_error"]) and 0.0 <= row["coverage"] <= 1.0
    assert saved["calibration"]["n_observations"] == 4


def test_field_condition_model_samples_porosity_fields(toy_run) -> None:
    _, folder, _ = toy_run
    posterior = AmortisedPosterior.load(folder / "run" / "model")
    assert posterior.y_as == "fields" and posterior.x_shape == (1, 100)
    problem = BatteryPorosityProblem("full")
    rng = np.random.default_rng(1)
    y = problem.observe(problem.sample_prior(2, rng), rng)
    samples = posterior.sample(5, y[0], sampler="ode_dpm2m", steps=3, seed=4)
    assert samples.shape == (5, 1, 100) and np.all(np.isfinite(samples))
    again = posterior.sample(5, y[0], sampler="ode_dpm2m", steps=3, seed=4)
    np.testing.assert_array_equal(samples, again)
    many = posterior.sample_many(5, y, sampler="ode_dpm2m", steps=3, seed=4)
    assert many.shape == (2, 5, 1, 100)
    np.testing.assert_allclose(many[0], samples, rtol=1e-5, atol=1e-6)
    # the observation reaches the network: another y gives other samples from the same noise
    assert not np.allclose(many[0], many[1])


# ---------------------------------------------------------------------------- slow accuracy


@pytest.mark.slow
def test_field_condition_posterior_against_mcmc(tmp_path) -> None:
    """Full fields (1 % noise, l = 0.25 L, U0 = 0 V, F_right = 25 A/m^2): the shipped recipe
    ``inverse-battery-fullfield`` cut to 15 epochs (2115 steps of 128; 20 min on one core of
    a 2-core machine loaded by 5 processes), no calibration; 1000 ode_dpm2m samples (39
    steps) against 8 x 1000 generalised-pCN draws after 2000 burn-in steps, observation 0 of
    seed 0.

    This is a regression bound at a CPU training length, not agreement with MCMC: the
    posterior is sharp (MCMC pointwise std ~2 % of the prior's) and the short-trained model is
    several times too wide. Measured (2026-12-02): mean error 2.45, std error 3.13, coverage
    1.000, the truth inside the score's 95 % band at every node; MCMC floor 0.09 / 0.03,
    R-hat 1.012. Tolerances (porosity channel, MCMC-posterior-std units):

    * MCMC converged: max R-hat < 1.05.
    * mean error <= MEAN_TOL = 3.5 (~1.4x the measurement; a model that ignores ``y`` sits at
      the prior mean, ~50 posterior stds off: the untrained toy model of the fast test gives 50).
    * std error <= STD_TOL = 4.5 (~1.4x the measurement: the score posterior's pointwise std
      is ~4x the MCMC one; the prior's std is ~50x).
    * coverage of MCMC draws by the score's 95 % band >= COVERAGE_TOL = 0.95 and the truth
      inside that band at >= 95 % of the nodes: too wide, but conservative.
    """
    recipe = load_inverse_recipe("inverse-battery-fullfield")
    recipe.training.update(epochs=15, checkpoint_every=15, val_every=5)
    recipe.calibration.n_observations = 0
    run = train_from_recipe(recipe, tmp_path / "run")
    problem = BatteryPorosityProblem("full")
    report = compare_with_mcmc(
        problem,
        run.posterior,
        n_observations=1,
        sampler="ode_dpm2m",
        steps=39,
        n_draws=1000,
        n_burn=2000,
    )
    print("\n" + report.to_markdown())
    (row,) = report.rows
    assert row.converged, row
    assert row.mean_error <= MEAN_TOL, row
    assert row.std_error <= STD_TOL, row
    assert row.coverage >= COVERAGE_TOL, row
    assert row.truth_in_band_score >= 0.95, row
