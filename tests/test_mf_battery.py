"""The multi-fidelity battery experiment (scorepde.multifidelity.battery): interpolation to the
fine grid, the whole run on tiny options, resume, option errors, loading and sampling."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from scorepde.multifidelity.battery import (
    DEFAULT_OPTIONS,
    MODEL_NAMES,
    interpolate_to_grid,
    interpolation_matrix,
    load_battery_mf,
    resolve_options,
    run_battery_mf,
)
from scorepde.physics.parameters import BatteryParameters

RECIPE = (
    Path(__file__).resolve().parents[1]
    / "src"
    / "scorepde"
    / "configs"
    / "multifidelity"
    / "mf-battery.yaml"
)

#: mf-battery-smoke: the recipe's shape at a size that runs in a few seconds.
SMOKE: dict[str, Any] = {
    "fidelities": [13, 25, 100],
    "n_conditions": 30,
    "per_condition": 8,
    "fine_fraction": 0.5,
    "normalisation_degree": 1,
    "subspace_components": 16,
    "hidden": 32,
    "depth": 1,
    "epochs": 2,
    "samples_per_epoch": 256,
    "batch_size": 64,
    "steps": 4,
    "evaluation_conditions": [[0.0, 0.1, 25.0]],
    "drawn_conditions": 1,
    "n_samples": 40,
}


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    out = tmp_path_factory.mktemp("mf-battery-smoke")
    lines: list[str] = []
    report = run_battery_mf(SMOKE, out, name="mf-battery-smoke", progress=False, log=lines.append)
    return out, report, lines


def test_linear_interpolation_is_exact_for_a_linear_profile() -> None:
    fine = BatteryParameters(n_points=100).grid()
    for n in (13, 25, 50):
        coarse = BatteryParameters(n_points=n).grid()
        linear = np.stack([3.0 - 2.0e4 * coarse, 0.5 + 1.0e3 * coarse])[None]  # (1, 2, n)
        out = interpolate_to_grid(linear, coarse, fine)
        expected = np.stack([3.0 - 2.0e4 * fine, 0.5 + 1.0e3 * fine])
        assert out.shape == (1, 2, 100)
        np.testing.assert_allclose(out[0], expected, rtol=0, atol=1e-12)
        np.testing.assert_allclose(interpolation_matrix(coarse, fine).sum(axis=1), 1.0, atol=1e-14)
        # a curved profile is not reproduced: its error is of order h^2 / 8 times the curvature
        curved = (coarse / coarse[-1]) ** 2
        error = np.abs(
            interpolate_to_grid(curved[None, None], coarse, fine)[0, 0] - (fine / fine[-1]) ** 2
        ).max()
        h = 1.0 / (n - 1)
        assert 0.1 * h**2 / 4 < error <= h**2 / 4 + 1e-15


def test_run_writes_report_and_results_with_three_models_and_the_floor(
    smoke_run: tuple[Path, Path, list[str]],
) -> None:
    out, report, _ = smoke_run
    assert report == out / "report.md" and report.is_file()
    text = report.read_text()
    assert "floor" in text and "multi-fidelity" in text
    results = json.loads((out / "results.json").read_text())
    evaluation = results["evaluation"]
    assert set(evaluation["models"]) == set(MODEL_NAMES)
    n_conditions = len(evaluation["conditions"])
    assert n_conditions == 2  # one given, one drawn
    for part in [*evaluation["models"].values(), evaluation["floor"]]:
        assert len(part["conditions"]) == n_conditions
        for row in part["conditions"]:
            for measure in ("mean_error", "std_error", "coverage"):
                assert len(row[measure]) == 2 and all(math.isfinite(v) for v in row[measure])
    assert set(evaluation["coarse_labels"]) == {"multifidelity@13", "multifidelity@25"}
    for model in [*evaluation["models"].values(), *evaluation["coarse_labels"].values()]:
        assert all(math.isfinite(r["energy_ratio"]) for r in model["conditions"])
    # the floor is two simulator sets of one law: coverage near the nominal 95 %
    floor_coverage = np.array([r["coverage"] for r in evaluation["floor"]["conditions"]])
    assert np.all(np.abs(floor_coverage - 0.95) < 0.1)
    assert set(results["data"]) == {"13", "25", "100"}
    assert all(r["seconds_per_solution"] > 0 for r in results["data"].values())
    cost = results["training_set_cost"]
    assert cost["fine_100"]["relative_to_all_fine"] == pytest.approx(1.0)
    assert cost["fine_10"]["relative_to_all_fine"] == pytest.approx(0.5)
    # the multi-fidelity model trained on both coarse levels and the fine half
    description = json.loads((out / "model" / "multifidelity.json").read_text())
    assert description["kind"] == "battery"
    assert description["fidelities"] == [13, 25, 100]
    assert description["training_fields"] == [240, 240, 120]
    baseline = json.loads((out / "baselines" / "fine_10" / "multifidelity.json").read_text())
    assert baseline["fidelities"] == [100] and baseline["training_fields"] == [120]


def test_resume_reuses_data_and_trained_models(smoke_run: tuple[Path, Path, list[str]]) -> None:
    out, _, _ = smoke_run
    weights = [out / "model" / "model.safetensors"] + [
        out / "baselines" / name / "model.safetensors" for name in ("fine_10", "fine_100")
    ]
    before = [p.stat().st_mtime_ns for p in weights]
    lines: list[str] = []
    run_battery_mf(SMOKE, out, name="mf-battery-smoke", progress=False, log=lines.append)
    assert [p.stat().st_mtime_ns for p in weights] == before
    assert sum("reusing trained model" in line for line in lines) == 3
    assert not any(line.startswith("training ") for line in lines)
    assert sum(line.startswith("reusing ") and ".npz" in line for line in lines) == 3


def test_resume_retrains_only_what_changed_options_touch(
    smoke_run: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    out, _, _ = smoke_run
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    lines: list[str] = []
    changed = {**SMOKE, "n_samples": 30, "normaliser_data": "fine"}
    run_battery_mf(changed, copy, name="changed", progress=False, log=lines.append)
    assert sum("reusing trained model" in line for line in lines) == 0
    assert sum(line.startswith("training ") for line in lines) == 3
    assert sum(".npz" in line and line.startswith("reusing ") for line in lines) == 3
    results = json.loads((copy / "results.json").read_text())
    assert results["options"]["n_samples"] == 30


@pytest.mark.parametrize(
    ("options", "names"),
    [
        ({"fidelity": [13, 100]}, ["fidelity", "allowed"]),
        ({"fidelities": [100, 13]}, ["fidelities", "[100, 13]", "increasing"]),
        ({"fine_fraction": 1.5}, ["fine_fraction", "1.5", "(0, 1)"]),
        ({"fine_fraction": 0.001}, ["fine_fraction", "0.001"]),
        ({"sampler": "nope"}, ["sampler", "'nope'", "ode_dpm2m"]),
        ({"epochs": 0}, ["epochs", "0", ">= 1"]),
        ({"level_weights": "equal"}, ["level_weights", "'equal'", "balanced"]),
        ({"normaliser_data": "coarse"}, ["normaliser_data", "'coarse'", "'all'"]),
        ({"evaluation_conditions": [[0.0, 0.1]]}, ["evaluation_conditions", "U0, l, F_right"]),
        ({"subspace_components": 500}, ["subspace_components", "500"]),
    ],
)
def test_bad_options_are_named(options: dict[str, Any], names: list[str]) -> None:
    with pytest.raises(ValueError) as error:
        resolve_options(options)
    for name in names:
        assert name in str(error.value)


def test_recipe_options_are_valid_and_are_the_defaults() -> None:
    recipe = yaml.safe_load(RECIPE.read_text())
    assert recipe["name"] == "mf-battery" and recipe["description"]
    options = dict(recipe["multifidelity"])
    assert options.pop("kind") == "battery"
    assert resolve_options(options) == resolve_options({})
    assert set(options) == set(DEFAULT_OPTIONS)


def test_load_and_sample_shape_reproducibility_and_fidelity(
    smoke_run: tuple[Path, Path, list[str]],
) -> None:
    out, _, _ = smoke_run
    model = load_battery_mf(out)  # the run folder -> its model/
    assert model.fidelities == (13, 25, 100)
    assert model.condition_names == ("U0", "l", "F_right")
    a = model.sample([0.0, 0.2, 10.0], 6, 100, seed=3)
    b = model.sample([0.0, 0.2, 10.0], 6, 100, seed=3)
    c = model.sample([0.0, 0.2, 10.0], 6, 100, seed=4)
    assert a.shape == (6, 2, 100) and np.all(np.isfinite(a))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    coarse = model.sample([0.0, 0.2, 10.0], 6, 13, seed=3)
    assert coarse.shape == (6, 2, 100) and not np.array_equal(coarse, a)  # label is read
    assert model.sample([0.0, 0.2, 10.0], 2, 25, sampler="euler_maruyama", steps=3).shape == (
        2,
        2,
        100,
    )
    with pytest.raises(ValueError, match=r"fidelity = 50 .*\[13, 25, 100\]"):
        model.sample([0.0, 0.2, 10.0], 2, 50)
    baseline = load_battery_mf(out / "baselines" / "fine_100")
    assert baseline.fidelities == (100,)
    with pytest.raises(ValueError, match=r"fidelity = 13 .*\[100\]"):
        baseline.sample([0.0, 0.2, 10.0], 2, 13)
    with pytest.raises(FileNotFoundError, match=r"multifidelity\.json"):
        load_battery_mf(out / "data")


def test_cli_runs_the_battery_recipe_and_samples_a_level(tmp_path: Path) -> None:
    """``scorepde run RECIPE.yaml`` dispatches a ``kind: battery`` recipe to run_battery_mf, and
    ``scorepde sample RUN --fidelity N`` reads its model."""
    from typer.testing import CliRunner

    from helpers import WIDE, assert_refused
    from scorepde.cli import app

    recipe = tmp_path / "mf-battery-smoke.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {"name": "mf-battery-smoke", "multifidelity": {"kind": "battery", **SMOKE}},
            sort_keys=False,
        )
    )
    out = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(recipe), "--out", str(out), "--quiet"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert (out / "report.md").is_file() and (out / "model" / "multifidelity.json").is_file()
    args = ["sample", str(out), "-c", "U0=0", "-c", "l=0.1", "-c", "F_right=25", "-n", "5"]
    fine = runner.invoke(app, [*args, "--fidelity", "100", "--out", str(tmp_path / "a.npy")])
    assert fine.exit_code == 0, fine.output
    coarse = runner.invoke(app, [*args, "--fidelity", "13", "--out", str(tmp_path / "b.npy")])
    assert coarse.exit_code == 0, coarse.output
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.shape == b.shape == (5, 2, 100)
    assert not np.array_equal(a, b)  # the label enters the network (barely, after 8 steps)
    missing = runner.invoke(
        app, [*args, "--fidelity", "50", "--out", str(tmp_path / "c.npy")], env=WIDE
    )
    assert_refused(missing, "fidelity = 50 was not trained")
