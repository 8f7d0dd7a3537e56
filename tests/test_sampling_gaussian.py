"""Samplers against Gaussian data, whose score is known in closed form.

For ``x0 ~ N(mu, Sigma)`` the marginal of a linear process is ``N(m_t mu, m_t^2 Sigma + v_t I)``
(VP) or ``N(mu, Sigma + sigma_t^2 I)`` (VE, ``m_t = 1``), so the exact score
``-(m_t^2 Sigma + v_t I)^{-1} (x - m_t mu)`` isolates the samplers' own errors.

Tolerances (statistical tests): with ``n`` samples the standard error of a mean component is
``sqrt(Sigma_ii / n)`` and that of a covariance entry
``sqrt((Sigma_ii Sigma_jj + Sigma_ij^2) / n)``.
We allow 5 standard errors plus a discretisation allowance of ``0.02 max(Sigma_ii, Sigma_jj)``
for covariances (0.02 sqrt(Sigma_ii) for means). The allowance was measured: with n = 40000
and the step counts used here (EM 200, PC 200, Heun 100) the largest deviation of any mean or
covariance entry was 1-2.4 % of the scale, mostly sampling noise (one SE is 0.5-0.7 %); Heun
with only 40 uniform steps under VE was 5 % off, hence 100 steps. The slow
``test_discretisation_bias_is_small`` checks 5 SE + 1 % at n = 40000.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from scorepde.diffusion import NoiseProcess, VEProcess, VPProcess
from scorepde.sampling import (
    PerSampleNoise,
    count_evaluations,
    sample_euler_maruyama,
    sample_predictor_corrector,
    sample_probability_flow_dpm2m,
    sample_probability_flow_heun,
    time_grid,
)

DTYPE = torch.float64


class GaussianTarget:
    """``x0 | c ~ N(mu + A c, Sigma)`` in ``d`` dimensions, samples shaped ``(B, 1, d)``."""

    def __init__(self, d: int, seed: int, cond_dim: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        factor = torch.randn(d, d, generator=g, dtype=DTYPE) / math.sqrt(d)
        self.d = d
        self.cov = factor @ factor.T + 0.1 * torch.eye(d, dtype=DTYPE)
        self.mean = torch.linspace(-1.0, 1.0, d, dtype=DTYPE)
        self.cond_matrix = torch.randn(d, cond_dim, generator=g, dtype=DTYPE) if cond_dim else None
        self.eigenvalues, self.eigenvectors = torch.linalg.eigh(self.cov)

    def mean_given(self, cond: Tensor | None, batch: int) -> Tensor:
        """``(B, d)`` conditional means."""
        if self.cond_matrix is None:
            return self.mean.expand(batch, self.d)
        return self.mean + cond.to(DTYPE) @ self.cond_matrix.T

    def score_fn(self, process: NoiseProcess) -> Callable[[Tensor, Tensor, Tensor | None], Tensor]:
        def score(x: Tensor, t: Tensor, cond: Tensor | None) -> Tensor:
            m = process.mean_coef(t.to(DTYPE))[:, None]
            v = process.variance(t.to(DTYPE))[:, None]
            centred = x.reshape(x.shape[0], self.d).to(DTYPE) - m * self.mean_given(
                cond, x.shape[0]
            )
            y = centred @ self.eigenvectors / (m**2 * self.eigenvalues + v)
            return (-y @ self.eigenvectors.T).reshape(x.shape).to(x.dtype)

        return score

    def check_moments(self, samples: Tensor, label: str, mean_offset: Tensor | None = None) -> None:
        """Assert sample mean and covariance within 5 SE + the discretisation allowance."""
        n = samples.shape[0]
        x = samples.reshape(n, self.d).to(DTYPE)
        if mean_offset is not None:
            x = x - mean_offset
        diag = torch.diag(self.cov)
        mean_tol = 5.0 * torch.sqrt(diag / n) + 0.02 * torch.sqrt(diag)
        mean_err = (x.mean(0) - self.mean).abs()
        assert torch.all(mean_err <= mean_tol), f"{label}: mean error {mean_err} > {mean_tol}"
        cov = torch.cov(x.T)
        se = torch.sqrt((diag[:, None] * diag[None, :] + self.cov**2) / n)
        cov_tol = 5.0 * se + 0.02 * torch.maximum(diag[:, None], diag[None, :])
        cov_err = (cov - self.cov).abs()
        assert torch.all(cov_err <= cov_tol), (
            f"{label}: covariance error {(cov_err / cov_tol).max():.2f} x tolerance"
        )


SAMPLERS = {
    "euler_maruyama": (sample_euler_maruyama, {"steps": 200}),
    "predictor_corrector": (sample_predictor_corrector, {"steps": 200}),
    "ode_heun": (sample_probability_flow_heun, {"steps": 100}),
}
# the EDM time grid is checked against the exact flow in test_probability_flow_heun_is_second_order
PROCESSES = {"vp": VPProcess(), "ve": VEProcess()}


@pytest.mark.parametrize("process_name", sorted(PROCESSES))
@pytest.mark.parametrize("sampler_name", sorted(SAMPLERS))
def test_sampler_reproduces_gaussian_moments(sampler_name: str, process_name: str) -> None:
    """n = 3000 samples of an 8-d Gaussian with a non-trivial covariance (eigenvalues 0.1-4):
    mean and covariance within 5 SE (SE ~ 0.018 sqrt(Sigma_ii) for means) + 2 % allowance."""
    target = GaussianTarget(d=8, seed=1)
    process = PROCESSES[process_name]
    sampler, options = SAMPLERS[sampler_name]
    samples = sampler(
        target.score_fn(process), process, (1, 8), None, n=3000, seed=3, dtype=DTYPE, **options
    )
    assert samples.shape == (3000, 1, 8)
    target.check_moments(samples, f"{sampler_name}/{process_name}")


@pytest.mark.parametrize("sampler_name", ["euler_maruyama", "ode_heun"])
def test_conditional_sampling_follows_each_condition(sampler_name: str) -> None:
    """2-d Gaussian whose mean moves with a 2-d condition, one condition row per sample:
    ``x - A c`` must have the unconditional moments (n = 3000, same tolerance as above)."""
    target = GaussianTarget(d=2, seed=2, cond_dim=2)
    process = VPProcess()
    sampler, options = SAMPLERS[sampler_name]
    cond = torch.randn(3000, 2, generator=torch.Generator().manual_seed(5), dtype=DTYPE)
    samples = sampler(
        target.score_fn(process), process, (1, 2), cond, n=3000, seed=4, dtype=DTYPE, **options
    )
    offset = cond @ target.cond_matrix.T
    target.check_moments(samples, sampler_name, mean_offset=offset)


def test_broadcast_condition_matches_repeated_rows() -> None:
    """``cond`` of shape ``(k,)`` or ``(1, k)`` is used for every sample, same as ``(n, k)``."""
    target = GaussianTarget(d=2, seed=2, cond_dim=2)
    process = VPProcess()
    score = target.score_fn(process)
    row = torch.tensor([0.5, -1.0], dtype=DTYPE)
    kwargs = {"n": 20, "steps": 10, "seed": 0, "dtype": DTYPE}
    a = sample_euler_maruyama(score, process, (1, 2), row, **kwargs)
    b = sample_euler_maruyama(score, process, (1, 2), row[None], **kwargs)
    c = sample_euler_maruyama(score, process, (1, 2), row.expand(20, 2), **kwargs)
    assert torch.equal(a, b) and torch.equal(a, c)
    with pytest.raises(ValueError, match="cond must have shape"):
        sample_euler_maruyama(score, process, (1, 2), torch.zeros(3, 2), **kwargs)


@pytest.mark.parametrize(
    ("sampler", "options"),
    [
        (sample_euler_maruyama, {"steps": 20}),
        (sample_predictor_corrector, {"steps": 20, "corrector_steps": 2}),
        (sample_probability_flow_heun, {"steps": 10}),
        (sample_probability_flow_heun, {"steps": 10, "time_grid_kind": "edm", "s_churn": 10.0}),
        (sample_probability_flow_dpm2m, {"steps": 10}),
    ],
)
def test_samples_do_not_depend_on_batch_size(sampler: Callable, options: dict) -> None:
    """Per-sample noise streams: batch_size 7 and 50 give identical samples (float32, 1e-6)."""
    target = GaussianTarget(d=4, seed=3)
    process = VPProcess()
    score = target.score_fn(process)
    small = sampler(score, process, (1, 4), None, n=50, seed=11, batch_size=7, **options)
    whole = sampler(score, process, (1, 4), None, n=50, seed=11, batch_size=50, **options)
    assert small.dtype == torch.float32
    torch.testing.assert_close(small, whole, rtol=0.0, atol=1e-6)
    # the first 10 samples of a run are the first 10 samples of a longer run
    first = sampler(score, process, (1, 4), None, n=10, seed=11, **options)
    torch.testing.assert_close(first, whole[:10], rtol=0.0, atol=1e-6)
    other_seed = sampler(score, process, (1, 4), None, n=10, seed=12, **options)
    assert not torch.allclose(other_seed, first)


def _exact_flow(target: GaussianTarget, process: VPProcess | VEProcess, z: Tensor) -> Tensor:
    """Probability-flow map from ``x_T = prior_std z`` to the Tweedie estimate at ``t_min``.

    In the eigenbasis of Sigma the ODE decouples and ``w_k = (x - m_t mu)_k`` scales as
    ``sqrt(c_k(t))`` with ``c_k = m_t^2 lambda_k + v_t``; Tweedie then gives
    ``mu + U (w m lambda / c)`` at ``t_min``.
    """
    t_max = torch.tensor(process.t_max, dtype=DTYPE)
    t_min = torch.tensor(process.t_min, dtype=DTYPE)
    lam, vecs = target.eigenvalues, target.eigenvectors

    def c(t: Tensor) -> Tensor:
        return process.mean_coef(t) ** 2 * lam + process.variance(t)

    x_t = process.prior_std() * z
    w = (x_t - process.mean_coef(t_max) * target.mean) @ vecs * torch.sqrt(c(t_min) / c(t_max))
    return target.mean + (w * process.mean_coef(t_min) * lam / c(t_min)) @ vecs.T


@pytest.mark.parametrize("process_name", ["vp", "ve"])
@pytest.mark.parametrize("grid", ["uniform", "edm"])
def test_probability_flow_heun_is_second_order(process_name: str, grid: str) -> None:
    """Heun vs the exact Gaussian flow map: doubling the steps cuts the error ~4x (order 2;
    we require > 3x between 20 -> 40 -> 80 steps). Measured max errors at 80 steps, in data
    units (Sigma's eigenvalues 0.1-4): VP 2e-3 (uniform), 3e-3 (edm); VE 2e-2 (uniform),
    9e-3 (edm); we require < 3e-2."""
    target = GaussianTarget(d=3, seed=4)
    process = PROCESSES[process_name]
    score = target.score_fn(process)
    z = PerSampleNoise(0, range(16)).normal((1, 3), dtype=DTYPE).reshape(16, 3)
    exact = _exact_flow(target, process, z)
    errors = []
    for steps in (20, 40, 80):
        x = sample_probability_flow_heun(
            score, process, (1, 3), None, n=16, steps=steps, dtype=DTYPE, time_grid_kind=grid
        )
        errors.append((x.reshape(16, 3) - exact).abs().max().item())
    assert errors[0] / errors[1] > 3.0 and errors[1] / errors[2] > 3.0, errors
    assert errors[2] < 3e-2, errors


def test_evaluation_counts() -> None:
    """NFE per sample: EM steps + 1, PC steps (corrector_steps + 1) + 1, Heun 2 steps (with or
    without churn), DPM-Solver++(2M) steps + 1."""
    target = GaussianTarget(d=2, seed=5)
    process = VEProcess()
    base = target.score_fn(process)
    for sampler, options, expected in [
        (sample_euler_maruyama, {"steps": 7}, 8),
        (sample_predictor_corrector, {"steps": 7, "corrector_steps": 2}, 22),
        (sample_probability_flow_heun, {"steps": 7}, 14),
        (sample_probability_flow_heun, {"steps": 7, "s_churn": 5.0}, 14),
        (sample_probability_flow_dpm2m, {"steps": 7}, 8),
    ]:
        counted = count_evaluations(base)
        sampler(counted, process, (1, 2), None, n=9, batch_size=4, **options)
        assert counted.nfe(9) == expected
        assert counted.calls == 3 * expected


@pytest.mark.parametrize("process", [VPProcess(), VEProcess()])
def test_time_grids_run_from_t_max_to_t_min(process: NoiseProcess) -> None:
    for kind in ("uniform", "edm", "logsnr"):
        grid = time_grid(process, 12, kind)
        assert grid.shape == (13,)
        assert grid[0].item() == process.t_max and grid[-1].item() == process.t_min
        assert torch.all(grid[1:] < grid[:-1])
    with pytest.raises(ValueError, match="unknown time grid"):
        time_grid(process, 12, "cosine")  # type: ignore[arg-type]
    # "logsnr": equal steps in lambda = log(m / sigma)
    grid = time_grid(process, 12, "logsnr")
    steps = torch.diff(torch.log(process.mean_coef(grid) / process.std(grid)))
    torch.testing.assert_close(steps, steps.mean().expand(12), rtol=1e-9, atol=0.0)


#: Fast deterministic samplers (and Heun with churn) at the NFE they need on the 8-d Gaussian
#: of ``test_sampler_reproduces_gaussian_moments`` (same n = 3000 and tolerance), and the
#: largest error over the tolerance measured with these seeds (1.0 = at the tolerance):
#: DPM-Solver++(2M) on the log-SNR grid passes at 10 NFE already (0.94 VP, 0.90 VE) and at
#: 20 NFE with a margin (0.61, 0.57). Heun integrates in t: on the EDM grid it passes VP at
#: 20 NFE (0.56) but not VE (5.1 at 20 NFE, 1.2 at 40, 0.74 at 60): for VE it needs churn
#: (0.38 at 40 NFE with s_churn = 10 on r in [0.05, 50]) or more steps.
FAST = {
    "dpm2m/vp": (sample_probability_flow_dpm2m, "vp", {"steps": 19}, 20),
    "dpm2m/ve": (sample_probability_flow_dpm2m, "ve", {"steps": 19}, 20),
    "heun_edm/vp": (sample_probability_flow_heun, "vp", {"steps": 10, "time_grid_kind": "edm"}, 20),
    "heun_churn/ve": (
        sample_probability_flow_heun,
        "ve",
        {"steps": 20, "time_grid_kind": "edm", "s_churn": 10.0, "s_tmin": 0.05, "s_tmax": 50.0},
        40,
    ),
    "heun_churn/vp": (
        sample_probability_flow_heun,
        "vp",
        {"steps": 20, "time_grid_kind": "edm", "s_churn": 10.0, "s_tmin": 0.05, "s_tmax": 50.0},
        40,
    ),
}


@pytest.mark.parametrize("name", sorted(FAST))
def test_fast_samplers_reproduce_gaussian_moments(name: str) -> None:
    """n = 3000, 8-d Gaussian: mean and covariance within 5 SE + 2 % with the NFE of ``FAST``
    (<= 20 for DPM-Solver++(2M) under VP and VE, and for Heun under VP)."""
    sampler, process_name, options, nfe = FAST[name]
    target = GaussianTarget(d=8, seed=1)
    process = PROCESSES[process_name]
    counted = count_evaluations(target.score_fn(process))
    samples = sampler(counted, process, (1, 8), None, n=3000, seed=3, dtype=DTYPE, **options)
    assert counted.nfe(3000) == nfe
    target.check_moments(samples, name)


@pytest.mark.parametrize("process_name", ["vp", "ve"])
def test_dpm2m_is_second_order(process_name: str) -> None:
    """DPM-Solver++(2M) vs the exact Gaussian flow map: doubling the steps cuts the error about
    4x (we require > 3x for 20 -> 40 -> 80 steps, log-SNR grid)."""
    target = GaussianTarget(d=3, seed=4)
    process = PROCESSES[process_name]
    score = target.score_fn(process)
    z = PerSampleNoise(0, range(16)).normal((1, 3), dtype=DTYPE).reshape(16, 3)
    exact = _exact_flow(target, process, z)
    errors = []
    for steps in (20, 40, 80):
        x = sample_probability_flow_dpm2m(
            score, process, (1, 3), None, n=16, steps=steps, dtype=DTYPE
        )
        errors.append((x.reshape(16, 3) - exact).abs().max().item())
    assert errors[0] / errors[1] > 3.0 and errors[1] / errors[2] > 3.0, errors
    assert errors[2] < 1e-2, errors


def test_heun_churn_options() -> None:
    """s_churn = 0 is plain Heun; churn changes the samples; bad options name themselves."""
    target = GaussianTarget(d=2, seed=5)
    process = VPProcess()
    score = target.score_fn(process)
    kwargs = {"n": 6, "steps": 6, "seed": 1, "dtype": DTYPE, "time_grid_kind": "edm"}
    plain = sample_probability_flow_heun(score, process, (1, 2), None, **kwargs)
    zero = sample_probability_flow_heun(score, process, (1, 2), None, s_churn=0.0, **kwargs)
    churned = sample_probability_flow_heun(score, process, (1, 2), None, s_churn=5.0, **kwargs)
    outside = sample_probability_flow_heun(
        score, process, (1, 2), None, s_churn=5.0, s_tmin=1e3, s_tmax=1e4, **kwargs
    )
    assert torch.equal(plain, zero) and torch.equal(plain, outside)
    assert not torch.allclose(plain, churned)
    with pytest.raises(ValueError, match="s_churn >= 0"):
        sample_probability_flow_heun(score, process, (1, 2), None, s_churn=-1.0, **kwargs)


def test_per_sample_noise_streams() -> None:
    """Row i is default_rng([seed, i]) in order, independent of buffering and batching."""
    import numpy as np

    noise = PerSampleNoise(5, [3, 8], buffer_elements=4)
    draws = torch.cat([noise.normal((3,), dtype=DTYPE) for _ in range(4)], dim=1)
    for row, index in enumerate([3, 8]):
        expected = np.random.default_rng([5, index]).standard_normal(12)
        np.testing.assert_array_equal(draws[row].numpy(), expected)
    with pytest.raises(ValueError, match="non-negative"):
        PerSampleNoise(-1, range(2))


@pytest.mark.slow
@pytest.mark.parametrize("process_name", sorted(PROCESSES))
@pytest.mark.parametrize("sampler_name", sorted(SAMPLERS))
def test_discretisation_bias_is_small(sampler_name: str, process_name: str) -> None:
    """n = 40000: SE ~ 0.5 % of the scale, so the 2 % allowance is checked to be generous
    (mean and covariance within 5 SE + 1 % of the scale)."""
    target = GaussianTarget(d=8, seed=1)
    process = PROCESSES[process_name]
    sampler, options = SAMPLERS[sampler_name]
    n = 40_000
    samples = sampler(
        target.score_fn(process), process, (1, 8), None, n=n, seed=7, dtype=DTYPE, **options
    ).reshape(n, 8)
    diag = torch.diag(target.cov)
    mean_err = (samples.mean(0) - target.mean).abs()
    assert torch.all(mean_err <= 5.0 * torch.sqrt(diag / n) + 0.01 * torch.sqrt(diag))
    se = torch.sqrt((diag[:, None] * diag[None, :] + target.cov**2) / n)
    scale = torch.maximum(diag[:, None], diag[None, :])
    cov_err = (torch.cov(samples.T) - target.cov).abs()
    assert torch.all(cov_err <= 5.0 * se + 0.01 * scale), (cov_err / (5 * se + 0.01 * scale)).max()
