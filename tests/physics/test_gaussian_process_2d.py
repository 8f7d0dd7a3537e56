"""Kronecker Gaussian-process sampler on a tensor grid: exact factors, statistics, errors."""

from __future__ import annotations

import numpy as np
import pytest

from scorepde.physics import KroneckerGaussianProcessSampler


def cell_centres(n: int) -> np.ndarray:
    return (np.arange(n) + 0.5) / n


def dense_kernel(coordinates: tuple[np.ndarray, ...], length: float, variance: float) -> np.ndarray:
    """``variance * exp(-|p - q|^2 / (2 l^2))`` over all pairs of grid points (C order)."""
    points = np.stack([grid.ravel() for grid in np.meshgrid(*coordinates, indexing="ij")], axis=1)
    squared = np.sum((points[:, None, :] - points[None, :, :]) ** 2, axis=-1)
    return variance * np.exp(-0.5 * squared / length**2)


@pytest.mark.parametrize("length", [0.05, 0.2, 0.5])
def test_kronecker_factors_reproduce_the_2d_kernel_exactly(length: float) -> None:
    """A_y A_y^T kron A_x A_x^T equals the kernel of the Euclidean distance (round-off)."""
    coordinates = (cell_centres(5), cell_centres(4))
    sampler = KroneckerGaussianProcessSampler(coordinates, variance=2.0)
    root_y, root_x = sampler.factors(length)
    assert root_y.shape == (5, 5) and root_x.shape == (4, 4)
    product = 2.0 * np.kron(root_y @ root_y.T, root_x @ root_x.T)
    expected = dense_kernel(coordinates, length, 2.0)
    assert np.max(np.abs(product - expected)) < 1e-12 * 2.0
    np.testing.assert_allclose(sampler.covariance(length), expected, rtol=0, atol=1e-14)


def test_empirical_covariance_matches_the_2d_kernel() -> None:
    """Tolerance from the sample size: var(sample cov_pq) = variance^2 (1 + rho_pq^2) / n <=
    2 variance^2 / n; 6 standard errors over the ~450 distinct entries (a false alarm has
    probability < 1e-6)."""
    n, variance, length = 20_000, 1.5, 0.3
    coordinates = (cell_centres(6), cell_centres(5))
    sampler = KroneckerGaussianProcessSampler(coordinates, variance=variance)
    samples = sampler.sample(length, n, np.random.default_rng(2024))
    assert samples.shape == (n, 6, 5)
    flat = samples.reshape(n, -1)
    empirical = flat.T @ flat / n  # the mean is known to be zero
    standard_error = variance * np.sqrt(2.0 / n)
    assert np.max(np.abs(empirical - dense_kernel(coordinates, length, variance))) < (
        6.0 * standard_error
    )
    assert np.max(np.abs(flat.mean(axis=0))) < 6.0 * np.sqrt(variance / n)


def test_any_rank_reproducibility_and_cache() -> None:
    coordinates = (cell_centres(3), cell_centres(4), cell_centres(5))
    sampler = KroneckerGaussianProcessSampler(coordinates)
    first = sampler.sample(0.2, 7, np.random.default_rng(5))
    second = sampler.sample(0.2, 7, np.random.default_rng(5))
    assert first.shape == (7, 3, 4, 5) and sampler.shape == (3, 4, 5)
    np.testing.assert_array_equal(first, second)
    # One factorisation per axis and length scale; the 1-D axis samplers count the hits.
    assert [axis.cache_misses for axis in sampler._axes] == [1, 1, 1]
    assert sampler.sample(0.2, 0, np.random.default_rng(0)).shape == (0, 3, 4, 5)


def test_one_axis_matches_the_1d_sampler() -> None:
    """On one axis the Kronecker sampler is the 1-D sampler: same factor, same draws."""
    from scorepde.physics import GaussianProcessSampler

    grid = cell_centres(20)
    ours = KroneckerGaussianProcessSampler((grid,), variance=4.0)
    theirs = GaussianProcessSampler(grid, variance=4.0)
    np.testing.assert_allclose(
        ours.sample(0.1, 5, np.random.default_rng(3)),
        theirs.sample(0.1, 5, np.random.default_rng(3)),
        rtol=1e-12,
        atol=1e-12,
    )


def test_errors_name_the_argument() -> None:
    coordinates = (cell_centres(4), cell_centres(4))
    with pytest.raises(ValueError, match=r"kernel = 'matern32'.*separable"):
        KroneckerGaussianProcessSampler(coordinates, kernel="matern32")
    with pytest.raises(ValueError, match="variance = -1"):
        KroneckerGaussianProcessSampler(coordinates, variance=-1.0)
    with pytest.raises(ValueError, match="tuple of 1-D arrays"):
        KroneckerGaussianProcessSampler(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="strictly increasing"):
        KroneckerGaussianProcessSampler((cell_centres(4), cell_centres(4)[::-1]))
    sampler = KroneckerGaussianProcessSampler(coordinates)
    with pytest.raises(ValueError, match="length_scale = 0"):
        sampler.sample(0.0, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="n = -1"):
        sampler.sample(0.1, -1, np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"numpy\.random\.Generator"):
        sampler.sample(0.1, 1, 0)
