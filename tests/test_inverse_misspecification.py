"""Noise misspecification on the linear-Gaussian problem with an exact-posterior stand-in for a
trained model: the exact posterior under the *trained* noise (std 0.25), observed with noise
stds 0.125 .. 1.0. M = 300 observations, L = 200 samples.

Expected: at the trained level the bias is sampling noise (RMS ~ 1 / sqrt(200) = 0.07, allowed
0.15) and coverage is nominal (tolerance 2 sqrt(0.09 / 300) = 0.035 at 0.9, allowed 0.05);
noisier observations make the posterior over-confident (std ratio < 1, coverage falling
monotonically, bias growing), quieter ones under-confident (coverage above nominal).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from scorepde.inverse import AdditiveGaussian, StudentT, make_linear_gaussian
from scorepde.inverse.misspecification import (
    linear_gaussian_reference,
    misspecification_markdown,
    noise_level,
    noise_misspecification,
    scale_noise,
)

PROBLEM = make_linear_gaussian(4, 3, seed=7)  # noise std 0.25


def _exact_at_trained(observations: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((len(observations), n, PROBLEM.d))
    for m, y in enumerate(observations):
        mean, cov = PROBLEM.exact_posterior(y)
        out[m] = mean + rng.standard_normal((n, PROBLEM.d)) @ np.linalg.cholesky(cov).T
    return out


def test_misspecification_table_with_an_exact_stand_in() -> None:
    factors = [0.5, 1.0, 2.0, 4.0]
    rows = noise_misspecification(
        _exact_at_trained,
        PROBLEM.sample_prior,
        PROBLEM.forward,
        PROBLEM.noise,
        [scale_noise(PROBLEM.noise, f) for f in factors],
        n_observations=300,
        n_samples=200,
        seed=0,
        reference_posterior=linear_gaussian_reference(PROBLEM),
    )
    assert [row["level_ratio"] for row in rows] == pytest.approx(factors)
    matched = rows[1]
    assert matched["mean_bias"] < 0.15 and matched["exact_trained_bias"] == 0.0
    assert matched["std_ratio"] == pytest.approx(1.0, abs=0.03)
    assert matched["coverage_0.9"] == pytest.approx(0.9, abs=0.05)
    assert matched["coverage_0.5"] == pytest.approx(0.5, abs=0.08)
    assert matched["ks_max"] < matched["ks_critical"]
    assert rows[0]["std_ratio"] > 1.0 and rows[0]["coverage_0.9"] > 0.9  # under-confident
    noisier = rows[1:]
    assert all(a["coverage_0.9"] > b["coverage_0.9"] for a, b in itertools.pairwise(noisier))
    assert all(a["mean_bias"] < b["mean_bias"] for a, b in itertools.pairwise(noisier))
    assert rows[-1]["coverage_0.9"] < 0.75 and rows[-1]["std_ratio"] < 0.75
    assert rows[-1]["ks_max"] > rows[-1]["ks_critical"]
    # with an exact stand-in the model's error is sampling noise only
    for row in rows:
        assert row["mean_bias"] == pytest.approx(row["exact_trained_bias"], abs=0.15)
    table = misspecification_markdown(rows)
    assert table.startswith("trained with additive_gaussian(std=0.25)")
    assert table.count("\n| additive_gaussian") == len(factors)


def test_without_reference_only_truth_based_columns() -> None:
    rows = noise_misspecification(
        _exact_at_trained,
        PROBLEM.sample_prior,
        PROBLEM.forward,
        PROBLEM.noise,
        [StudentT(3.0, 0.25)],
        n_observations=20,
        n_samples=10,
        seed=1,
    )
    assert "mean_bias" not in rows[0] and rows[0]["level_ratio"] is None
    assert np.isfinite(rows[0]["rmse_truth"])
    assert "student_t(df=3, scale=0.25)" in misspecification_markdown(rows)


def test_scale_noise_and_errors() -> None:
    assert scale_noise(AdditiveGaussian(0.2), 3.0) == AdditiveGaussian(0.2 * 3.0)
    assert noise_level(StudentT(3.0, 0.5)) == 0.5
    with pytest.raises(ValueError, match="factor"):
        scale_noise(AdditiveGaussian(0.2), 0.0)
    reference = linear_gaussian_reference(PROBLEM)
    with pytest.raises(ValueError, match="additive_gaussian"):
        reference(np.zeros(3), StudentT(3.0, 0.2))
    with pytest.raises(ValueError, match="observed_noises"):
        noise_misspecification(
            _exact_at_trained,
            PROBLEM.sample_prior,
            PROBLEM.forward,
            PROBLEM.noise,
            [],
            n_observations=5,
            n_samples=5,
            seed=0,
        )


def test_components_the_reference_pins_exactly_are_left_out_and_counted() -> None:
    """A reference std of 0 (a cell no reference draw moves) must not turn the standardised
    columns into inf/nan; the other components still measure the bias."""
    exact = linear_gaussian_reference(PROBLEM)

    def pinned(y: np.ndarray, noise: object) -> tuple[np.ndarray, np.ndarray]:
        mean, std = exact(y, noise)
        std = np.array(std, dtype=float, copy=True)
        std[..., 0] = 0.0
        return mean, std

    rows = noise_misspecification(
        _exact_at_trained,
        PROBLEM.sample_prior,
        PROBLEM.forward,
        PROBLEM.noise,
        [PROBLEM.noise],
        n_observations=40,
        n_samples=50,
        seed=2,
        reference_posterior=pinned,
    )
    row = rows[0]
    assert row["components_without_spread"] == 40
    for key in ("mean_bias", "exact_trained_bias", "std_ratio"):
        assert np.isfinite(row[key]), key
    assert row["std_ratio"] == pytest.approx(1.0, abs=0.1)
