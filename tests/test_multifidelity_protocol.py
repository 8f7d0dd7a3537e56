"""The multi-fidelity protocol and baselines: designs, nested budgets, interpolation to the finest
grid, standardisation, nRMSE, and the baselines' defining properties (Poisson's linearity makes
least squares exact from five fine solutions)."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from scorepde.multifidelity import (
    BENCHMARKS,
    DEFAULT_BUDGETS,
    Standardiser,
    design_pool,
    evaluate_baselines,
    generate_data,
    get_benchmark,
    make_training_set,
    nested_subsets,
    nrmse,
    to_finest_grid,
)
from scorepde.multifidelity.baselines import BASELINES, available_baselines, principal_basis


@pytest.fixture(scope="module")
def poisson_data():
    """Small pools (64 train, 16 test): solving them at every fidelity takes ~0.2 s."""
    return generate_data(get_benchmark("poisson"), n_train=64, n_test=16, seed=3)


@pytest.mark.parametrize("method", ["sobol", "lhs"])
def test_design_pools_are_stratified_seeded_and_in_the_box(method: str) -> None:
    """Both designs put exactly one of n points in each of n equal slices of every input."""
    benchmark = get_benchmark("poisson")
    pool = design_pool(benchmark, 128, seed=5, method=method)
    bounds = np.asarray(benchmark.input_bounds)
    unit = (pool - bounds[:, 0]) / (bounds[:, 1] - bounds[:, 0])
    assert pool.shape == (128, 5) and unit.min() >= 0 and unit.max() < 1
    for column in unit.T:
        np.testing.assert_array_equal(np.sort(np.floor(column * 128)), np.arange(128))
    np.testing.assert_array_equal(pool, design_pool(benchmark, 128, seed=5, method=method))
    assert not np.allclose(pool, design_pool(benchmark, 128, seed=5, split="test", method=method))
    with pytest.raises(ValueError, match="method is 'grid'"):
        design_pool(benchmark, 8, seed=0, method="grid")


def test_budgets_are_nested_prefixes() -> None:
    subsets = nested_subsets(512, DEFAULT_BUDGETS, np.random.default_rng(0))
    assert [s.size for s in subsets] == list(DEFAULT_BUDGETS)
    for lower, higher in itertools.pairwise(subsets):
        assert set(higher) <= set(lower)
    assert len(set(subsets[0])) == 100
    with pytest.raises(ValueError, match="budgets are"):
        nested_subsets(10, (20, 5), np.random.default_rng(0))


def fake_benchmark(field, interpolation: str):
    """The Heat benchmark's grids with outputs ``field(t, x)`` (an exact check of the
    interpolation: bilinear reproduces bilinear fields, bicubic reproduces cubics)."""
    heat = get_benchmark("heat")

    def solve(inputs, n):
        t, x = heat.grid(n)
        return np.broadcast_to(field(t[:, None], x[None, :]), (len(inputs), n, n)).copy()

    def extend(outputs, inputs):
        n = outputs.shape[1]
        t = np.concatenate([[0.0], heat.grid(n)[0]])
        x = heat.grid(n)[1]
        values = np.broadcast_to(field(t[:, None], x[None, :]), (len(outputs), n + 1, n))
        return (t, x), values.copy()

    return replace(heat, solve=solve, extend=extend, interpolation=interpolation)


@pytest.mark.parametrize(
    ("interpolation", "field"),
    [
        ("linear", lambda t, x: 0.3 + 2.0 * t - x + 1.5 * t * x),
        ("cubic", lambda t, x: (t - 0.2) ** 3 - 2.0 * x**3 * t + x**2),
    ],
)
def test_interpolation_to_the_finest_grid_is_exact_for_its_polynomials(interpolation, field):
    benchmark = fake_benchmark(field, interpolation)
    t, x = benchmark.grid(benchmark.finest)
    expected = field(t[:, None], x[None, :])
    inputs = np.zeros((2, 3))
    for fidelity in benchmark.fidelities:
        fine = to_finest_grid(benchmark, benchmark.solve(inputs, fidelity), inputs, fidelity)
        assert fine.shape == (2, 64, 64)
        np.testing.assert_allclose(fine, np.broadcast_to(expected, fine.shape), atol=1e-12)


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_coarse_outputs_approach_the_finest_as_the_fidelity_rises(name: str) -> None:
    """Interpolated coarse solutions converge towards the finest one (relative L2 error falls
    with each level and the second-highest is within 10 %)."""
    benchmark = get_benchmark(name)
    inputs = design_pool(benchmark, 4, seed=1)
    finest = benchmark.solve(inputs, benchmark.finest)
    errors = [
        nrmse(finest, to_finest_grid(benchmark, benchmark.solve(inputs, f), inputs, f))
        for f in benchmark.fidelities[:-1]
    ]
    assert np.all(np.diff(errors) < 0) and errors[-1] < 0.1, errors


def test_standardiser_and_nrmse() -> None:
    rng = np.random.default_rng(2)
    fields = rng.normal(3.0, 2.0, (50, 6))
    fields[:, 4] = 1.5  # constant over the training outputs: scale 1
    standardiser = Standardiser.fit(fields)
    standard = standardiser.transform(fields)
    np.testing.assert_allclose(standard.mean(axis=0), 0.0, atol=1e-13)
    np.testing.assert_allclose(np.delete(standard.std(axis=0), 4), 1.0)
    assert standardiser.scale[4] == 1.0
    np.testing.assert_allclose(standardiser.inverse(standard), fields)
    assert nrmse(standard, standard) == 0.0
    assert nrmse(standard, np.zeros_like(standard)) == pytest.approx(1.0)
    assert nrmse(standard, 0.5 * standard) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="expected the truth's"):
        nrmse(standard, standard[:3])


def test_training_set_standardises_each_level_on_its_subset(poisson_data) -> None:
    training, test = make_training_set(poisson_data, (40, 20, 10, 5), repeat=1)
    assert [len(x) for x in training.inputs] == [40, 20, 10, 5]
    for level in range(4):
        np.testing.assert_allclose(training.fields[level].mean(axis=0), 0.0, atol=1e-12)
    assert set(test.raw) == {8, 16, 32}  # the finest test outputs are never handed out
    assert test.fields.shape == (16, 64 * 64)
    other, _ = make_training_set(poisson_data, (40, 20, 10, 5), repeat=2)
    assert not np.array_equal(training.inputs[-1], other.inputs[-1])


def test_poisson_least_squares_is_exact_from_five_fine_solutions(poisson_data) -> None:
    """The Poisson output is linear in its five inputs: five independent fine solutions
    determine it (nRMSE at round-off); with an intercept six are needed."""
    results = evaluate_baselines(
        poisson_data,
        {name: BASELINES[name] for name in ("linear", "affine", "coarse_solver")},
        budgets=(40, 20, 10, 5),
        repeats=2,
    )
    assert np.all(results["linear"] < 1e-10), results
    assert np.all(results["affine"] > 1e-3)  # underdetermined with five
    assert np.all(results["coarse_solver"] > 1e-3)
    six = evaluate_baselines(poisson_data, {"affine": BASELINES["affine"]}, (40, 20, 10, 6), 1)
    assert six["affine"][0] < 1e-10


def test_principal_basis_is_orthonormal_and_truncated() -> None:
    rng = np.random.default_rng(4)
    fields = rng.normal(size=(30, 3)) @ rng.normal(size=(3, 40))  # rank 3
    basis = principal_basis(fields - fields.mean(axis=0), max_components=10)
    assert basis.shape == (40, 3)
    np.testing.assert_allclose(basis.T @ basis, np.eye(3), atol=1e-12)
    assert principal_basis(fields, max_components=2).shape == (40, 2)


def test_gp_pca_learns_heat_from_fine_data() -> None:
    pytest.importorskip("sklearn")
    data = generate_data(get_benchmark("heat"), n_train=64, n_test=16, seed=0)
    results = evaluate_baselines(data, {"gp_pca": BASELINES["gp_pca"]}, (40, 30, 30, 30), 1)
    assert results["gp_pca"][0] < 0.2, results


def test_optional_baselines_are_listed_or_explained() -> None:
    names = available_baselines()
    assert {"coarse_solver", "linear", "affine"} <= set(names)
    for name in set(BASELINES) - set(names):
        with pytest.raises(ImportError, match=r"scorepde\[mf\]"):
            BASELINES[name](None, None)


@pytest.mark.slow
def test_ar1_pca_runs_and_beats_predicting_the_mean(poisson_data) -> None:
    pytest.importorskip("emukit")
    pytest.importorskip("GPy")
    results = evaluate_baselines(
        poisson_data, {"ar1_pca": BASELINES["ar1_pca"]}, (40, 20, 10, 5), 1
    )
    assert results["ar1_pca"][0] < 1.0, results
