"""The linear-Gaussian baseline (scorepde.inverse.gaussian_baseline): on a linear-Gaussian
problem it is the exact posterior up to the sampling error of its pairs; on a nonlinear one it
is the best linear estimator; bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest

from scorepde.inverse.gaussian_baseline import GaussianPosterior
from scorepde.inverse.linear_gaussian import make_linear_gaussian
from scorepde.inverse.posterior import from_simulator


def _fit(problem, n: int, seed: int = 0) -> GaussianPosterior:
    x, y = from_simulator(problem.sample_prior, problem.forward, problem.noise, n, seed)
    return GaussianPosterior.fit(x, y)


def test_recovers_the_exact_posterior_of_a_linear_gaussian_problem() -> None:
    problem = make_linear_gaussian(d=6, m=4, seed=3)
    fitted = _fit(problem, 40_000)
    rng = np.random.default_rng(1)
    y = problem.noise.sample(problem.forward(problem.sample_prior(1, rng)), rng)[0]
    mean, cov = problem.exact_posterior(y)
    exact_std = np.sqrt(np.diag(cov))
    # sampling error of 40,000 pairs: mean within 0.05 posterior std, std within 2 %
    assert np.max(np.abs(fitted.mean(y) - mean) / exact_std) < 0.05
    assert np.max(np.abs(fitted.std / exact_std - 1.0)) < 0.02
    draws = fitted.sample(20_000, y, seed=5)
    assert draws.shape == (20_000, 6)
    assert np.max(np.abs(draws.mean(0) - mean) / exact_std) < 0.05
    assert np.max(np.abs(np.cov(draws.T) - cov)) < 0.05 * np.max(np.diag(cov))


def test_too_few_pairs_give_a_worse_fit_than_many() -> None:
    """The test can fail: with 30 pairs for 6 + 4 dimensions the fit is visibly off."""
    problem = make_linear_gaussian(d=6, m=4, seed=3)
    rng = np.random.default_rng(2)
    y = problem.noise.sample(problem.forward(problem.sample_prior(1, rng)), rng)[0]
    mean, _ = problem.exact_posterior(y)
    small = np.abs(_fit(problem, 30).mean(y) - mean).max()
    large = np.abs(_fit(problem, 40_000).mean(y) - mean).max()
    assert large < small


def test_best_linear_estimator_on_a_nonlinear_problem() -> None:
    """x ~ N(0, 1), y = x^3 + noise: the fitted mean is the least-squares line, whose error is
    below the prior's and above zero."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, 1))
    y = x**3 + 0.1 * rng.standard_normal((20_000, 1))
    fitted = GaussianPosterior.fit(x, y)
    slope = np.cov(x[:, 0], y[:, 0])[0, 1] / np.var(y[:, 0], ddof=1)
    assert fitted.gain[0, 0] == pytest.approx(slope, rel=1e-4)
    error = np.sqrt(np.mean((fitted.mean(y) - x) ** 2))
    assert 0.2 < error < 0.9
    assert fitted.std[0] == pytest.approx(error, rel=0.02)


def test_shapes_of_fields_and_batches() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 1, 3, 3))
    y = np.concatenate([x, x], axis=1) + 0.1 * rng.standard_normal((500, 2, 3, 3))
    fitted = GaussianPosterior.fit(x, y)
    assert fitted.mean(y[0]).shape == (1, 3, 3)
    assert fitted.mean(y[:7]).shape == (7, 1, 3, 3)
    assert fitted.std.shape == (1, 3, 3)
    assert fitted(y[0], 4, 0).shape == (4, 1, 3, 3)
    np.testing.assert_array_equal(fitted(y[0], 4, 0), fitted.sample(4, y[0], seed=0))


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "match"),
    [
        (np.zeros(5), np.zeros((5, 1)), {}, "batches"),
        (np.zeros((5, 1)), np.zeros((4, 1)), {}, "must match"),
        (np.zeros((2, 1)), np.zeros((2, 1)), {}, "at least 3"),
        (np.ones((5, 1)), np.ones((5, 1)), {"ridge": 0.0}, "ridge"),
        (np.full((5, 1), np.nan), np.ones((5, 1)), {}, "finite"),
    ],
)
def test_bad_input_is_refused(x, y, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        GaussianPosterior.fit(x, y, **kwargs)


def test_bad_sample_arguments_are_refused() -> None:
    rng = np.random.default_rng(0)
    fitted = GaussianPosterior.fit(rng.standard_normal((50, 2)), rng.standard_normal((50, 3)))
    with pytest.raises(ValueError, match="n = 0"):
        fitted.sample(0, np.zeros(3), seed=0)
    with pytest.raises(ValueError, match=r"expected one observation \(3,\)"):
        fitted.sample(2, np.zeros(4), seed=0)
    with pytest.raises(ValueError, match="expected"):
        fitted.mean(np.zeros((2, 4)))
