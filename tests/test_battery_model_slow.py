"""Slow: the shipped battery-quick recipe must produce a model whose samples agree with fresh
simulator samples (run with ``make test-slow``; ~10 minutes on 2 cores)."""

from __future__ import annotations

import json

import pytest

from scorepde import pipeline
from scorepde.recipes import GridConfig, load_recipe

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
    recipe.evaluation.grid = GridConfig(points=3)  # 3 x 3 (l, F_right) x 2 U0: 18 points
    report_path = pipeline.run(recipe, tmp_path, progress=False, log=None)
    report = json.loads(report_path.with_suffix(".json").read_text())
    assert [r["label"] for r in report["results"]][:2] == ["fixed", "held-out"]
    for result in report["results"][:2]:
        metrics = result["comparison"]["metrics"]
        assert max(metrics["mean_error"]) <= 0.2, result["condition"]
        assert max(metrics["std_error"]) <= 0.2, result["condition"]
        assert all(0.85 <= c <= 0.995 for c in metrics["coverage"]), result["condition"]
    fixed = report["results"][0]
    assert fixed["invariance"]["energy_ratio"] <= 3.0, fixed["invariance"]
    _check_grid_worst_case(report)


def _check_grid_worst_case(report: dict) -> None:
    """The worst case over the reduced design grid (corners included: l = 0.05 and 0.5,
    F_right = 0 and 50, each at U0 = -0.3 and 0.3), at n = 500.

    These are regression bounds of the current recipe, not the issue's targets (mean and std
    error <= 0.10, which battery-quick misses at F_right = 0 and 50; docs/accuracy.md, third
    round). At n = 1000 the recipe's worst cases were: mean error 0.31 and std error 0.31
    (F_right = 0), coverage 0.83 (F_right = 0), mean error 0.19 at F_right > 0; with n = 500
    the floor of the max-norm mean error reaches ~0.15. Bounds: 1.0, 0.5, [0.75, 0.99] over the
    grid and 0.3 for the mean and std error where F_right > 0. The shipped model before issue
    14 fails them by orders of magnitude (mean error 28, coverage 0.00 at F_right = 0), an
    untrained one too. U0 is dropped under the declared invariance, so every pair check is at
    the floor (energy ratio <= 1.13 at n = 1000; bound 2).
    """
    grid = report["grid"]
    assert grid["points"] == 18
    worst = {row["measure"]: row for row in grid["worst"]}
    assert worst["mean_error"]["value"] <= 1.0, worst["mean_error"]
    assert worst["std_error"]["value"] <= 0.5, worst["std_error"]
    assert worst["coverage (lowest)"]["value"] >= 0.75, worst["coverage (lowest)"]
    assert worst["coverage (highest)"]["value"] <= 0.99, worst["coverage (highest)"]
    assert worst["invariance in U0: energy_ratio"]["value"] <= 2.0, worst
    for result in report["results"]:
        if result["label"] == "grid" and result["condition"]["F_right"] > 0:
            metrics = result["comparison"]["metrics"]
            assert max(metrics["mean_error"]) <= 0.3, result["condition"]
            assert max(metrics["std_error"]) <= 0.3, result["condition"]
