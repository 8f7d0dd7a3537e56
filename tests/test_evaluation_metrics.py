"""Statistics of sample sets on synthetic Gaussian fields with known parameters.

The fields: two channels on N = 30 points of [0, 1]; each is mean(x) + std(x) * g(x) with g a
unit-variance Gaussian process (squared-exponential correlation, length 0.15), so the
effective number of independent points per channel is ~5. Channel "phi" has mean x and std
0.5 x (a Dirichlet value 0 at the left: all samples exactly 0 there); channel "c" has mean
1000 and std 50 (1 - x) (Dirichlet value 1000 at the right). Every draw has its own seed.

Reference values of the sim-vs-sim statistics at n = 500 (40 seeds, measured once): mean
error 0.07 +- 0.03 (max 0.16), std error 0.04 +- 0.02 (max 0.09), coverage 0.947 +- 0.005,
energy ratio 1.0 +- 0.3 (max 1.8).
"""

from __future__ import annotations

import numpy as np
import pytest

from scorepde.evaluation.metrics import (
    boundary_errors,
    channel_fluctuation_scale,
    classifier_two_sample_test,
    coverage,
    energy_distance,
    energy_permutation_test,
    mean_error,
    std_error,
)

N_POINTS = 30
GRID = np.linspace(0.0, 1.0, N_POINTS)
CHANNELS = ("phi", "c")


def gaussian_fields(
    n: int, seed: int, *, shift: float = 0.0, std_factor: float = 1.0
) -> np.ndarray:
    """(n, 2, N_POINTS) fields; a uniform shift in units of each channel's largest std."""
    rng = np.random.default_rng(seed)
    distance = GRID[:, None] - GRID[None, :]
    cholesky = np.linalg.cholesky(np.exp(-0.5 * (distance / 0.15) ** 2) + 1e-8 * np.eye(N_POINTS))
    g = rng.standard_normal((n, 2, N_POINTS)) @ cholesky.T
    std_phi, std_c = 0.5 * GRID, 50.0 * (1.0 - GRID)
    fields = np.empty((n, 2, N_POINTS))
    fields[:, 0] = GRID + std_factor * std_phi * g[:, 0] + shift * std_phi.max()
    fields[:, 1] = 1000.0 + std_factor * std_c * g[:, 1] + shift * std_c.max()
    return fields


N = 500
REFERENCE = gaussian_fields(N, seed=1)
SAME = gaussian_fields(N, seed=2)


def test_same_distribution_is_at_the_noise_floor() -> None:
    """Two independent sets from one distribution.

    mean error: the difference of means at a point has std sqrt(2/n) = 0.063 (in units of
    the local std); the max over ~5 effective points is ~1-3 of those, so < 0.2 (the largest
    of 40 seeds was 0.16). std error: ~sqrt(1/n) = 0.045, bound 0.1 (max of 40 seeds 0.09).
    coverage: mean 0.95 - 1/(n+1) with seed-to-seed std 0.005 (band estimation error
    dominates the binomial term), tolerance 0.02 = 4 std. energy ratio: the floor itself is
    one draw and the ratio of two null draws has std ~0.3 at any n, so the bound is 2.5.
    """
    assert np.all(mean_error(SAME, REFERENCE) < 0.2)
    assert np.all(std_error(SAME, REFERENCE) < 0.1)
    np.testing.assert_allclose(coverage(SAME, REFERENCE), 0.95, atol=0.02)
    floor = energy_distance(gaussian_fields(N, seed=3), REFERENCE)
    assert 0 < energy_distance(SAME, REFERENCE) < 2.5 * floor


def test_mean_shift_of_0_3_std_is_detected() -> None:
    """Every field shifted by 0.3 of its channel's largest std: the mean error is
    0.3 +- 0.06 (floor ~0.07, bound > 0.2), the energy ratio ~35 (floor ratio ~1; bound > 5,
    far above 1.5)."""
    shifted = gaussian_fields(N, seed=4, shift=0.3)
    floor = energy_distance(SAME, REFERENCE)
    assert np.all(mean_error(shifted, REFERENCE) > 0.2)
    assert energy_distance(shifted, REFERENCE) > 5 * floor


def test_std_scaled_by_1_3_is_detected_by_std_error_and_coverage() -> None:
    """std x 1.3: std error ~0.3 (floor ~0.045, bound > 0.2); the band is 1.3 times wider, so
    coverage rises to P(|Z| < 1.96 * 1.3) = 0.989 (bound > 0.975, 5 floor std above 0.95)."""
    wider = gaussian_fields(N, seed=5, std_factor=1.3)
    assert np.all(std_error(wider, REFERENCE) > 0.2)
    assert np.all(coverage(wider, REFERENCE) > 0.975)
    narrower = gaussian_fields(N, seed=6, std_factor=1 / 1.3)
    assert np.all(coverage(narrower, REFERENCE) < 0.9)  # P(|Z| < 1.96 / 1.3) = 0.868


