"""The MCMC reference posterior of the elastography inclusion prior (parameters -> log mu) and
the tools comparing a score posterior with it: the parameter map is the prior, the reference
concentrates on the truth at low noise with R-hat < 1.05, the reference passes against an
independent run of itself and a shifted copy fails, SBC passes for an exact posterior (the prior
when y is ignored) and fails for a shifted one."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats

from scorepde.inverse.elasticity import Elastography
from scorepde.inverse.elasticity_reference import (
    calibration_table,
    compare_with_reference,
    inclusion_log_mu,
    inclusion_parameters,
    inclusion_reference,
    misspecification_rows,
    rmse_by_noise_level,
)


def synthetic(problem: Elastography, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    parameters = inclusion_parameters(problem, rng.standard_normal((1, 4)))
    truth = inclusion_log_mu(problem, parameters)
    return parameters[0], truth[0], problem.noise.sample(problem.forward(truth), rng)[0]


def test_parameter_map_is_the_inclusion_prior() -> None:
    problem = Elastography("inclusion", 8)
    xi = np.random.default_rng(0).standard_normal((4000, 4))
    cx, cy, r, log_k = inclusion_parameters(problem, xi).T
    low, high = problem.problem.radius_range
    k_low, k_high = np.log(problem.contrast_range)
    alpha = 0.001  # each KS test; four of them
    assert stats.kstest((r - low) / (high - low), "uniform").pvalue > alpha
    assert stats.kstest((cx - r) / (1 - 2 * r), "uniform").pvalue > alpha
    assert stats.kstest((cy - r) / (1 - 2 * r), "uniform").pvalue > alpha
    assert stats.kstest((log_k - k_low) / (k_high - k_low), "uniform").pvalue > alpha
    # the same log mu as the problem's own prior draw for the same discs and contrast
    discs = np.stack([cx, cy, r], axis=1)[:5, None]
    expected = problem.problem.log_modulus(discs, np.exp(log_k[:5, None]))[:, None]
    np.testing.assert_array_equal(
        inclusion_log_mu(problem, np.stack([cx, cy, r, log_k], 1)[:5]), expected
    )
    with pytest.raises(ValueError, match="prior = 'grf'"):
        inclusion_parameters(Elastography("grf", 8), xi)


def check_concentrates(problem: Elastography, seed: int, *, draws: int, z_max: float) -> None:
    parameters, truth, y = synthetic(problem, seed)
    posterior = inclusion_reference(
        problem, y, n_chains=4, n_draws=draws, n_burn=draws, n_start=64, seed=seed
    )
    assert posterior.max_rhat < 1.05, posterior.result.rhat
    flat = posterior.parameters.reshape(-1, 4)
    z = (flat.mean(axis=0) - parameters) / flat.std(axis=0)
    assert np.all(np.abs(z) < z_max), z
    # the posterior of log mu: finer than the noise-free contrast, centred on the truth
    assert posterior.log_mu.shape[1:] == (1, problem.problem.n_cells, problem.problem.n_cells)
    rmse = np.sqrt(np.mean((posterior.mean - truth) ** 2))
    assert rmse < 0.1 * np.abs(truth).max(), rmse
    assert posterior.std.max() > 0 and np.all(posterior.mu_mean > 0)


def test_reference_concentrates_at_low_noise() -> None:
    # 16 x 16, 1 % noise, 4 chains x 400 draws (~2.5 s); |z| < 4 per parameter.
    check_concentrates(Elastography("inclusion", 16, noise_level=0.01), 0, draws=400, z_max=4.0)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_reference_concentrates_longer(seed: int) -> None:
    check_concentrates(Elastography("inclusion", 16, noise_level=0.01), seed, draws=1500, z_max=4)


def reference_sampler(problem: Elastography, shift: float, **mcmc: object) -> Callable:
    """An independent MCMC run as the 'score posterior', moved by ``shift`` reference stds."""

    def sample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
        run = inclusion_reference(problem, y, seed=100 + seed, **mcmc)  # type: ignore[arg-type]
        picks = np.random.default_rng(seed).choice(run.log_mu.shape[0], n, replace=False)
        return run.log_mu[picks] + shift * run.std

    return sample


@pytest.mark.parametrize("shift", [0.0, 2.0])
def test_comparison_passes_against_itself_and_fails_when_shifted(shift: float) -> None:
    problem = Elastography("inclusion", 8, noise_level=0.05)
    mcmc = {"n_chains": 4, "n_draws": 300, "n_burn": 300, "n_start": 32}
    result = compare_with_reference(
        problem,
        reference_sampler(problem, shift, **mcmc),
        n_observations=1,
        n_posterior_samples=400,
        seed=3,
        **mcmc,
    )
    row = result.rows[0]
    assert "| obs |" in result.to_markdown() and result.to_dict()["rows"][0]["index"] == 0
    if shift == 0.0:
        assert row.coverage > 0.85 and row.mean_error < 0.5 and row.std_error < 0.5, row
    else:
        assert row.coverage < 0.6 and row.mean_error > 1.5, row


def prior_sampler(problem: Elastography, shift: float = 0.0) -> Callable:
    """The prior ignores y: an exact (if uninformative) posterior for SBC."""

    def sample(y: np.ndarray, n: int, seed: int) -> np.ndarray:
        return problem.sample_prior(n, np.random.default_rng([seed, 7])) + shift

    return sample


def test_calibration_passes_for_an_exact_posterior_and_fails_when_shifted() -> None:
    problem = Elastography("inclusion", 8)
    options = {"n_observations": 60, "n_samples": 19, "seed": 0, "max_components": 8}
    assert calibration_table(problem, prior_sampler(problem), **options).passed
    assert not calibration_table(problem, prior_sampler(problem, 0.3), **options).passed


def test_rmse_by_noise_level_and_misspecification_rows() -> None:
    options = {"prior": "inclusion", "n_cells": 8}
    problem = Elastography(**options)
    rows = rmse_by_noise_level(
        {0.1: prior_sampler(problem), 0.025: prior_sampler(problem)},
        options,
        n_observations=30,
        n_samples=40,
        n_prior=1000,
    )
    assert [row["noise_level"] for row in rows] == [0.025, 0.1]
    for row in rows:  # ignoring y: the prior mean's error, up to the samples' own noise
        assert row["rmse"] == pytest.approx(row["rmse_prior_mean"], rel=0.15)
    table = misspecification_rows(
        problem, prior_sampler(problem), factors=(0.5, 2.0), n_observations=8, n_samples=6
    )
    assert [row["level_ratio"] for row in table] == pytest.approx([0.5, 2.0])
    assert all("rmse_truth" in row for row in table)
