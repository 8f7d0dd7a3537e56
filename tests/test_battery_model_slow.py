"""Slow: a reduced battery-quick run must produce a model whose samples agree with fresh
simulator samples (run with ``make test-slow``; a few minutes on 2 cores)."""

from __future__ import annotations

import json

import pytest

from scorepde import pipeline
from scorepde.recipes import load_recipe

pytestmark = pytest.mark.slow


def test_reduced_battery_quick_agrees_with_the_simulator(tmp_path) -> None:
    """battery-quick with half the epochs and 500 evaluation samples.

    Tolerances, and why: with n = 500 per set the simulator-vs-simulator floor is ~0.05-0.1 for
    the mean error and ~0.05 for the std error (see the report's floors), and halving the
    training leaves the model short of the recipe's 0.15 targets; 0.3 still fails a model that
    has not learned the conditional law (an untrained model scores >> 1, one that ignores the
    conditions ~1). Coverage of a correct model is 0.95 +- 0.01 at this n; [0.85, 0.995] fails
    both an over-dispersed (coverage -> 1) and an under-dispersed model. The U0-invariance check
    must be within 3x the simulator floor of the energy distance.
    """
    recipe = load_recipe("battery-quick")
    recipe.training.epochs = max(1, recipe.training.epochs // 2)
    recipe.evaluation.n_samples = 500
    recipe.evaluation.held_out = 1
    recipe.evaluation.conditions = [[0.0, 0.1, 25.0]]
    report_path = pipeline.run(recipe, tmp_path, progress=False, log=None)
    report = json.loads(report_path.with_suffix(".json").read_text())
    for result in report["results"]:
        metrics = result["comparison"]["metrics"]
        assert max(metrics["mean_error"]) <= 0.3, result["condition"]
        assert max(metrics["std_error"]) <= 0.3, result["condition"]
        assert all(0.85 <= c <= 0.995 for c in metrics["coverage"]), result["condition"]
        assert result["invariance"]["energy_ratio"] <= 3.0, result["condition"]
