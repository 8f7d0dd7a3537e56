"""Slow: the shipped battery-quick recipe must produce a model whose samples agree with fresh
simulator samples (run with ``make test-slow``; ~10 minutes on 2 cores)."""

from __future__ import annotations

import json

import pytest

from scorepde import pipeline
from scorepde.recipes import load_recipe

pytestmark = pytest.mark.slow


def test_battery_quick_agrees_with_the_simulator(tmp_path) -> None:
    """battery-quick as shipped (full training), evaluated more cheaply: n = 500 samples per
    set, the seed's condition (U0 0, l 0.1, F_right 25) and the first held-out test condition.

    Tolerances, and why: with n = 500 per set the simulator-vs-simulator floor is ~0.05-0.1 for
    the mean error and ~0.03-0.05 for the std error (see the report's floors). The shipped model
    scores 0.03-0.12 (mean) and 0.01-0.07 (std) at n = 1000 (docs/accuracy.md, row 9); the bound
    0.2 leaves room for the larger n = 500 noise yet fails a model that has not learned the
    conditional law (an untrained model scores >> 1, one that ignores the conditions ~1, a
    half-trained one 0.37 in std). Coverage of a correct model is 0.95 +- 0.01 at this n;
    [0.85, 0.995] fails both an over- and an under-dispersed model. U0 invariance (model pair
    within 3x the simulator floor of the energy distance) is asserted at F_right = 25; at low
    current the shipped model is not yet invariant (ratio ~5.6, reported in the evaluation and
    tracked as an open gap in docs/accuracy.md).
    """
    recipe = load_recipe("battery-quick")
    recipe.evaluation.n_samples = 500
    recipe.evaluation.held_out = 1
    recipe.evaluation.conditions = [[0.0, 0.1, 25.0]]
    report_path = pipeline.run(recipe, tmp_path, progress=False, log=None)
    report = json.loads(report_path.with_suffix(".json").read_text())
    assert [r["label"] for r in report["results"]] == ["fixed", "held-out"]
    for result in report["results"]:
        metrics = result["comparison"]["metrics"]
        assert max(metrics["mean_error"]) <= 0.2, result["condition"]
        assert max(metrics["std_error"]) <= 0.2, result["condition"]
        assert all(0.85 <= c <= 0.995 for c in metrics["coverage"]), result["condition"]
    fixed = report["results"][0]
    assert fixed["invariance"]["energy_ratio"] <= 3.0, fixed["invariance"]
