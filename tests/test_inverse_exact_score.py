"""Fast check of the amortised sampling path on the linear-Gaussian problem, d = 2 and d = 20:
an :class:`AmortisedPosterior` whose network is replaced by the *exact* score of the noised
posterior (in the standardised coordinates it works in) must reproduce the exact posterior
mean and covariance for several observations at once (``sample_many``) with two samplers.

This isolates everything but the learned network: the standardisation of ``x`` and ``y``, the
per-sample conditions, the sampler and the map back to physical units. (The trained network is
checked by the slow ``test_amortised_posterior_matches_exact``.)

Tolerances, per component / covariance entry, with ``n = 2000`` samples per observation (two
observations; Euler-Maruyama 200 steps, Heun 100): ``5 SE + 0.02 scale`` as in
``tests/test_sampling_gaussian.py``: the standard error of a mean is ``sqrt(C_ii / n)`` (5 SE =
0.11 posterior std), of a covariance entry ``sqrt((C_ii C_jj + C_ij^2) / n)``; the 2 % allowance
covers the samplers' discretisation. Measured: the largest error was 0.37 of the mean tolerance
and 0.56 of the covariance tolerance (d = 20, Euler-Maruyama).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scorepde.diffusion import VEProcess
from scorepde.inverse import AmortisedPosterior, Standardiser, from_simulator, make_linear_gaussian
from scorepde.inverse.linear_gaussian import LinearGaussianProblem


class ExactPosteriorScore(torch.nn.Module):
    """``grad log p_t(z | y)`` for standardised ``z = (x - m_x) / s_x`` under a VE process:
    ``z_t | y ~ N(mean_z(y), C_z + sigma_t^2 I)``, ``y = cond s_y + m_y``."""

    def __init__(
        self, problem: LinearGaussianProblem, x_std: Standardiser, y_std: Standardiser
    ) -> None:
        super().__init__()
        self.process = VEProcess(sigma_min=0.01, sigma_max=50.0)
        mean0, cov = problem.exact_posterior(np.zeros(problem.m))
        # the posterior mean is affine in y: mean(y) = mean0 + k y, k's columns from unit y
        k = np.stack([problem.exact_posterior(e)[0] - mean0 for e in np.eye(problem.m)], axis=1)
        # mean_z(cond) = offset + slope @ cond, with y = cond * s_y + m_y
        self.slope = torch.tensor((k * y_std.scale) / x_std.scale[:, None], dtype=torch.float64)
        self.offset = torch.tensor(
            (mean0 + k @ y_std.mean - x_std.mean) / x_std.scale, dtype=torch.float64
        )
        cov_z = cov / np.outer(x_std.scale, x_std.scale)
        eigenvalues, eigenvectors = np.linalg.eigh(0.5 * (cov_z + cov_z.T))
        self.eigenvalues = torch.tensor(eigenvalues, dtype=torch.float64)
        self.eigenvectors = torch.tensor(eigenvectors, dtype=torch.float64)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        z = x.reshape(x.shape[0], -1).to(torch.float64)
        mean = self.offset + cond.to(torch.float64) @ self.slope.T
        variance = self.process.std(t.to(torch.float64))[:, None] ** 2
        rotated = (z - mean) @ self.eigenvectors / (self.eigenvalues + variance)
        score = -rotated @ self.eigenvectors.T
        return score.reshape(x.shape).to(x.dtype)


def _exact_posterior_model(problem: LinearGaussianProblem) -> AmortisedPosterior:
    x, y = from_simulator(problem.sample_prior, problem.forward, problem.noise, 5000, seed=0)
    posterior = AmortisedPosterior()
    posterior.x_shape, posterior.y_shape = (problem.d,), (problem.m,)
    posterior.x_standardiser, posterior.y_standardiser = Standardiser.fit(x), Standardiser.fit(y)
    posterior.score_model = ExactPosteriorScore(
        problem, posterior.x_standardiser, posterior.y_standardiser
    )
    return posterior


@pytest.mark.parametrize(("d", "m"), [(2, 2), (20, 10)], ids=["d2", "d20"])
@pytest.mark.parametrize(("sampler", "steps"), [("euler_maruyama", 200), ("ode_heun", 100)])
def test_exact_score_reproduces_exact_posterior(d: int, m: int, sampler: str, steps: int) -> None:
    problem = make_linear_gaussian(d, m, seed=10 + d)
    posterior = _exact_posterior_model(problem)
    rng = np.random.default_rng(99)
    observations = problem.noise.sample(problem.forward(problem.sample_prior(2, rng)), rng)
    n = 2000
    samples = posterior.sample_many(n, observations, sampler=sampler, steps=steps, seed=1)
    assert samples.shape == (2, n, d)
    for j, y in enumerate(observations):
        mean, cov = problem.exact_posterior(y)
        diag = np.diag(cov)
        mean_tol = 5 * np.sqrt(diag / n) + 0.02 * np.sqrt(diag)
        mean_err = np.abs(samples[j].mean(axis=0) - mean)
        print(f"{sampler} d={d} y{j}: mean {(mean_err / mean_tol).max():.2f}", end=" ")
        assert np.all(mean_err <= mean_tol), (j, (mean_err / mean_tol).max())
        se = np.sqrt((np.outer(diag, diag) + cov**2) / n)
        cov_tol = 5 * se + 0.02 * np.maximum.outer(diag, diag)
        cov_err = np.abs(np.cov(samples[j].T) - cov)
        print(f"cov {(cov_err / cov_tol).max():.2f} of the tolerance")
        assert np.all(cov_err <= cov_tol), (j, (cov_err / cov_tol).max())
