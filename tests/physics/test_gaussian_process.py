"""Gaussian-process sampler and porosity map: exact factors, statistics, caching, errors."""

from __future__ import annotations

import numpy as np
import pytest

from scorepde.physics import (
    KERNELS,
    BatteryParameters,
    GaussianProcessSampler,
    latent_from_porosity,
    porosity_from_latent,
)

PARAMS = BatteryParameters()
GRID = PARAMS.grid()


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("relative_length", [0.05, 0.2, 0.5])
def test_factor_reproduces_covariance(kernel: str, relative_length: float) -> None:
    sampler = GaussianProcessSampler(GRID, kernel=kernel, variance=2.0)
    length = relative_length * PARAMS.length
    covariance = sampler.covariance(length)
    root = sampler.factor(length)
    assert covariance.shape == root.shape == (100, 100)
    np.testing.assert_allclose(np.diag(covariance), 2.0)
    # Exact square root up to round-off, although K is numerically singular for the SE kernel.
    assert np.max(np.abs(root @ root.T - covariance)) < 1e-12 * 2.0


def test_squared_exponential_covariance_is_numerically_singular() -> None:
    """Why the eigendecomposition: plain Cholesky of the SE kernel fails without a jitter."""
    sampler = GaussianProcessSampler(GRID)
    covariance = sampler.covariance(0.2 * PARAMS.length)
    with pytest.raises(np.linalg.LinAlgError):
        np.linalg.cholesky(covariance)
    assert np.linalg.eigvalsh(covariance).min() < 1e-12


def test_jitter_adds_a_nugget() -> None:
    sampler = GaussianProcessSampler(GRID, jitter=1e-6, variance=3.0)
    length = 0.1 * PARAMS.length
    root = sampler.factor(length)
    expected = sampler.covariance(length) + 1e-6 * 3.0 * np.eye(100)
    assert np.max(np.abs(root @ root.T - expected)) < 1e-12 * 3.0


def test_empirical_covariance_matches_kernel() -> None:
    """Tolerance from the sample size: var(sample cov_ij) = (1 + rho_ij^2) / n <= 2 / n."""
    n = 20_000
    sampler = GaussianProcessSampler(GRID, kernel="matern32")
    length = 0.1 * PARAMS.length
    samples = sampler.sample(length, n, np.random.default_rng(1234))
    assert samples.shape == (n, 100)
    empirical = samples.T @ samples / n  # the mean is known to be zero
    standard_error = np.sqrt(2.0 / n)
    assert np.max(np.abs(empirical - sampler.covariance(length))) < 6.0 * standard_error
    assert np.max(np.abs(samples.mean(axis=0))) < 6.0 * np.sqrt(1.0 / n)


def test_factor_cache_hits_and_lru_eviction() -> None:
    sampler = GaussianProcessSampler(GRID, cache_size=2)
    first = sampler.factor(1e-5)
    assert sampler.factor(1e-5) is first
    assert (sampler.cache_hits, sampler.cache_misses) == (1, 1)
    assert not first.flags.writeable
    sampler.factor(2e-5)
    sampler.factor(3e-5)  # evicts 1e-5 (least recently used)
    assert sampler.factor(1e-5) is not first
    assert sampler.cache_misses == 4
    sampler.clear_cache()
    assert (sampler.cache_hits, sampler.cache_misses) == (0, 0)


def test_sampling_is_reproducible_from_the_generator() -> None:
    sampler = GaussianProcessSampler(GRID)
    a = sampler.sample(2e-5, 5, np.random.default_rng(7))
    b = sampler.sample(2e-5, 5, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert sampler.sample(2e-5, 0, np.random.default_rng(7)).shape == (0, 100)


def test_porosity_stays_inside_bounds_and_inverts() -> None:
    sampler = GaussianProcessSampler(GRID)
    latent = sampler.sample(0.05 * PARAMS.length, 2000, np.random.default_rng(3))
    porosity = porosity_from_latent(latent, 0.2, 0.5)
    assert porosity.min() > 0.2
    assert porosity.max() < 0.5
    np.testing.assert_allclose(latent_from_porosity(porosity, 0.2, 0.5), latent, atol=1e-9)
    np.testing.assert_allclose(porosity_from_latent(np.zeros(3)), 0.35)


@pytest.mark.parametrize("length", [0.0, -1e-5, float("nan"), float("inf")])
def test_bad_length_scale_raises(length: float) -> None:
    sampler = GaussianProcessSampler(GRID)
    with pytest.raises(ValueError, match="length_scale"):
        sampler.factor(length)
    with pytest.raises(ValueError, match="length_scale"):
        sampler.sample(length, 3, np.random.default_rng(0))


def test_bad_construction_and_arguments_raise() -> None:
    with pytest.raises(ValueError, match="N >= 3"):
        GaussianProcessSampler(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="increasing"):
        GaussianProcessSampler(np.array([0.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="kernel = 'gaussian'"):
        GaussianProcessSampler(GRID, kernel="gaussian")
    with pytest.raises(ValueError, match="variance"):
        GaussianProcessSampler(GRID, variance=0.0)
    with pytest.raises(ValueError, match="jitter"):
        GaussianProcessSampler(GRID, jitter=-1.0)
    sampler = GaussianProcessSampler(GRID)
    with pytest.raises(ValueError, match="n = -1"):
        sampler.sample(1e-5, -1, np.random.default_rng(0))
    with pytest.raises(TypeError, match="Generator"):
        sampler.sample(1e-5, 2, 0)  # type: ignore[arg-type]


def test_bad_porosity_bounds_and_values_raise() -> None:
    with pytest.raises(ValueError, match="porosity_min"):
        porosity_from_latent(np.zeros(3), 0.5, 0.2)
    with pytest.raises(ValueError, match="porosity_max"):
        porosity_from_latent(np.zeros(3), 0.2, 1.0)
    with pytest.raises(ValueError, match=r"porosity contains 0\.6"):
        latent_from_porosity(np.array([0.3, 0.6]), 0.2, 0.5)
    with pytest.raises(ValueError, match="latent"):
        porosity_from_latent(np.array([np.nan]))
