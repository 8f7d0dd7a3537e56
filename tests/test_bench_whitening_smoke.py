"""``benchmarks/bench_whitening.py`` on a tiny conditionally whitened Darcy model (8 x 8 cells,
16 subspace coefficients, one epoch): both tables print with a row per fit and per sampler."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import load_benchmark
from scorepde import pipeline
from scorepde.recipes import Recipe

#: 16 directions of 8 x 8 fields keep ~92 % of the energy; the truncation warning is expected.
pytestmark = pytest.mark.filterwarnings("ignore:SubspaceNormaliser:UserWarning")


def _recipe(whiten: str | bool) -> Recipe:
    train = {"problem": "darcy2d", "n_conditions": 12, "per_condition": 6, "seed": 0}
    options = {"problem_options": {"n_cells": 8}, "chunk_conditions": 12}
    return Recipe.from_dict(
        {
            "name": "whitening-tiny",
            "data": {
                "train": {**train, **options},
                "normalisation_degree": 1,
                "subspace_components": 16,
                "subspace_whiten": whiten,
                "subspace_whiten_degree": 1,
                "subspace_whiten_fit": "log_variance",
            },
            "model": {"backbone": {"name": "mlp", "options": {"hidden": 16, "depth": 1}}},
            "training": {"epochs": 1, "batch_size": 32, "num_threads": 1},
        }
    )


def _run(tmp_path: Path, whiten: str | bool) -> Path:
    recipe = pipeline.complete_recipe(_recipe(whiten))
    run = tmp_path / str(whiten)
    data = pipeline.simulate(recipe.data.train, run / "data" / "train.h5", progress=False)
    pipeline.train(recipe, data, run, progress=False, log=None)
    return run


def test_tables_for_a_tiny_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_benchmark("bench_whitening")
    run = _run(tmp_path, "conditional")
    model = pipeline.load_model(run / "model")
    assert model.normaliser.coefficient_normaliser.scale_fit == "log_variance"
    bench.main(
        [
            str(run),
            "--fits", "spread:1", "log_variance:1",
            "--conditions", "3", "--n", "12",
            "--at", "0.2,1.0",
            "--samplers", "ode_dpm2m:3", "euler_maruyama:4",
            "--n-model", "20",
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert "| spread | 1 |" in printed and "| log_variance | 1 |" in printed
    assert "| 0.2,1.0 | ode_dpm2m 3 |" in printed and "| 0.2,1.0 | euler_maruyama 4 |" in printed
    assert "| condition | eigenvalues < 1e-3 |" in printed


def test_refuses_a_model_without_conditional_whitening(tmp_path: Path) -> None:
    bench = load_benchmark("bench_whitening")
    run = _run(tmp_path, True)
    with pytest.raises(SystemExit, match="not a conditionally whitened subspace model"):
        bench.main([str(run), "--at"])