def test_dirichlet_points_do_not_break_std_error_or_coverage() -> None:
    """phi[:, :, 0] and c[:, :, -1] are exact in every sample (std 0 there).

    std error excludes them (no division by a zero std: finite, at the floor). Coverage
    excludes points degenerate in both sets, so a model that is off by 1e-4 at c = 1000
    (inside the tolerance 1e-6 * max|c| ~ 1.2e-3, like float32 rounding) changes nothing, and
    the coverage equals that over the non-degenerate points alone (exactly).
    """
    assert np.ptp(REFERENCE[:, 0, 0]) == 0 and np.ptp(REFERENCE[:, 1, -1]) == 0
    model = SAME.copy()
    model[:, 1, -1] += 1e-4
    errors = std_error(model, REFERENCE)
    assert np.all(np.isfinite(errors)) and np.all(errors < 0.1)
    full = coverage(model, REFERENCE)
    inner_phi = coverage(model[:, :1, 1:], REFERENCE[:, :1, 1:])  # phi without x = 0
    inner_c = coverage(model[:, 1:, :-1], REFERENCE[:, 1:, :-1])  # c without x = 1
    np.testing.assert_allclose(full, [inner_phi[0], inner_c[0]], rtol=0, atol=1e-12)


def test_coverage_counts_a_wrong_constant_as_a_miss() -> None:
    """A model whose boundary value is exact but wrong (phi(0) = 0.1, not 0) is not a
    degenerate-and-agreeing point: every reference value at it is a miss (1 of 30 points
    -> coverage drops by 1/30 of the inside fraction)."""
    model = SAME.copy()
    model[:, 0, 0] = 0.1
    with_point = coverage(model, REFERENCE)[0]
    without = coverage(model[:, :, 1:], REFERENCE[:, :, 1:])[0]
    np.testing.assert_allclose(with_point, without * (N_POINTS - 1) / N_POINTS, atol=1e-12)


def test_mean_error_is_exact_on_a_constructed_case() -> None:
    """Model = reference + 0.5 at one point of channel 0: mean error = 0.5 / max std (exact)."""
    model = REFERENCE.copy()
    model[:, 0, 10] += 0.5
    expected = 0.5 / REFERENCE[:, 0].std(axis=0, ddof=1).max()
    np.testing.assert_allclose(mean_error(model, REFERENCE), [expected, 0.0], atol=1e-12)


def test_energy_distance_v_and_u_statistics() -> None:
    """On a hand-checkable 1-D case a = {0, 1}, b = {3}: E|X-Y| = 2.5, E|X-X'| is 1/2 with the
    i = j pairs (V) and 1 without (U), E|Y-Y'| = 0 (V; undefined for U with one sample, so
    b = {3, 3} is used). V = 5 - 0.5 - 0 = 4.5, U = 5 - 1 - 0 = 4."""
    a = np.array([0.0, 1.0]).reshape(2, 1, 1)
    b = np.array([3.0, 3.0]).reshape(2, 1, 1)
    assert energy_distance(a, b, scale=[1.0]) == pytest.approx(4.5)
    assert energy_distance(a, b, scale=[1.0], unbiased=True) == pytest.approx(4.0)


def test_energy_distance_blocks_match_the_direct_formula(monkeypatch) -> None:
    """Block-wise sums equal the all-pairs formula (to rounding, 1e-10 relative)."""
    from scorepde.evaluation import metrics

    a, b = REFERENCE[:60], SAME[:45]
    scale = channel_fluctuation_scale(b)
    x = (a / scale[:, None]).reshape(60, -1)
    y = (b / scale[:, None]).reshape(45, -1)

    def mean_distance(p, q):
        return np.linalg.norm(p[:, None] - q[None], axis=-1).mean()

    direct = 2 * mean_distance(x, y) - mean_distance(x, x) - mean_distance(y, y)
    monkeypatch.setattr(metrics, "_BLOCK_ENTRIES", 7 * 45)  # several uneven blocks
    assert energy_distance(a, b) == pytest.approx(direct, rel=1e-10)


