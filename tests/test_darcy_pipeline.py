"""The 2-D proof end to end on a tiny grid: simulate, train a U-Net, sample, evaluate, CLI.

A new 2-D problem is one Problem subclass plus a recipe: nothing here is Darcy-specific
except the recipe's problem name and conditions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from scorepde import pipeline
from scorepde.cli import app
from scorepde.problems.darcy import DarcyProblem
from scorepde.recipes import Recipe, load_recipe

N_CELLS = 8


def tiny_darcy_recipe() -> dict[str, Any]:
    train = {"problem": "darcy2d", "n_conditions": 10, "per_condition": 4, "seed": 0}
    options = {"problem_options": {"n_cells": N_CELLS}, "chunk_conditions": 3}
    return {
        "name": "darcy-tiny",
        "data": {
            "train": {**train, **options},
            "test": {**train, **options, "split": "test", "n_conditions": 2},
            "validation_fraction": 0.2,
            "normalisation_degree": 1,
        },
        "model": {
            "backbone": {"name": "unet", "options": {"base_channels": 8, "channel_mults": [1, 2]}},
            "process": {"name": "vp", "t_min": 1.0e-5},
        },
        "training": {"epochs": 2, "batch_size": 8, "checkpoint_every": 1, "num_threads": 1},
        "sampling": {"sampler": "ode_dpm2m", "steps": 4, "batch_size": 50},
        "evaluation": {
            "conditions": [[0.2, 1.0]],
            "held_out": 1,
            "n_samples": 12,
            "targets": "quick-2d",
        },
    }


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("darcy") / "run"
    pipeline.run(Recipe.from_dict(tiny_darcy_recipe()), folder, progress=False, log=None)
    return folder


def test_run_trains_a_unet_on_two_dimensional_fields(run_dir: Path) -> None:
    model = pipeline.load_model(run_dir)
    assert model.sample_shape == (2, N_CELLS, N_CELLS)
    fields = model.sample([0.2, 1.0], 4, seed=0)
    assert fields.shape == (4, 2, N_CELLS, N_CELLS) and np.all(np.isfinite(fields))
    # the same per-sample noise whatever the batch (convolutions may round differently)
    again = model.sample([0.2, 1.0], 4, seed=0, batch_size=3)
    np.testing.assert_allclose(again, fields, rtol=1e-4, atol=1e-4 * np.abs(fields).max())


def test_report_judges_the_declared_quantities_on_the_2d_grid(run_dir: Path) -> None:
    report = json.loads((run_dir / "evaluation" / "report.json").read_text())
    results = report["results"]
    assert len(results) == 2  # one fixed, one held out
    for result in results:
        assert "log_k_eff" in result["comparison"]["derived"]
        assert result["comparison"]["residual"]["simulator_mean"] < 1e-8
        assert "invariance" not in result  # darcy2d declares none
    figures = sorted(p.name for p in (run_dir / "evaluation" / "figures").iterdir())
    assert any(name.startswith("fields_") for name in figures)
    assert any(name.startswith("transect_") for name in figures)
    markdown = (run_dir / "evaluation" / "report.md").read_text()
    assert "log_k_eff" in markdown


def test_cli_samples_and_simulates_2d_fields(run_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "f.npy"
    result = runner.invoke(
        app,
        ["sample", str(run_dir), "-c", "l=0.2", "-c", "sigma=1.0", "-n", "5", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert np.load(out).shape == (5, 2, N_CELLS, N_CELLS)
    data = tmp_path / "d.h5"
    result = runner.invoke(
        app,
        [
            "simulate",
            "darcy2d",
            "--conditions",
            "2",
            "--per-condition",
            "3",
            "--out",
            str(data),
            "--plot",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "d_fields.png").is_file() and (tmp_path / "d_band.png").is_file()


def test_the_shipped_darcy_recipe_fits_the_problem() -> None:
    recipe = pipeline.complete_recipe(load_recipe("darcy-quick"))
    assert recipe.data.train.problem == "darcy2d"
    assert recipe.evaluation.targets == "quick-2d"
    # the two-stage model: log_k from the untrained zero-output network (the whitened
    # Gaussian, on every one of the 32 x 32 directions), u from the solution map
    assert recipe.solution_map is not None
    assert recipe.training.epochs == 0
    assert recipe.model.backbone.options["zero_output"] is True
    assert recipe.data.subspace_components == 32 * 32
    assert pipeline.model_sample_shape(recipe, DarcyProblem()) == [1, 32 * 32]
    joint = pipeline.complete_recipe(load_recipe("darcy-joint-quick"))
    assert joint.solution_map is None


def test_the_exported_model_records_its_field_specification(run_dir: Path) -> None:
    model = pipeline.load_model(run_dir)
    assert model.field_spec is not None
    assert model.field_spec.axis_names == ("y", "x")
    assert model.field_spec.grid_shape == (N_CELLS, N_CELLS)
    assert model.conditioning_spec.vector_dim == 2
