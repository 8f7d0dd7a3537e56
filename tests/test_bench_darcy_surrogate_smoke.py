"""``benchmarks/bench_darcy_surrogate.py`` on a tiny Darcy run folder (8 x 8 cells): both maps
print a row per condition, the derived quantity is mostly defined, and more fitting steps bring the
mapped ``u`` closer to the true one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import load_benchmark
from scorepde import pipeline
from scorepde.configuration import save_yaml
from scorepde.recipes import Recipe


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Darcy run folder: recipe and training file (20 conditions x 10, 8 x 8 cells)."""
    train = {"problem": "darcy2d", "n_conditions": 20, "per_condition": 10, "seed": 0}
    options = {"problem_options": {"n_cells": 8}, "chunk_conditions": 20}
    recipe = Recipe.from_dict({"name": "surrogate-tiny", "data": {"train": {**train, **options}}})
    folder = tmp_path_factory.mktemp("surrogate") / "run"
    save_yaml(recipe, folder / "recipe.yaml")
    pipeline.simulate(recipe.data.train, folder / "data" / "train.h5", progress=False)
    return folder


def test_tiny_run(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_benchmark("bench_darcy_surrogate")
    common = [
        str(run),
        "--n",
        "50",
        "--hidden",
        "32",
        "--batch",
        "32",
        "--at",
        "0.2,1.0",
        "0.1,0.5",
    ]
    rows = bench.main([*common, "--steps", "400"])
    printed = capsys.readouterr().out
    for label in ("| 0.2,1.0 | linear |", "| 0.2,1.0 | linear+MLP |", "| 0.1,0.5 | linear+MLP |"):
        assert label in printed
    assert len(rows) == 4 and all(0.0 <= row["undefined"] < 0.5 for row in rows)
    untrained = bench.main([*common, "--steps", "0"])
    fitted = {(r["condition"], r["map"]): r["u_error"] for r in rows}
    for row in untrained:
        if row["map"] == "linear+MLP":
            # an untrained MLP adds noise to the linear fit; 400 steps remove most of it
            assert fitted[(row["condition"], "linear+MLP")] < row["u_error"]


def test_conv_map_runs(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The ``conv`` map (the package's solution map; its energy norm is tested in
    tests/test_solution_map.py) prints its rows on a tiny run."""
    bench = load_benchmark("bench_darcy_surrogate")
    arguments = ["--n", "50", "--steps", "0", "--conv-steps", "60", "--conv-width", "4"]
    rows = bench.main([str(run), *arguments, "--conv-batch", "16", "--at", "0.2,1.0"])
    assert "| 0.2,1.0 | conv |" in capsys.readouterr().out
    (conv,) = [row for row in rows if row["map"] == "conv"]
    assert 0.0 <= conv["undefined"] < 0.5 and np.isfinite(conv["u_error"])
