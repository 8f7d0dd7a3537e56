"""Multi-fidelity recipes end to end: ``scorepde run mf-*`` on a tiny benchmark recipe (data,
baselines, DGMF and the network baselines, report, saved model), resume, refusals, and
``scorepde sample RUN --fidelity F``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from helpers import WIDE, assert_refused
from scorepde.cli import app
from scorepde.configuration import ConfigError
from scorepde.multifidelity.protocol import generate_data
from scorepde.multifidelity.recipes import (
    MFRecipe,
    is_mf_recipe,
    list_mf_recipes,
    load_mf_recipe,
)
from scorepde.multifidelity.run import DATA_FILE, RunError, load_data, save_data

runner = CliRunner()

TINY = {
    "name": "mf-tiny",
    "description": "a tiny Heat run for the tests",
    "multifidelity": {
        "kind": "benchmark",
        "benchmark": "heat",
        "n_train": 16,
        "n_test": 4,
        "budgets": [10, 8, 5, 3],
        "repeats": 2,
        "network_repeats": 1,
        "sweep": [3, 6],
        "sweep_baselines": ["linear"],
        "baselines": ["coarse_solver", "linear", "affine"],
        "methods": ["dgmf", "score_high", "unet_regression"],
        "samples_saved": 2,
        "continuous": {"extrapolate": 72, "hold_out": 32, "n_test": 2},
        "dgmf": {
            "epochs": 1,
            "steps_per_epoch": 2,
            "batch_size": 4,
            "base_channels": 4,
            "samples": 3,
            "steps": 2,
            "num_threads": 1,
        },
    },
}


def _write(path: Path, recipe: dict) -> Path:
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    folder = tmp_path_factory.mktemp("mf")
    recipe = _write(folder / "mf-tiny.yaml", TINY)
    out = folder / "run"
    result = runner.invoke(app, ["run", str(recipe), "--out", str(out)], env=WIDE)
    assert result.exit_code == 0, result.output
    return recipe, out, result.output


def test_shipped_recipes_load_and_check_their_network_options() -> None:
    from scorepde.configuration import from_dict
    from scorepde.multifidelity.battery import resolve_options
    from scorepde.multifidelity.dgmf import DGMFConfig

    names = list_mf_recipes()
    for expected in ("mf-poisson", "mf-heat", "mf-burgers", "mf-battery", "mf-battery-gpu"):
        assert expected in names
    for name in names:
        assert is_mf_recipe(name)
        recipe = load_mf_recipe(name)
        assert recipe.name == name
        if recipe.kind == "benchmark":
            config = recipe.benchmark_config()
            from_dict(DGMFConfig, dict(config.dgmf))
            assert config.network_repeats <= config.repeats
        else:
            resolve_options(recipe.options)  # the battery's options, checked
    assert not is_mf_recipe("battery-quick")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"benchmark": "navier"}, "benchmark is 'navier'"),
        ({"budgets": [10, 5]}, "budgets is [10, 5]"),
        ({"network_repeats": 3}, "network_repeats is 3"),
        ({"methods": ["dgmf", "magic"]}, "unknown entries ['magic']"),
        ({"sweep": [3, 600]}, "n_train is 16"),
        ({"colour": "red"}, "unknown key(s) ['colour']"),
        ({"kind": "quantum"}, "multifidelity.kind is 'quantum'"),
        ({"continuous": {"hold_out": 64}}, "continuous.hold_out is 64"),
        ({"continuous": {"extrapolate": 32}}, "continuous.extrapolate is 32"),
    ],
)
def test_bad_recipe_options_are_named(tmp_path: Path, change: dict, message: str) -> None:
    recipe = json.loads(json.dumps(TINY))
    recipe["multifidelity"].update(change)
    path = _write(tmp_path / "bad.yaml", recipe)
    with pytest.raises(ConfigError) as error:
        load_mf_recipe(path)
    assert message in str(error.value)


def test_unknown_recipe_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="mf-poisson"):
        load_mf_recipe("mf-nothing")


def test_run_writes_report_results_and_model(tiny_run: tuple[Path, Path, str]) -> None:
    _, out, _ = tiny_run
    for name in ("report.md", "results.json", "recipe.yaml", DATA_FILE, "samples.npz"):
        assert (out / name).is_file(), name
    assert (out / "model" / "multifidelity.json").is_file()
    results = json.loads((out / "results.json").read_text())
    assert set(results["baselines"]) == {"coarse_solver", "linear", "affine"}
    for row in results["baselines"].values():
        assert len(row["nrmse"]) == 2 and all(np.isfinite(row["nrmse"]))
    assert set(results["sweep"]["linear"]) == {"3", "6"}
    for method in ("dgmf", "score_high", "unet_regression"):
        row = results["methods"][method]["0"]
        assert np.isfinite(row["nrmse"]) and row["nrmse"] > 0
    assert "coverage" in results["methods"]["dgmf"]["0"]
    assert "coverage" not in results["methods"]["unet_regression"]["0"]
    for part, level in (("extrapolate", 72), ("hold_out", 32)):
        row = results["continuous"][part]
        assert row["level"] == level
        assert all(np.isfinite(v) and v > 0 for v in row["nrmse"].values())
    assert results["continuous"]["hold_out"]["trained"] == [8, 16, 64]
    report = (out / "report.md").read_text()
    assert "Continuous fidelity: level 72" in report
    assert "DGMF, all levels" in report and "58.0 %" in report  # the paper's Heat claim
    assert "(c) coarse solver" in report


def test_rerun_resumes_without_retraining(tiny_run: tuple[Path, Path, str]) -> None:
    recipe, out, first = tiny_run
    assert "training" in first
    again = runner.invoke(app, ["run", str(recipe), "--out", str(out)], env=WIDE)
    assert again.exit_code == 0, again.output
    assert "training" not in again.output and "reused" in again.output


def test_another_recipe_in_the_same_folder_is_refused(
    tiny_run: tuple[Path, Path, str], tmp_path: Path
) -> None:
    _, out, _ = tiny_run
    other = json.loads(json.dumps(TINY))
    other["multifidelity"]["seed"] = 7
    path = _write(tmp_path / "other.yaml", other)
    result = runner.invoke(app, ["run", str(path), "--out", str(out)], env=WIDE)
    assert_refused(result, "holds a run of another recipe")


def test_data_file_round_trip_and_corruption_is_reported(tmp_path: Path) -> None:
    from scorepde.multifidelity.benchmarks import get_benchmark

    benchmark = get_benchmark("heat")
    data = generate_data(benchmark, 4, 2, seed=3)
    key = {"benchmark": "heat", "n_train": 4, "n_test": 2, "design": "sobol", "seed": 3}
    path = tmp_path / DATA_FILE
    save_data(path, data, key, 1.5)
    back, seconds = load_data(path, benchmark, key)
    assert seconds == 1.5
    for f in benchmark.fidelities:
        np.testing.assert_array_equal(back.train_fields[f], data.train_fields[f])
    with pytest.raises(RunError, match="was made with"):
        load_data(path, benchmark, {**key, "seed": 4})
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(RunError, match="unreadable or incomplete"):
        load_data(path, benchmark, key)


def _sample(out: Path, target: Path, *extra: str) -> object:
    args = ["sample", str(out), "-c", "flux_left=0.5", "-c", "flux_right=-0.5", "-c", "alpha=0.05"]
    return runner.invoke(app, [*args, "-n", "3", "--out", str(target), *extra], env=WIDE)


def test_sample_at_a_fidelity_is_reproducible(
    tiny_run: tuple[Path, Path, str], tmp_path: Path
) -> None:
    _, out, _ = tiny_run
    first = _sample(out, tmp_path / "a.npy", "--fidelity", "64", "--seed", "4")
    assert first.exit_code == 0, first.output
    again = _sample(out / "model", tmp_path / "b.npy", "--fidelity", "64", "--seed", "4")
    assert again.exit_code == 0, again.output
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert a.shape == (3, 1, 64, 64)
    np.testing.assert_array_equal(a, b)
    coarse = _sample(out, tmp_path / "c.npy", "--fidelity", "8", "--seed", "4")
    assert coarse.exit_code == 0, coarse.output
    assert not np.allclose(np.load(tmp_path / "c.npy"), a)  # the label changes the output


def test_sample_refuses_bad_fidelity_and_conditions(
    tiny_run: tuple[Path, Path, str], tmp_path: Path
) -> None:
    _, out, _ = tiny_run
    assert_refused(
        _sample(out, tmp_path / "x.npy", "--fidelity", "48"),
        "fidelity is 48; this model has one label",
    )
    bad = runner.invoke(
        app,
        [
            "sample",
            str(out),
            "-c",
            "flux_left=5",
            "-c",
            "flux_right=-0.5",
            "-c",
            "alpha=0.05",
            "--out",
            str(tmp_path / "y.npy"),
        ],
        env=WIDE,
    )
    assert_refused(bad, "flux_left = 5.0 is outside the trained box")
    assert_refused(_sample(out, tmp_path / "z.h5"), "writes .npy files only")
    assert_refused(
        _sample(out, tmp_path / "w.npy", "--sampler", "euler_maruyama"), "its run's sampler"
    )


def test_saved_dgmf_model_round_trips(tiny_run: tuple[Path, Path, str]) -> None:
    from scorepde.multifidelity.dgmf import DGMFModel

    _, out, _ = tiny_run
    model = DGMFModel.load(out / "model")
    again = DGMFModel.load(out / "model")
    inputs = np.array([[0.3, -0.2, 0.04]])
    np.testing.assert_array_equal(
        model.sample(inputs, 64, 2, seed=1), again.sample(inputs, 64, 2, seed=1)
    )
    assert model.fidelities == (8, 16, 32, 64)
    assert set(model.standardisers) == {8, 16, 32, 64}


def test_mf_recipe_object_checks_kind() -> None:
    with pytest.raises(ConfigError, match="expected one of"):
        MFRecipe(name="x", multifidelity={"kind": "nope"})


def test_continuous_run_reuses_its_model_for_the_extrapolation(tmp_path: Path) -> None:
    recipe = json.loads(json.dumps(TINY))
    options = recipe["multifidelity"]
    options.update(
        baselines=["coarse_solver"],
        sweep=[],
        methods=["dgmf"],
        continuous={"extrapolate": 72, "hold_out": None, "n_test": 2},
    )
    options["dgmf"]["fidelity"] = "continuous"
    out = tmp_path / "run"
    result = runner.invoke(
        app, ["run", str(_write(tmp_path / "c.yaml", recipe)), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    trained = results["methods"]["dgmf"]["0"]["metadata"]["train_seconds"]
    assert results["continuous"]["extrapolate"]["train_seconds"] == pytest.approx(trained)
    assert "hold_out" not in results["continuous"]
    unseen = _sample(out, tmp_path / "u.npy", "--fidelity", "128", "--standardised")
    assert unseen.exit_code == 0, unseen.output
    assert np.load(tmp_path / "u.npy").shape == (3, 1, 64, 64)
    assert_refused(_sample(out, tmp_path / "v.npy", "--fidelity", "128"), "--standardised")
