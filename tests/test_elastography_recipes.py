"""The elastography inverse recipes: the shipped YAML files load with the displacement as field
conditions, and ``scorepde invert train`` / ``invert sample`` run end to end on a toy-size copy
(8 x 8 cells, 48 pairs, one epoch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from scorepde.cli import app
from scorepde.configuration import ConfigError
from scorepde.inverse.plots import plot_field_posterior
from scorepde.inverse.recipes import InverseRecipe, load_inverse_recipe

runner = CliRunner()


@pytest.mark.parametrize("name", ["elasticity-inclusion", "elasticity-grf"])
def test_shipped_recipe_is_a_field_conditioned_ensemble(name: str) -> None:
    recipe = load_inverse_recipe(name)
    assert recipe.y_as == "fields_residual" and recipe.ensemble.members == 4
    problem = recipe.build_problem()
    assert problem.x_shape == (1, 32, 32) and problem.y_shape == (2, 32, 32)
    options = recipe.model_config(problem).backbone.options
    assert options["dims"] == 2 and options["cond_channels"] == 3
    assert recipe.train_config().batch_size == 64 and recipe.train_config().num_threads == 1


def test_y_as_is_checked() -> None:
    with pytest.raises(ConfigError, match="y_as = 'matrix'"):
        InverseRecipe(y_as="matrix")
    assert InverseRecipe().y_as == "vector"


def toy_recipe(tmp_path: Path) -> Path:
    """The shipped inclusion recipe at toy size, its ensemble cut to two members trained in
    worker processes (the shipped path)."""
    recipe = load_inverse_recipe("elasticity-inclusion").to_dict()
    recipe["ensemble"] = {"members": 2, "workers": 2}
    recipe["name"] = "elasticity-toy"
    recipe["problem"]["options"]["n_cells"] = 8
    recipe["data"]["n_train"] = 48
    recipe["model"]["backbone"]["options"].update(base_channels=8, channel_mults=[1, 2])
    recipe["training"].update(epochs=1, batch_size=16, device="cpu", compile="off")
    recipe["sampling"].update(steps=4, batch_size=64)
    recipe["calibration"].update(n_observations=4, n_samples=3, levels=[0.5, 0.9])
    path = tmp_path / "elasticity-toy.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    return path


def test_invert_train_and_sample_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["invert", "train", str(toy_recipe(tmp_path)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "trained 2 members x 1 epochs on 43 pairs each" in result.output
    assert (out / "model" / "recipe.yaml").is_file()
    assert (out / "model" / "ensemble.yaml").is_file()
    assert (out / "calibration" / "calibration.md").is_file()
    problem = load_inverse_recipe(out / "recipe.yaml").build_problem()
    rng = np.random.default_rng(5)
    truth = problem.sample_prior(1, rng)
    y = problem.noise.sample(problem.forward(truth), rng)[0]
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "truth.npy", truth[0])
    samples = tmp_path / "post.npy"
    args = ["invert", "sample", str(out / "model"), "-y", str(tmp_path / "y.npy"), "-n", "5"]
    args += ["--out", str(samples), "--truth", str(tmp_path / "truth.npy"), "--plot"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    drawn = np.load(samples)
    assert drawn.shape == (5, 1, 8, 8) and np.all(np.isfinite(drawn))
    assert samples.with_suffix(".png").stat().st_size > 0 and "figure:" in result.output


def test_plot_field_posterior(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(6, 1, 8, 8))
    path = plot_field_posterior(
        samples, tmp_path / "f.png", truth=samples[0, 0], measurement=rng.normal(size=(2, 8, 8))
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plot_field_posterior(samples[:, 0], tmp_path / "g.png")  # no truth, no measurement
    with pytest.raises(ValueError, match="truth has shape"):
        plot_field_posterior(samples, tmp_path / "h.png", truth=np.zeros(5))
    with pytest.raises(ValueError, match="expected"):
        plot_field_posterior(samples[:1], tmp_path / "h.png")
