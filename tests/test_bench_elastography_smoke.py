"""Smoke test of benchmarks/bench_elastography_posterior.py: every part runs on a toy 8 x 8
inclusion model trained for one epoch here, writes its JSON, and the pay-off follows from the
recorded times."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from helpers import load_benchmark
from scorepde.inverse.recipes import InverseRecipe, load_inverse_recipe, train_from_recipe


@pytest.fixture(scope="module")
def toy_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = load_inverse_recipe("elasticity-inclusion").to_dict()
    data["name"] = "elasticity-toy"
    data["problem"]["options"]["n_cells"] = 8
    data["data"]["n_train"] = 40
    data["model"]["backbone"]["options"].update(base_channels=8, channel_mults=[1, 2])
    data["training"].update(epochs=1, batch_size=16, device="cpu", compile="off")
    data["calibration"]["n_observations"] = 0
    data["ensemble"] = {"members": 2, "workers": 1}  # the shipped default's kind, two members
    out = tmp_path_factory.mktemp("elast") / "run"
    return train_from_recipe(InverseRecipe.from_dict(data), out).model_dir


def test_every_part_runs_and_payoff_follows_from_times(
    toy_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_benchmark("bench_elastography_posterior")
    out = tmp_path / "out.json"
    argv = ["--model", str(toy_model), "--steps", "3", "--observations", "2"]
    argv += ["--posterior-samples", "8", "--chains", "2", "--draws", "20", "--burn", "40"]
    argv += ["--starts", "4", "--rmse-observations", "3", "--rmse-samples", "4"]
    argv += ["--calibration-observations", "4", "--calibration-samples", "3"]
    argv += ["--misspec-observations", "3", "--misspec-samples", "3", "--noise", "student_t"]
    argv += ["--misspec-reference", "1", "--timing-samples", "6", "--slow-timing-samples", "4"]
    argv += ["--ode-steps", "2", "--save-observation", str(tmp_path / "obs")]
    argv += ["--em-steps", "2", "--langevin-levels", "2", "--langevin-steps", "1"]
    argv += ["--training-seconds", "1000", "--json", str(out)]
    result = bench.main(argv)
    printed = capsys.readouterr().out
    for title in ("## a.", "## b.", "## c.", "## d.", "## e."):
        assert title in printed
    assert json.loads(out.read_text()).keys() == result.keys()
    assert len(result["reference"]) == 2
    assert [r["noise_level"] for r in result["rmse"]] == [0.025, 0.05, 0.1]
    # the linear-Gaussian baseline on the recipe's 40 training pairs, beside the model in b, c
    assert result["baseline"]["pairs"] == 40
    assert [r["noise_level"] for r in result["rmse_baseline"]] == [0.025, 0.05, 0.1]
    assert all(r["rmse"] > 0 and 0 <= r["coverage_90"] <= 1 for r in result["rmse_baseline"])
    assert result["calibration_baseline"]["size"] == "4 x 3"
    assert "linear-Gaussian" in printed
    rows = result["misspecification"]
    assert [r["level_ratio"] for r in rows] == [0.5, 1.0, 2.0, None]
    assert rows[-1]["observed_noise"].startswith("student_t")
    assert all(r["n_reference"] == 1 and 0 <= r["ref_cov95"] <= 1 for r in rows)
    timing = result["timing"]
    assert [r["sampler"] for r in timing["rows"]] == [
        "ode_dpm2m",
        "euler_maruyama",
        "annealed_langevin",
    ]
    for row in timing["rows"]:
        assert row["finite"] and row["samples"] == (6 if row["sampler"] == "ode_dpm2m" else 4)
        # the pay-off: training seconds over the seconds one observation saves (1000 samples)
        saved = timing["mcmc_seconds"] - row["seconds"] * 1000 / row["samples"]
        expected = math.ceil(1000 / saved) if saved > 0 else None
        assert row["payoff_observations"] == expected
    assert np.load(tmp_path / "obs" / "y.npy").shape == (2, 8, 8)
    assert np.load(tmp_path / "obs" / "truth.npy").shape == (1, 8, 8)


def test_sizes_are_checked() -> None:
    bench = load_benchmark("bench_elastography_posterior")
    with pytest.raises(SystemExit, match="--observations = 1"):
        bench.parse_args(["--model", "m", "--observations", "1"])
