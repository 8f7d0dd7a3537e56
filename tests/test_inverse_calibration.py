"""Simulation-based calibration on the linear-Gaussian problem, whose posterior is exact.

An exact posterior sampler must pass (KS with Bonferroni at alpha = 0.01 and coverage within
its tolerance: a false alarm has probability <= 2 %, and the seeds are fixed); an over-confident
(std x 0.6), a shifted (mean + 0.5 posterior std) and an under-confident (std x 1.6) sampler
must fail, with coverage on the side the defect predicts. M = 400 pairs, L = 99 samples.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scorepde.evaluation.calibration import (
    DEFAULT_LEVELS,
    calibration_from_samples,
    component_statistics,
    simulation_based_calibration,
)
from scorepde.inverse import make_linear_gaussian
from scorepde.inverse.plots import plot_calibration, plot_pair, plot_posterior_band

PROBLEM = make_linear_gaussian(3, 2, seed=5)


def _sampler(std_factor: float = 1.0, shift: float = 0.0):
    """Exact posterior draws with the spread scaled by ``std_factor`` and the mean moved by
    ``shift`` posterior stds in every component."""

    def sample(observations: np.ndarray, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        out = np.empty((len(observations), n, PROBLEM.d))
        for m, y in enumerate(observations):
            mean, cov = PROBLEM.exact_posterior(y)
            factor = np.linalg.cholesky(cov)
            z = rng.standard_normal((n, PROBLEM.d))
            out[m] = mean + shift * np.sqrt(np.diag(cov)) + std_factor * z @ factor.T
        return out

    return sample


def _run(sampler) -> object:
    return simulation_based_calibration(
        sampler,
        PROBLEM.sample_prior,
        PROBLEM.forward,
        PROBLEM.noise,
        n_observations=400,
        n_samples=99,
        seed=3,
    )


def test_exact_posterior_passes() -> None:
    result = _run(_sampler())
    assert result.names == ["x[0]", "x[1]", "x[2]", "mean"]
    assert result.ranks.shape == (400, 4) and result.ranks.min() >= 0 and result.ranks.max() <= 99
    assert result.ks_passed, result.to_markdown()
    assert result.coverage_passed, result.to_markdown()
    assert result.passed
    np.testing.assert_allclose(result.coverage, DEFAULT_LEVELS, atol=0.05)


@pytest.mark.parametrize(
    ("std_factor", "shift", "coverage_side"),
    [(0.6, 0.0, "below"), (1.0, 0.5, "below"), (1.6, 0.0, "above")],
    ids=["over-confident", "biased", "under-confident"],
)
def test_miscalibrated_samplers_fail(std_factor: float, shift: float, coverage_side: str) -> None:
    result = _run(_sampler(std_factor, shift))
    assert not result.ks_passed, result.to_markdown()
    assert not result.passed
    at_half = result.coverage[list(DEFAULT_LEVELS).index(0.5)]
    assert at_half < 0.45 if coverage_side == "below" else at_half > 0.55


def test_ranks_of_ties_and_known_cases() -> None:
    """A constant component ties with every sample: tie-breaking must make it uniform. A truth
    below every sample has rank 0, above every sample rank L."""
    rng = np.random.default_rng(0)
    truths = np.zeros((500, 2))
    samples = np.zeros((500, 19, 2))
    samples[..., 1] = rng.standard_normal((500, 19)) + 10.0  # all above the truth
    result = calibration_from_samples(truths, samples, seed=1)
    assert result.ks[0] < result.ks_critical  # ties -> uniform
    assert np.all(result.ranks[:, 1] == 0)
    samples[..., 1] -= 20.0
    assert np.all(calibration_from_samples(truths, samples).ranks[:, 1] == 19)
    with pytest.raises(ValueError, match="same M"):
        calibration_from_samples(truths[:3], samples)
    with pytest.raises(ValueError, match="levels"):
        calibration_from_samples(truths, samples, levels=[0.5, 1.0])


def test_component_statistics_subsets_large_vectors() -> None:
    fn, names = component_statistics((2, 50), max_components=10)
    assert len(names) == 11 and names[0] == "x[0]" and names[-2] == "x[99]"
    values = np.arange(200.0).reshape(2, 100).reshape(2, 2, 50)
    out = fn(values)
    assert out.shape == (2, 11)
    np.testing.assert_allclose(out[:, -1], values.reshape(2, -1).mean(axis=1))


def test_report_and_figures(tmp_path: Path) -> None:
    result = _run(_sampler(0.6))
    record = result.to_dict()
    json.dumps(record)
    assert record["passed"] is False and record["ks"]["max"] > record["ks"]["critical"]
    assert "FAILED" in result.to_markdown()
    assert plot_calibration(result, tmp_path / "calibration.png").stat().st_size > 1000
    samples = _sampler()(PROBLEM.forward(PROBLEM.prior_mean)[None], 500, 0)[0]
    assert plot_pair(samples, tmp_path / "pair.png", truth=PROBLEM.prior_mean).is_file()
    field = np.sin(np.linspace(0, 3, 40)) + 0.1 * np.random.default_rng(0).standard_normal(
        (200, 40)
    )
    path = plot_posterior_band(field, tmp_path / "band.png", truth=np.zeros(40))
    assert path.is_file()
    with pytest.raises(ValueError, match="truth"):
        plot_pair(samples, tmp_path / "bad.png", truth=np.zeros(5))
