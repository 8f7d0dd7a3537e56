"""The pretrained model shipped as package data: found, loaded, sampled in physical units.

Nothing here depends on which model is shipped (the lead may replace it): shapes, names and
units come from the problem, and the samples are compared with the simulator only loosely
(boundary values and the channel means within the simulator's spread).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import scorepde
from scorepde.cli import app
from scorepde.pretrained import PRETRAINED, PretrainedError, load_pretrained, pretrained_path
from scorepde.problems import get_problem

CONDITION = [0.0, 0.1, 25.0]  # U0 [V], l [L], F_right [A/m^2]


@pytest.fixture(scope="module")
def battery():
    return load_pretrained("battery")


def test_the_package_ships_each_registered_model() -> None:
    for name in PRETRAINED:
        folder = pretrained_path(name)
        for file in ("model.safetensors", "model.yaml", "normaliser.json", "RECORD.md"):
            assert (folder / file).is_file(), f"{name}: {file} missing"
        assert "Evaluation" in (folder / "RECORD.md").read_text(encoding="utf-8")
    assert scorepde.load_pretrained is load_pretrained


def test_unknown_name_lists_the_available_ones() -> None:
    with pytest.raises(PretrainedError, match=r"'heat' is not known; available: \['battery'\]"):
        load_pretrained("heat")


def test_battery_samples_have_the_problem_shape_and_physical_units(battery) -> None:
    problem = get_problem("battery")
    assert battery.problem_name == "battery"
    assert list(battery.channel_names) == list(problem.channels)
    assert list(battery.condition_names) == list(problem.condition_names)
    fields = battery.sample(CONDITION, 8, sampler="ode_dpm2m", steps=9, seed=0)
    assert fields.shape == (8, len(problem.channels), problem.n_points)
    assert np.all(np.isfinite(fields))
    reference = problem.simulate(np.asarray([CONDITION]), 200, [np.random.default_rng(0)])["fields"]
    # physical units: each channel's mean lies within the simulator's spread (mol/m^3 and V,
    # not normalised values), e.g. c ~ 1e3 mol/m^3 at the Dirichlet end
    for channel in range(fields.shape[1]):
        centre = reference[:, channel].mean()
        spread = reference[:, channel].std() + 1e-12
        assert abs(fields[:, channel].mean() - centre) < 3.0 * spread, problem.channels[channel]
    # same seed, same samples
    again = battery.sample(CONDITION, 8, sampler="ode_dpm2m", steps=9, seed=0)
    np.testing.assert_array_equal(fields, again)


def test_cli_sample_pretrained(tmp_path: Path) -> None:
    out = tmp_path / "fields.npy"
    args = ["sample", "--pretrained", "battery", "--U0", "0", "--l", "0.1", "--F-right", "25"]
    runner = CliRunner()
    result = runner.invoke(
        app, [*args, "-n", "4", "--sampler", "ode_dpm2m", "--steps", "5", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert np.load(out).shape == (4, 2, 100)
    unknown = runner.invoke(app, ["sample", "--pretrained", "heat", "--out", str(out)])
    assert unknown.exit_code == 2 and "available: ['battery']" in unknown.output
    both = runner.invoke(app, ["sample", str(tmp_path), "--pretrained", "battery"])
    assert both.exit_code == 2 and "exactly one of CHECKPOINT and --pretrained" in both.output
