"""``scorepde train | sample | evaluate | run`` through typer's CliRunner on a tiny recipe:
files written, summaries printed, and clear messages (no traceback) for bad input.

One tiny model is trained once per module with ``train`` and shared by the other commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from helpers import WIDE, assert_refused, tiny_recipe_dict
from scorepde.cli import app
from scorepde.recipes import list_recipes

runner = CliRunner()
SAMPLE_CONDITION = ["--U0", "0", "--l", "0.1", "--F-right", "25"]


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe_dict(), sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, recipe_file: Path) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    result = runner.invoke(app, ["train", str(recipe_file), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "trained 2 epochs" in result.output
    return out


# ----------------------------------------------------------------------------- train


def test_train_exports_the_model(trained: Path) -> None:
    for name in ("model.yaml", "model.safetensors", "normaliser.json"):
        assert (trained / "model" / name).is_file(), name
    assert (trained / "data" / "train.h5").is_file()
    assert len((trained / "training" / "history.csv").read_text().splitlines()) == 1 + 2


def test_train_again_resumes(trained: Path, recipe_file: Path) -> None:
    history = (trained / "training" / "history.csv").read_text()
    result = runner.invoke(app, ["train", str(recipe_file), "--out", str(trained), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "trained 2 epochs" in result.output
    assert (trained / "training" / "history.csv").read_text() == history


def test_train_unknown_recipe_lists_the_shipped_ones(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "no-such-recipe", "--out", str(tmp_path)], env=WIDE)
    assert_refused(result, "unknown recipe 'no-such-recipe'")
    for name in list_recipes():
        assert name in result.output
    assert not (tmp_path / "data").exists()


def test_train_recipe_with_unknown_key_names_it(tmp_path: Path) -> None:
    data = tiny_recipe_dict()
    data["training"]["epochz"] = 3
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = runner.invoke(app, ["train", str(path), "--out", str(tmp_path / "r")], env=WIDE)
    assert_refused(result, "epochz")


def test_train_missing_recipe_file(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.yaml"
    result = runner.invoke(app, ["train", str(missing), "--out", str(tmp_path / "r")], env=WIDE)
    assert_refused(result, "config file not found")


# ----------------------------------------------------------------------------- sample


def test_sample_writes_npy(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.npy"
    args = ["sample", str(trained), *SAMPLE_CONDITION, "-n", "5", "--steps", "3"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    fields = np.load(out)
    assert fields.shape == (5, 2, 100) and fields.dtype == np.float64
    assert np.all(np.isfinite(fields))
    assert "5 samples (5, 2, 100)" in result.output
    # the model folder works too, and the same seed gives the same fields
    again = tmp_path / "y.npy"
    args[1] = str(trained / "model")
    result = runner.invoke(app, [*args, "--out", str(again)])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(again), fields)


def test_sample_writes_hdf5_with_named_channels(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.h5"
    args = ["sample", str(trained), "-c", "U0=0", "-c", "l=0.1", "-c", "F_right=25", "-n", "4"]
    result = runner.invoke(app, [*args, "--steps", "3", "--seed", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with h5py.File(out, "r") as handle:
        samples = handle["samples"][()]
        assert samples.shape == (4, 2, 100)
        np.testing.assert_array_equal(handle["c"][()], samples[:, 0])
        np.testing.assert_array_equal(handle["phi"][()], samples[:, 1])
        np.testing.assert_array_equal(handle.attrs["conditions"], [0.0, 0.1, 25.0])
        assert handle.attrs["seed"] == 2 and handle.attrs["sampler"] == "euler_maruyama"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--U0", "0", "--l", "0.1"], "missing ['F_right']"),
        ([*SAMPLE_CONDITION, "-c", "T=300"], "unknown ['T']"),
        ([*SAMPLE_CONDITION[:4], "-c", "F_right"], "'F_right' is not NAME=VALUE"),
        ([*SAMPLE_CONDITION, "--sampler", "euler"], "'euler' is not a sampler"),
        ([*SAMPLE_CONDITION, "--out", "x.txt"], "expected a .npy, .h5 or .hdf5 file"),
        ([*SAMPLE_CONDITION, "-n", "0"], "0 is not allowed; expected an integer >= 1"),
        ([*SAMPLE_CONDITION, "--steps", "0"], "0 is not allowed"),
    ],
)
def test_sample_refuses_bad_input(
    trained: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = [] if "--out" in args else ["--out", str(tmp_path / "x.npy")]
    # a case's own -n comes after the default one and wins
    result = runner.invoke(app, ["sample", str(trained), "-n", "2", *args, *out], env=WIDE)
    assert_refused(result, message)
    assert list(tmp_path.iterdir()) == []


def test_sample_from_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = ["--out", str(tmp_path / "x.npy")]
    result = runner.invoke(app, ["sample", str(empty), *SAMPLE_CONDITION, *out], env=WIDE)
    assert_refused(result, "is not a model folder")
    result = runner.invoke(
        app, ["sample", str(tmp_path / "nowhere"), *SAMPLE_CONDITION, *out], env=WIDE
    )
    assert_refused(result, "is not a model folder")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.yaml").write_text("format: something-else\n", encoding="utf-8")
    result = runner.invoke(app, ["sample", str(broken), *SAMPLE_CONDITION, *out], env=WIDE)
    assert_refused(result, "expected 'scorepde.model/1'")
    assert not (tmp_path / "x.npy").exists()


# ----------------------------------------------------------------------------- evaluate, run


def test_evaluate_prints_the_table_and_writes_the_report(trained: Path) -> None:
    result = runner.invoke(app, ["evaluate", str(trained), "--n-samples", "10", "--steps", "3"])
    assert result.exit_code == 0, result.output
    assert "mean err (floor)" in result.output and "energy ratio joint" in result.output
    assert "conditions pass; report:" in result.output
    report = json.loads((trained / "evaluation" / "report.json").read_text(encoding="utf-8"))
    assert report["metadata"]["n_samples"] == 10 and report["metadata"]["steps"] == 3
    # default conditions; no test design in a train-only folder, so no held-out points
    assert [r["label"] for r in report["results"]] == ["fixed", "fixed"]
    assert all("invariance" in r for r in report["results"])
    assert (trained / "evaluation" / "report.md").is_file()


def test_evaluate_with_recipe_settings_and_own_out(
    trained: Path, recipe_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ev"
    args = ["evaluate", str(trained / "model"), "--recipe", str(recipe_file), "--out", str(out)]
    result = runner.invoke(app, [*args, "--n-samples", "10", "--steps", "2"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert len(report["results"]) == 1  # the recipe's one fixed condition
    assert report["metadata"]["steps"] == 2


def test_evaluate_refuses_bad_targets(trained: Path, tmp_path: Path) -> None:
    args = ["evaluate", str(trained), "--targets", "strict", "--out", str(tmp_path / "ev")]
    result = runner.invoke(app, [*args, "--n-samples", "4", "--steps", "2"], env=WIDE)
    assert_refused(result, "targets = 'strict' is not allowed")


def test_evaluate_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", str(tmp_path)], env=WIDE)
    assert_refused(result, "is not a model folder")


def test_run_whole_pipeline(recipe_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run2"
    result = runner.invoke(app, ["run", str(recipe_file), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"report: {out / 'evaluation' / 'report.md'}" in result.output
    for name in ("recipe.yaml", "data/test.h5", "model/model.yaml", "evaluation/report.json"):
        assert (out / name).is_file(), name
    report = json.loads((out / "evaluation" / "report.json").read_text(encoding="utf-8"))
    assert [r["label"] for r in report["results"]] == ["fixed", "held-out"]


def test_run_unknown_recipe(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "no-such-recipe", "--out", str(tmp_path / "r")], env=WIDE)
    assert_refused(result, "unknown recipe 'no-such-recipe'")
    assert not (tmp_path / "r").exists()


def test_sample_defaults_to_the_sampler_of_the_models_recipe(trained: Path, tmp_path: Path) -> None:
    """Without --sampler / --steps, ``sample`` uses what the model's recipe evaluated with (the
    tiny recipe: euler_maruyama, 5 steps); --steps alone overrides only the steps."""
    out = tmp_path / "s.npy"
    args = ["sample", str(trained), *SAMPLE_CONDITION, "-n", "3", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "(euler_maruyama, 5 steps)" in result.output
    result = runner.invoke(app, [*args, "--steps", "2"])
    assert "(euler_maruyama, 2 steps)" in result.output
    result = runner.invoke(app, [*args, "--sampler", "ode_dpm2m"])
    assert "(ode_dpm2m, 100 steps)" in result.output


def test_python_dash_m_runs_the_same_cli() -> None:
    """``python -m scorepde`` is the console script: same version line, same exit status for a
    bad command (2, typer's usage error)."""
    import subprocess
    import sys

    from scorepde import __version__

    ok = subprocess.run(
        [sys.executable, "-m", "scorepde", "--version"], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"scorepde {__version__}"
    bad = subprocess.run(
        [sys.executable, "-m", "scorepde", "no-such-command"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "no-such-command" in bad.stderr