def test_energy_permutation_test() -> None:
    """The permutation statistic of the observed split equals energy_distance (1e-10
    relative); a shift of 0.3 of the largest std gets the smallest possible p-value 1/201;
    the same distribution gets p > 0.01 (under H0 p is uniform, so 1 % of seeds would fail;
    the seed is fixed, so the outcome is too)."""
    result = energy_permutation_test(SAME, REFERENCE, seed=0)
    assert result["energy_distance"] == pytest.approx(energy_distance(SAME, REFERENCE), rel=1e-10)
    assert result["p_value"] > 0.01
    shifted = gaussian_fields(N, seed=4, shift=0.3)
    assert energy_permutation_test(shifted, REFERENCE, seed=0)["p_value"] == pytest.approx(1 / 201)


def test_boundary_errors_zero_when_satisfied_and_right_when_violated() -> None:
    """Fields u = a + b cos(pi x) have u'(0) = 0 exactly; the second-order one-sided
    difference has error O(h^2) (h = 1/29: |u''| h^2 / 3 ~ pi^2 b / 2500, relative error
    < 1e-2 of b), so the Neumann error is < 0.02. Dirichlet values set exactly give 0.
    A right-hand value off by 20 with scale 50 gives exactly 0.4; a linear slope of 30 per
    unit length (domain length 1) with scale 50 gives 0.6 (exact for a linear profile)."""
    rng = np.random.default_rng(7)
    n = 40
    amplitude = rng.uniform(0.5, 1.5, size=(n, 1))
    phi = amplitude * GRID  # phi(0) = 0
    c = 1000.0 + amplitude * np.cos(np.pi * GRID)  # c'(0) = 0
    c[:, -1] = 1000.0
    fields = np.stack([phi, c], axis=1)
    constraints = [
        ("phi", "dirichlet", "left", 0.0),
        ("c", "dirichlet", "right", 1000.0),
        ("c", "neumann", "left", 0.0),
    ]
    scale = {"phi": 1.0, "c": 1.0}
    errors = boundary_errors(fields, constraints, GRID, scale, channels=CHANNELS)
    assert errors["phi:dirichlet:left"]["max"] == 0.0
    assert errors["c:dirichlet:right"]["max"] == 0.0
    assert errors["c:neumann:left"]["max"] < 0.02

    violated = np.stack([np.full((n, N_POINTS), 1020.0), 1000.0 + 30.0 * GRID + 0 * phi], axis=1)
    errors = boundary_errors(
        violated,
        [("phi", "dirichlet", "right", 1000.0), ("c", "neumann", "left", 0.0)],
        GRID,
        [50.0, 50.0],
        channels=CHANNELS,
    )
    assert errors["phi:dirichlet:right"]["mean"] == pytest.approx(0.4)
    assert errors["c:neumann:left"]["mean"] == pytest.approx(0.6)
    assert errors["c:neumann:left"]["max"] == pytest.approx(0.6)


def test_boundary_derivative_is_second_order_on_a_nonuniform_grid() -> None:
    """u = x^2 on a stretched grid: the 3-point formula is exact for quadratics, so
    u'(0) = 0 and u'(1) = 2 to rounding (1e-9)."""
    grid = np.linspace(0.0, 1.0, 12) ** 1.5
    fields = np.stack([grid**2, grid**2])[None]
    errors = boundary_errors(
        fields,
        [("phi", "neumann", "left", 0.0), ("c", "neumann", "right", 2.0)],
        grid,
        [1.0, 1.0],
        channels=CHANNELS,
    )
    assert errors["phi:neumann:left"]["max"] < 1e-9
    assert errors["c:neumann:right"]["max"] < 1e-9


def test_bad_inputs_say_what_was_wrong() -> None:
    with pytest.raises(ValueError, match="channels, n_points"):
        mean_error(REFERENCE, REFERENCE[:, :, :10])
    with pytest.raises(ValueError, match="expected"):
        coverage(REFERENCE[0], REFERENCE)
    with pytest.raises(ValueError, match="not in"):
        boundary_errors(
            REFERENCE, [("T", "dirichlet", "left", 0.0)], GRID, [1, 1], channels=CHANNELS
        )


def test_classifier_two_sample_test() -> None:
    """Same distribution: held-out accuracy within 0.5 +- 0.07 (binomial std at 500 test
    samples is 0.022; 3 std). A shift of 0.3 of the largest std: accuracy > 0.75 (measured 0.91)."""
    same = classifier_two_sample_test(SAME, REFERENCE, seed=0)
    assert abs(same["accuracy"] - 0.5) < 0.07
    shifted = classifier_two_sample_test(gaussian_fields(N, seed=4, shift=0.3), REFERENCE, seed=0)
    assert shifted["accuracy"] > 0.75 and shifted["p_value"] < 1e-6
