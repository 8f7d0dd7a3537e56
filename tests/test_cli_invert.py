"""``scorepde invert train | sample | misspecify`` through typer's CliRunner on a tiny
linear-Gaussian recipe (400 pairs, a 16-wide MLP, 3 epochs, 10 sampler steps): files written,
summaries printed, and one-line refusals (exit code 2, no traceback) for bad input. Also the
inverse recipe schema: shipped recipes round-trip, unknown keys are named.

One tiny model is trained once per module and shared by the other tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from helpers import WIDE, assert_refused, tiny_inverse_recipe
from scorepde.cli import app
from scorepde.configuration import ConfigError
from scorepde.inverse.recipes import (
    InverseRecipe,
    find_recipe,
    list_inverse_recipes,
    load_inverse_recipe,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "tiny-inverse.yaml"
    path.write_text(yaml.safe_dump(tiny_inverse_recipe(), sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, recipe_file: Path) -> Path:
    out = tmp_path_factory.mktemp("invert") / "run"
    result = runner.invoke(app, ["invert", "train", str(recipe_file), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "trained 3 epochs on 360 pairs" in result.output
    assert "calibration " in result.output and "max KS" in result.output
    return out


@pytest.fixture()
def observation(tmp_path: Path) -> Path:
    path = tmp_path / "y.npy"
    np.save(path, np.array([0.3, -0.2]))
    return path


# ----------------------------------------------------------------------------- recipes


@pytest.mark.parametrize("name", list_inverse_recipes())
def test_shipped_inverse_recipes_round_trip(tmp_path: Path, name: str) -> None:
    recipe = load_inverse_recipe(name)
    assert recipe.name == name
    problem = recipe.build_problem()
    options = recipe.model_config(problem).backbone.options
    if "data_dim" in options:  # MLP; the U-Net recipes (elasticity) size by channels
        assert options["data_dim"] == int(np.prod(problem.x_shape))
    assert recipe.train_config().num_threads == 1
    assert InverseRecipe.from_dict(recipe.to_dict()) == recipe
    recipe.save(tmp_path / "r.yaml")
    assert load_inverse_recipe(tmp_path / "r.yaml") == recipe


def test_linear_gaussian_recipes_are_shipped() -> None:
    names = list_inverse_recipes()
    assert {"inverse-linear-gaussian-2d", "inverse-linear-gaussian-20d"} <= set(names)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochz": 1}, "epochz"),
        ({"training": {"epochz": 1}}, "epochz"),
        ({"calibration": {"n_observationz": 1}}, "n_observationz"),
        ({"problem": {"name": "linear_gaussian", "options": {"dim": 2}}}, "dim"),
        ({"problem": {"name": "heat"}}, "'heat' is not a known inverse problem"),
        ({"noise": {"name": "poisson"}}, "poisson"),
        ({"sampling": {"sampler": "dpm"}}, "sampling.sampler = 'dpm'"),
        ({"model": {"backbone": {"name": "mlp"}, "procezz": {}}}, "procezz"),
    ],
)
def test_bad_recipes_are_refused_naming_the_key(change: dict[str, Any], message: str) -> None:
    data = {**tiny_inverse_recipe(), **change}
    with pytest.raises(ConfigError, match=message):
        InverseRecipe.from_dict(data).build_problem()


# ----------------------------------------------------------------------------- train


def test_train_writes_model_recipe_and_calibration(trained: Path) -> None:
    for name in ("model.yaml", "model.safetensors", "recipe.yaml"):
        assert (trained / "model" / name).is_file(), name
    assert (trained / "recipe.yaml").is_file()
    assert find_recipe(trained / "model").name == "tiny-inverse"
    record = json.loads((trained / "calibration" / "calibration.json").read_text())
    assert record["calibration"]["n_observations"] == 20
    assert record["calibration"]["n_samples"] == 9
    assert record["recipe"] == "tiny-inverse" and "git_revision" in str(record["provenance"])
    assert (trained / "calibration" / "calibration.png").stat().st_size > 1000
    assert (
        "Simulation-based calibration" in (trained / "calibration" / "calibration.md").read_text()
    )


def test_train_again_resumes(trained: Path, recipe_file: Path) -> None:
    history = (trained / "training" / "history.csv").read_text()
    result = runner.invoke(app, ["invert", "train", str(recipe_file), "--out", str(trained), "-q"])
    assert result.exit_code == 0, result.output
    assert (trained / "training" / "history.csv").read_text() == history


def test_train_refuses_unknown_recipe(tmp_path: Path) -> None:
    result = runner.invoke(app, ["invert", "train", "no-such", "--out", str(tmp_path)], env=WIDE)
    assert_refused(result, "unknown inverse recipe 'no-such'")
    assert "inverse-linear-gaussian-2d" in result.output
    assert not (tmp_path / "model").exists()


def test_train_refuses_bad_seed_and_epochs(recipe_file: Path, tmp_path: Path) -> None:
    base = ["invert", "train", str(recipe_file), "--out", str(tmp_path)]
    assert_refused(runner.invoke(app, [*base, "--seed", "-1"], env=WIDE), "-1 is not allowed")
    assert_refused(
        runner.invoke(app, [*base, "--epochs", "0"], env=WIDE), "expected an integer >= 1"
    )


# ----------------------------------------------------------------------------- sample


def test_sample_writes_npy_summary_and_plot(trained: Path, observation: Path, tmp_path: Path):
    out = tmp_path / "post.npy"
    truth = tmp_path / "truth.npy"
    np.save(truth, np.zeros(3))
    args = ["invert", "sample", str(trained / "model"), "--observation", str(observation)]
    args += ["-n", "50", "--seed", "4", "--out", str(out), "--truth", str(truth), "--plot"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    samples = np.load(out)
    assert samples.shape == (50, 3) and np.all(np.isfinite(samples))
    assert "50 posterior samples (50, 3) (euler_maruyama)" in result.output
    assert "component" in result.output and "p97.5" in result.output and "truth" in result.output
    assert out.with_suffix(".png").is_file()
    # the run folder works too, and the same seed gives the same samples
    again = tmp_path / "again.npy"
    args[2] = str(trained)
    result = runner.invoke(app, [*args[:-5], "--out", str(again)])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(again), samples)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["-n", "0"], "0 is not allowed; expected an integer >= 1"),
        (["--steps", "0"], "0 is not allowed"),
        (["--sampler", "dpm"], "'dpm' is not a sampler"),
        (["--out", "x.txt"], "has suffix '.txt'; expected one of ['.npy']"),
        (["--seed", "-3"], "-3 is not allowed"),
    ],
)
def test_sample_refuses_bad_options(
    trained: Path, observation: Path, extra: list[str], message: str
) -> None:
    args = ["invert", "sample", str(trained), "--observation", str(observation), *extra]
    assert_refused(runner.invoke(app, args, env=WIDE), message)


def test_sample_refuses_bad_observation_and_checkpoint(trained: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros(5))
    base = ["invert", "sample", str(trained), "--observation"]
    assert_refused(
        runner.invoke(app, [*base, str(wrong)], env=WIDE),
        "holds an array of shape (5,); expected one observation of shape (2,)",
    )
    assert_refused(
        runner.invoke(app, [*base, str(tmp_path / "none.npy")], env=WIDE), "does not exist"
    )
    assert_refused(runner.invoke(app, [*base, str(tmp_path / "y.csv")], env=WIDE), "suffix '.csv'")
    text = tmp_path / "text.npy"
    text.write_text("not numpy")
    assert_refused(runner.invoke(app, [*base, str(text)], env=WIDE), "not a readable .npy file")
    np.save(tmp_path / "y.npy", np.zeros(2))
    result = runner.invoke(
        app,
        ["invert", "sample", str(tmp_path), "--observation", str(tmp_path / "y.npy")],
        env=WIDE,
    )
    assert result.exit_code == 2 and "CHECKPOINT" in result.output, result.output


# ----------------------------------------------------------------------------- misspecify


def test_misspecify_prints_and_writes_the_table(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "table.md"
    args = ["invert", "misspecify", str(trained / "model"), "--factor", "1", "--factor", "4"]
    args += ["--n-observations", "10", "--n-samples", "5", "--out", str(out)]
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 0, result.output
    assert "| additive_gaussian(std=0.25) | 1 |" in result.output
    assert "| additive_gaussian(std=1) | 4 |" in result.output
    assert out.read_text().startswith("trained with additive_gaussian(std=0.25)")
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert [row["level_ratio"] for row in rows] == [1.0, 4.0]
    bad = runner.invoke(app, [*args[:3], "--factor", "-1"], env=WIDE)
    assert_refused(bad, "-1.0 is not allowed; expected a number > 0")


# ----------------------------------------------------------------------------- battery (fields)


def test_battery_recipe_trains_and_samples_porosity_fields(tmp_path: Path) -> None:
    """A field problem: the model works on whitened GP modes, ``invert sample`` writes porosity
    fields ``(n, 1, 100)`` and plots their band; ``n_observations: 0`` skips the calibration."""
    data = tiny_inverse_recipe()
    data.update(
        name="tiny-battery",
        problem={"name": "battery_porosity", "options": {"observation": "sensors", "sensors": 3}},
        model=None,
        training={"epochs": 2, "batch_size": 128, "device": "cpu", "compile": "off"},
        calibration={"n_observations": 0},
    )
    recipe = tmp_path / "battery.yaml"
    recipe.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    out = tmp_path / "run"
    result = runner.invoke(app, ["invert", "train", str(recipe), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "calibration" not in result.output and not (out / "calibration").exists()
    problem = load_inverse_recipe(recipe).build_problem()
    clean = problem.forward(problem.sample_prior(1, np.random.default_rng(0)))
    np.save(tmp_path / "y.npy", clean[0])
    samples = tmp_path / "porosity.npy"
    args = ["invert", "sample", str(out), "--observation", str(tmp_path / "y.npy"), "-n", "20"]
    result = runner.invoke(app, [*args, "--out", str(samples), "--plot"])
    assert result.exit_code == 0, result.output
    porosity = np.load(samples)
    assert porosity.shape == (20, 1, 100)
    assert np.all((porosity > 0) & (porosity < 1))
    assert samples.with_suffix(".png").is_file()
