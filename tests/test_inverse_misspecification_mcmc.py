"""Noise misspecification where the posterior has no closed form: the MCMC reference
(``pcn_reference``) and the ``n_reference`` subset of ``noise_misspecification``.

* ``pcn_reference`` on a whitened linear-Gaussian problem (``x ~ N(0, I_3)``, ``y = A x + 0.3
  e``), whose exact posterior is known: mean and std within the Monte-Carlo error of 4 x 400
  generalised-pCN draws; runs are memoised per (y, noise).
* The mechanics on the battery sensors problem (3 sensors, whitened GP modes) with a tiny MCMC
  and a stand-in "posterior" that ignores ``y`` (prior draws): every column is there, the
  reference columns cover the first ``n_reference`` observations, and prior draws are wider
  than the posterior (std ratio > 1) at every noise level.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from scorepde.inverse import AdditiveGaussian, BatteryPorosityProblem
from scorepde.inverse.misspecification import (
    misspecification_markdown,
    noise_misspecification,
    pcn_reference,
    scale_noise,
)

MATRIX = np.array([[1.0, 0.5, 0.0], [0.0, 1.0, -0.8]])
NOISE = AdditiveGaussian(0.3)


def _forward(x: np.ndarray) -> np.ndarray:
    return np.asarray(x) @ MATRIX.T


def _exact(y: np.ndarray, std: float) -> tuple[np.ndarray, np.ndarray]:
    precision = np.eye(3) + MATRIX.T @ MATRIX / std**2
    cov = np.linalg.inv(precision)
    return cov @ MATRIX.T @ y / std**2, np.sqrt(np.diag(cov))


def test_pcn_reference_matches_the_exact_whitened_posterior() -> None:
    """4 chains x 300 draws of generalised pCN (min bulk ESS printed by the run: see the
    assertion below, >= 300): the mean's Monte-Carlo error is <= 1 / sqrt(300) = 0.06
    posterior std, allow 0.3 (5 SE); the std's relative error ~ sqrt(1 / (2 ESS)) = 0.04,
    allow 0.2."""
    reference = pcn_reference(_forward, 3, n_chains=4, n_draws=300, n_burn=400, seed=1)
    y = np.array([0.7, -1.2])
    for noise in (NOISE, scale_noise(NOISE, 2.0)):
        mean, std = reference(y, noise)
        exact_mean, exact_std = _exact(y, noise.std)
        assert np.all(np.abs(mean - exact_mean) / exact_std < 0.3), (mean, exact_mean)
        np.testing.assert_allclose(std, exact_std, rtol=0.2)
    assert len(reference.runs) == 2  # type: ignore[attr-defined]
    reference(y, NOISE)  # memoised: no third run
    assert len(reference.runs) == 2  # type: ignore[attr-defined]
    runs = reference.runs  # type: ignore[attr-defined]
    assert all(run["max_rhat"] < 1.1 and run["min_ess"] >= 300 for run in runs), runs


def test_unmixed_reference_is_refused() -> None:
    """Two chains of 8 draws after 40 burn-in steps cannot reach R-hat < 1.0001."""
    reference = pcn_reference(_forward, 3, n_chains=2, n_draws=8, n_burn=40, rhat_threshold=1.0001)
    with pytest.raises(ValueError, match="did not mix"):
        reference(np.zeros(2), NOISE)


def test_battery_sensors_misspecification_mechanics() -> None:
    problem = BatteryPorosityProblem("sensors", sensors=3)
    noise = problem.noise  # relative_gaussian(level=0.02)

    def prior_draws(observations: np.ndarray, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return rng.standard_normal((len(observations), n, problem.n_modes))

    reference = pcn_reference(
        problem.forward_whitened,
        problem.n_modes,
        n_chains=2,
        n_draws=20,
        n_burn=40,
        rhat_threshold=None,  # a tiny run (unmixed): mechanics only
    )
    start = time.perf_counter()
    rows = noise_misspecification(
        prior_draws,
        problem.sample_whitened,
        problem.forward_whitened,
        noise,
        [scale_noise(noise, 1.0), scale_noise(noise, 4.0)],
        n_observations=4,
        n_samples=6,
        seed=0,
        reference_posterior=reference,
        n_reference=1,
    )
    seconds = time.perf_counter() - start
    assert [row["level_ratio"] for row in rows] == pytest.approx([1.0, 4.0])
    for row in rows:
        assert row["n_reference"] == 1
        assert row["std_ratio"] > 1.0  # prior draws are wider than the posterior
        keys = ("mean_bias", "exact_trained_bias", "rmse_truth_referenced", "coverage_0.9")
        for key in (*keys, "ks_max"):
            assert np.isfinite(row[key]), key
    assert rows[0]["exact_trained_bias"] == 0.0  # the same MCMC run (memoised)
    # one run per (observation, level) plus one at the trained level for the 4x row
    assert len(reference.runs) == 3  # type: ignore[attr-defined]
    assert seconds < 60
    table = misspecification_markdown(rows)
    assert "observations with a reference" in table
    assert "| relative_gaussian(level=0.08," in table
    with pytest.raises(ValueError, match="n_reference = 5 is not allowed"):
        noise_misspecification(
            prior_draws,
            problem.sample_whitened,
            problem.forward_whitened,
            noise,
            [noise],
            n_observations=4,
            n_samples=6,
            seed=0,
            reference_posterior=reference,
            n_reference=5,
        )


def test_scale_noise_keeps_the_family() -> None:
    noise = BatteryPorosityProblem("sensors", sensors=3).noise
    scaled = scale_noise(noise, 2.5)
    assert type(scaled) is type(noise) and scaled.level == pytest.approx(0.05)
    assert dataclasses.replace(scaled, level=noise.level) == noise
