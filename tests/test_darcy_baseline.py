"""The no-network baselines of ``benchmarks/bench_darcy_baseline.py`` on a tiny Darcy data set
(8 x 8 cells, six design points simulated here) and the script's table on a tiny run folder."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from scorepde import pipeline
from scorepde.configuration import save_yaml
from scorepde.data.schema import FieldDataset
from scorepde.evaluation.compare import targets_from_config
from scorepde.evaluation.evaluate import evaluate_conditions
from scorepde.problems.darcy import DarcyProblem
from scorepde.recipes import Recipe

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
N_CELLS = 8
PER = 30
DESIGN = np.array([[0.1, 0.5], [0.3, 1.0], [0.06, 1.4], [0.2, 0.8], [0.45, 0.3], [0.15, 1.2]])


def load_bench() -> ModuleType:
    """Import ``benchmarks/bench_darcy_baseline.py`` (not a package) as a module."""
    spec = importlib.util.spec_from_file_location(
        "bench_darcy_baseline", BENCHMARKS / "bench_darcy_baseline.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench()


@pytest.fixture(scope="module")
def problem() -> DarcyProblem:
    return DarcyProblem(n_cells=N_CELLS)


@pytest.fixture(scope="module")
def dataset(problem: DarcyProblem) -> FieldDataset:
    result = problem.simulate(DESIGN, PER, list(range(len(DESIGN))))
    return FieldDataset(
        fields=result["fields"],
        latent=result["latent"],
        conditions=result["conditions"],
        condition_names=problem.condition_names,
        condition_index=np.repeat(np.arange(len(DESIGN)), PER),
        grid=problem.coordinates,
        channels=problem.channels,
        channel_units=problem.channel_units,
        condition_units=problem.condition_units,
        latent_name=problem.latent_name,
        axis_names=problem.axis_names,
    )


def test_samplers_have_the_field_shape_and_follow_the_seed(
    bench: ModuleType, problem: DarcyProblem, dataset: FieldDataset
) -> None:
    gaussian = bench.GaussianBaseline(dataset, problem, k=3, components=40)
    wolf = bench.GaussianBaseline(dataset, problem, k=3, components=40, covariance="ledoit-wolf")
    nearest = bench.NearestDesignResampler(dataset, problem)
    query = np.array([0.12, 0.7])  # not a design point
    for sampler in (gaussian, wolf, nearest):
        first = sampler.sample(query, 7, 3)
        assert first.shape == (7, 2, N_CELLS, N_CELLS)
        assert np.all(np.isfinite(first))
        np.testing.assert_array_equal(first, sampler.sample(query, 7, 3))
        assert not np.array_equal(first, sampler.sample(query, 7, 4))
    # resampling returns training fields of the nearest design point ([0.1, 0.5]) unchanged
    own = dataset.fields[dataset.condition_index == 0].reshape(PER, -1)
    drawn = nearest.sample(query, 50, 0).reshape(50, -1)
    assert all(np.any(np.all(own == row, axis=1)) for row in drawn)
    assert 0.0 <= gaussian.last_shrinkage <= 1.0
    with pytest.raises(ValueError, match="covariance = 'full'"):
        bench.GaussianBaseline(dataset, problem, covariance="full")


def test_gaussian_mean_at_a_design_point_with_k_1_is_its_empirical_mean(
    bench: ModuleType, problem: DarcyProblem, dataset: FieldDataset
) -> None:
    size = 2 * N_CELLS * N_CELLS  # all principal directions: the projection loses nothing
    index = 3
    empirical = dataset.fields[dataset.condition_index == index].mean(axis=0)
    scale = dataset.fields[dataset.condition_index == index].std(axis=0).max()
    # degree 1 (3 monomials, 6 design points): the conditional mean does not interpolate the
    # design means, so the normalised design mean is not 0 and the match below is not trivial
    exact = bench.GaussianBaseline(dataset, problem, k=1, components=size, degree=1)
    base_mean = exact.normaliser.base.inverse(
        np.zeros((1, *empirical.shape)), exact.encoder.encode(DESIGN[index])
    )[0]
    assert np.max(np.abs(base_mean - empirical)) > 1e-2 * scale
    np.testing.assert_allclose(exact.mean_field(DESIGN[index]), empirical, atol=1e-8 * scale)
    # the draws' mean: within 5 standard errors at every point (n = 20000)
    draws = exact.sample(DESIGN[index], 20000, 11)
    error = np.abs(draws.mean(axis=0) - empirical)
    assert np.all(error <= 5.0 * draws.std(axis=0) / np.sqrt(len(draws)) + 1e-12)
    # pooling a second design point moves the mean: the check above can fail
    pooled = bench.GaussianBaseline(dataset, problem, k=2, components=size, degree=1)
    assert np.max(np.abs(pooled.mean_field(DESIGN[index]) - empirical)) > 1e-3 * scale


def test_latent_solver_draws_the_gaussian_process_and_solves_it(
    bench: ModuleType, problem: DarcyProblem, dataset: FieldDataset
) -> None:
    baseline = bench.LatentSolverBaseline(dataset, problem)
    query = np.array([0.2, 0.8])  # a design point: its latent law is the unit GP of l = 0.2
    pairs = baseline.sample(query, 4000, 0)
    assert pairs.shape == (4000, 2, N_CELLS, N_CELLS)
    np.testing.assert_array_equal(pairs, baseline.sample(query, 4000, 0))
    assert not np.array_equal(pairs[:5], baseline.sample(query, 5, 1))
    # every pair is the simulator's: u is the pressure of its own medium
    resolved = problem.solve(pairs[:50, 0] / query[1], np.tile(query, (50, 1)))
    np.testing.assert_allclose(pairs[:50], resolved, atol=1e-12)
    # the latent law: zero mean, unit variance and the kernel's neighbour correlation
    # exp(-h^2 / (2 l^2)) = 0.823 at h = 1/8; fitted from 180 fields (30 at this point), so
    # the tolerances are those of a fitted Gaussian, not of the sampling noise (n = 4000).
    # Measured: variance 0.91, correlation 0.75; a linear whitening fit (whiten_degree=1)
    # reads 0.70 and fails
    g = pairs[:, 0] / query[1]
    assert np.sqrt(np.mean(g.mean(axis=0) ** 2)) < 0.25  # one design point's error: ~1/sqrt(30)
    assert abs(g.var(axis=0).mean() - 1.0) < 0.15
    h = 1.0 / N_CELLS
    kernel = np.exp(-(h**2) / (2 * query[0] ** 2))
    neighbour = np.mean(g[:, :, 1:] * g[:, :, :-1]) / np.mean(g**2)
    assert abs(neighbour - kernel) < 0.1


def test_ledoit_wolf_shrinks_more_when_the_truth_is_isotropic(bench: ModuleType) -> None:
    rng = np.random.default_rng(0)
    p = 20
    isotropic = rng.standard_normal((400, p))
    anisotropic = isotropic * np.geomspace(10.0, 0.1, p)
    _, _, s_iso = bench.ledoit_wolf(isotropic)
    _, _, s_aniso = bench.ledoit_wolf(anisotropic)
    assert s_iso > 0.5 and s_aniso < 0.05
    # fewer samples than dimensions: the shrunk covariance is still positive definite
    mean, covariance, shrinkage = bench.ledoit_wolf(anisotropic[:10])
    assert mean.shape == (p,) and 0.0 < shrinkage <= 1.0
    assert np.linalg.eigvalsh(covariance).min() > 0


def test_diagonal_shrinkage_keeps_variances_and_shrinks_spurious_correlation(
    bench: ModuleType,
) -> None:
    rng = np.random.default_rng(1)
    p = 20
    scales = np.geomspace(10.0, 0.1, p)
    independent = rng.standard_normal((60, p)) * scales  # true covariance diagonal
    _, covariance, shrinkage = bench.diagonal_shrinkage(independent)
    np.testing.assert_allclose(np.diag(covariance), independent.var(axis=0, ddof=1))
    assert shrinkage > 0.5
    # strongly correlated data (one common factor): little shrinkage
    factor = rng.standard_normal((60, 1))
    correlated = (factor + 0.1 * rng.standard_normal((60, p))) * scales
    _, _, small = bench.diagonal_shrinkage(correlated)
    assert small < 0.1


def test_script_prints_the_table_for_a_tiny_run(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train = {"problem": "darcy2d", "n_conditions": 6, "per_condition": 12, "seed": 0}
    options = {"problem_options": {"n_cells": N_CELLS}, "chunk_conditions": 6}
    recipe = Recipe.from_dict(
        {
            "name": "darcy-baseline-tiny",
            "data": {"train": {**train, **options}, "normalisation_degree": 1},
            "model": {"backbone": {"name": "mlp"}, "process": {"name": "vp"}},
            "evaluation": {"conditions": [[0.2, 1.0]], "n_samples": 16, "seed": 5},
        }
    )
    run = tmp_path / "run"
    save_yaml(recipe, run / "recipe.yaml")
    pipeline.simulate(recipe.data.train, run / "data" / "train.h5", progress=False)
    # a stand-in model report: any sampler evaluated the way the pipeline does
    problem = DarcyProblem(n_cells=N_CELLS)
    model_results = evaluate_conditions(
        lambda condition, n, seed: problem.simulate(np.atleast_2d(condition), n, [seed + 1])[
            "fields"
        ],
        problem,
        [[0.2, 1.0]],
        out_dir=tmp_path,
        targets=targets_from_config("quick-2d"),
        n_samples=16,
        seed=5,
        labels=["fixed"],
        log=None,
        figures=False,
    )
    report = {"metadata": {"n_samples": 16}, "results": model_results}
    (run / "evaluation").mkdir()
    (run / "evaluation" / "report.json").write_text(json.dumps(report))
    out = tmp_path / "baselines.json"
    conv = ["--conv-steps", "20", "--conv-width", "4", "--conv-batch", "8"]  # a tiny two-stage
    document = bench.main([str(run), "--k", "2", "--components", "16", *conv, "--out", str(out)])
    printed = capsys.readouterr().out
    assert "simulator floors identical to the report's" in printed
    samplers = (
        "model",
        "gaussian",
        "nearest",
        "latent+solver",
        "gaussian+conv",
        "simulator (floor)",
    )
    for label in (f"| {name} |" for name in samplers):
        assert printed.count(label) == 2  # one row per channel
    saved = json.loads(out.read_text())
    assert saved["gaussian"]["k"] == 2 and saved["floors_match_report"] is True
    assert set(saved["results"]) == {"gaussian", "nearest", "latent+solver", "gaussian+conv"}
    assert saved["latent_solver"]["components"] == N_CELLS * N_CELLS
    assert saved["gaussian_conv"]["steps"] == 20
    assert document["results"]["gaussian"][0]["condition"] == {"l": 0.2, "sigma": 1.0}
    assert out.with_suffix(".md").read_text().startswith("| condition |")
