"""Evaluation over the whole design: the grid, its heat maps, worst case and pair checks.

The "models" here are samplers built from the simulator itself (a perfect model) and from a
deliberately wrong one, so the tests are fast and their verdicts known in advance.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import tiny_recipe_dict
from scorepde import pipeline
from scorepde.configuration import ConfigError
from scorepde.evaluation.compare import EvaluationTargets
from scorepde.evaluation.grid import design_grid, evaluate_grid, grid_summary, plot_grid_heatmaps
from scorepde.evaluation.report import write_report
from scorepde.problems import get_problem
from scorepde.recipes import Recipe

N = 300  # samples per set: floors of mean/std error up to ~0.15 at this n
#: Bounds well above the n = 300 floors (a perfect model passes) and well below what the wrong
#: model (spread x 1.6 to 2.4: std error >= 0.6) scores.
TARGETS = EvaluationTargets("test", mean_error=0.3, std_error=0.3, coverage=(0.85, 0.995))


def _simulator_sampler(problem, *, u0_matters: bool = False, stretch: float = 1.0):
    """A sampler drawing fresh simulator fields; ``stretch`` widens their spread about the
    mean (a wrong model); ``u0_matters`` makes the spread depend on U0 (breaks the
    declared invariance)."""

    def sample(condition: np.ndarray, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng([seed, 99])
        fields = problem.simulate(np.asarray(condition)[None, :], n, [rng])["fields"]
        factor = stretch * (1.0 + (2.0 * condition[0] if u0_matters else 0.0))
        mean = fields.mean(axis=0, keepdims=True)
        return mean + factor * (fields - mean)

    return sample


def test_battery_grid_covers_the_corners_and_pairs_u0() -> None:
    problem = get_problem("battery")
    grid = design_grid(problem, 3)
    assert grid.invariant == ("U0",)
    np.testing.assert_allclose(grid.axes["U0"], [-0.3, 0.3])
    np.testing.assert_allclose(grid.axes["l"], [0.05, np.sqrt(0.05 * 0.5), 0.5])  # log-even
    np.testing.assert_allclose(grid.axes["F_right"], [0.0, 25.0, 50.0])
    assert grid.map_axes == ("l", "F_right")
    table = grid.conditions()
    assert table.shape == (18, 3)
    for corner in ([0.05, 0.0], [0.05, 50.0], [0.5, 0.0], [0.5, 50.0]):
        assert np.sum(np.all(table[:, 1:] == corner, axis=1)) == 2  # at both U0 values
    with pytest.raises(ValueError, match="unknown condition"):
        design_grid(problem, 3, values={"voltage": [0.0]})
    with pytest.raises(ValueError, match=r"grid values for l = \[-1.0\]"):
        design_grid(problem, 3, values={"l": [-1.0]})


@pytest.fixture(scope="module")
def grids(tmp_path_factory: pytest.TempPathFactory):
    problem = get_problem("battery")
    grid = design_grid(problem, 2)
    out = {}
    for name, sampler in (
        ("right", _simulator_sampler(problem)),
        ("wrong", _simulator_sampler(problem, u0_matters=True, stretch=2.0)),
    ):
        results = evaluate_grid(
            sampler, problem, grid, targets=TARGETS, n_samples=N, seed=3, log=None
        )
        folder = tmp_path_factory.mktemp(name)
        figures = plot_grid_heatmaps(grid, results, folder)
        summary = grid_summary(grid, results, figures)
        _, markdown = write_report(folder, results, title=name, metadata={}, grid=summary)
        out[name] = (results, summary, folder, markdown)
    return out


def test_grid_results_heat_maps_and_headline_are_written(grids) -> None:
    results, summary, folder, markdown = grids["right"]
    assert len(results) == 8 and all(r["label"] == "grid" for r in results)
    assert {"mean_error", "std_error", "coverage", "energy_ratio", "invariance"} == {
        Path(f).stem.removeprefix("grid_") for f in summary["heatmaps"]
    }
    for figure in summary["heatmaps"]:
        assert (folder / figure).stat().st_size > 5000
    text = markdown.read_text()
    assert text.index("## Worst case over the design grid") < text.index("## Summary")
    document = json.loads((folder / "report.json").read_text())
    assert document["grid"]["points"] == 8
    measures = [row["measure"] for row in document["grid"]["worst"]]
    assert measures[:4] == ["mean_error", "std_error", "coverage (lowest)", "coverage (highest)"]
    assert "invariance in U0: energy_ratio" in measures


def test_every_point_of_the_other_conditions_gets_the_u0_pair_check(grids) -> None:
    results = grids["right"][0]
    paired = [r for r in results if "invariances" in r]
    assert len(paired) == 4  # the U0 = 0.3 half of the 2 x 2 x 2 grid
    for result in paired:
        check = result["invariances"]["U0"]
        assert check["shifted_condition"]["U0"] == pytest.approx(-0.3)
        assert check["shifted_condition"]["l"] == result["condition"]["l"]
        assert check["shift"] == pytest.approx(-0.6)


def test_a_perfect_model_passes_and_scores_like_the_floor(grids) -> None:
    results, summary, _, _ = grids["right"]
    assert summary["passed"] == 8, [r["failures"] for r in results]
    for result in results:
        if "invariances" in result:
            # model pair vs simulator pair: both are pairs of independent simulator sets
            assert result["invariances"]["U0"]["energy_ratio"] < 3.0


def test_a_wrong_model_fails_and_the_headline_names_its_worst_case(grids) -> None:
    results, summary, _, markdown = grids["wrong"]
    assert summary["passed"] < summary["points"]
    worst = {row["measure"]: row for row in summary["worst"]}
    assert not worst["std_error"]["passed"]
    assert worst["std_error"]["value"] > 0.5 > 0.3 > worst["std_error"]["floor"]
    # the spread grows with U0: the pair check sees it at every point, far above the floor
    ratios = [r["invariances"]["U0"]["energy_ratio"] for r in results if "invariances" in r]
    assert min(ratios) > 3.0
    assert "FAIL" in markdown.read_text().split("## Summary")[0]


def test_recipe_grid_is_wired_into_evaluate(tmp_path: Path) -> None:
    data = tiny_recipe_dict()
    data["evaluation"]["grid"] = {"points": 2, "n_samples": 20}
    recipe = Recipe.from_dict(data)
    assert recipe.evaluation.grid.points == 2
    problem = get_problem("battery")

    class Perfect:
        def sample(self, condition, n, **_):
            return _simulator_sampler(problem)(np.asarray(condition), n, 0)

    recipe.evaluation.conditions = [[0.0, 0.1, 25.0]]
    recipe.evaluation.n_samples = 20
    results, markdown = pipeline.evaluate(
        Perfect(),  # type: ignore[arg-type]
        tmp_path,
        evaluation=recipe.evaluation,
        sampling=recipe.sampling,
        problem=problem,
        log=None,
    )
    assert [r["label"] for r in results].count("grid") == 8
    assert (tmp_path / "figures" / "grid_mean_error.png").is_file()
    assert "Worst case over the design grid" in markdown.read_text()


def test_grid_options_are_checked() -> None:
    data = tiny_recipe_dict()
    data["evaluation"]["grid"] = {"points": 0}
    with pytest.raises(ConfigError, match=r"evaluation\.grid\.points = 0"):
        Recipe.from_dict(data)
    data["evaluation"]["grid"] = {"invariant_points": 3}
    with pytest.raises(ConfigError, match=r"invariant_points = 3"):
        Recipe.from_dict(data)
