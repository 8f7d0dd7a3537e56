"""``scorepde invert sample --arviz PATH.nc``: the samples and the observation as ArviZ
InferenceData beside the .npy (a tiny battery sensors recipe: 200 pairs, 1 epoch, 5 sampler
steps; the numbers are not checked for accuracy, only that the file holds the .npy's samples,
the observation and the field's grid, and that ``arviz.summary`` reads it)."""

from __future__ import annotations

from pathlib import Path

import arviz as az
import numpy as np
import yaml
from typer.testing import CliRunner

from helpers import assert_refused
from scorepde.cli import app
from scorepde.inverse import read_netcdf
from scorepde.inverse.recipes import load_inverse_recipe
from test_cli_invert import tiny_inverse_recipe

runner = CliRunner()


def test_sample_writes_inference_data(tmp_path: Path) -> None:
    data = tiny_inverse_recipe()
    data.update(
        name="tiny-battery-arviz",
        problem={"name": "battery_porosity", "options": {"observation": "sensors", "sensors": 3}},
        data={"n_train": 200, "validation_fraction": 0.1},
        model=None,
        training={"epochs": 1, "batch_size": 128, "device": "cpu", "compile": "off"},
        sampling={"sampler": "euler_maruyama", "steps": 5, "batch_size": 500},
        calibration={"n_observations": 0},
    )
    recipe = tmp_path / "battery.yaml"
    recipe.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    out = tmp_path / "run"
    result = runner.invoke(app, ["invert", "train", str(recipe), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    problem = load_inverse_recipe(recipe).build_problem()
    y = problem.forward(problem.sample_prior(1, np.random.default_rng(0)))[0]
    np.save(tmp_path / "y.npy", y)
    samples, netcdf = tmp_path / "porosity.npy", tmp_path / "porosity.nc"
    args = ["invert", "sample", str(out), "--observation", str(tmp_path / "y.npy"), "-n", "8"]
    result = runner.invoke(app, [*args, "--out", str(samples), "--arviz", str(netcdf)])
    assert result.exit_code == 0, result.output
    assert f"InferenceData: {netcdf}" in result.output
    back = read_netcdf(netcdf)
    np.testing.assert_array_equal(back.posterior["x"].values[0], np.load(samples))
    assert back.posterior["x"].dims == ("chain", "draw", "channel", "position")
    np.testing.assert_array_equal(back.posterior["position"].values, problem.grid)
    assert list(back.posterior["channel"].values) == ["porosity"]
    np.testing.assert_array_equal(back.observed_data["y"].values, y)
    assert back.posterior.attrs["sampler"] == "euler_maruyama"
    assert back.posterior.attrs["steps"] == 5
    assert len(az.summary(back, kind="stats")) == 100  # one row per grid node
    # a wrong suffix is refused before any work
    result = runner.invoke(app, [*args, "--arviz", str(tmp_path / "p.h5")])
    assert_refused(result, "expected one of ['.nc']")
