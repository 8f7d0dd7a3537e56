"""Conditions drawn with mass at the design's edges, and declared-invariant conditions pinned
(the network does not see them; the model still accepts them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import tiny_recipe_dict
from scorepde import pipeline
from scorepde.configuration import ConfigError
from scorepde.data.design import draw_conditions, edge_weighted_unit
from scorepde.problems import get_problem
from scorepde.recipes import Recipe
from scorepde.training.conditional import pin_conditions


def test_edge_weighted_unit_puts_the_stated_mass_in_the_end_bands() -> None:
    n, k, mass, width = 20000, 2, 0.3, 0.05
    unit = edge_weighted_unit(n, k, np.random.default_rng(0), edge_mass=mass, width=width)
    assert unit.min() >= 0.0 and unit.max() <= 1.0
    in_band = (unit <= width) | (unit >= 1 - width)
    expected = mass + (1 - mass) * 2 * width  # edge draws, plus uniform ones that land there
    se = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(in_band.mean(axis=0) - expected) < 5 * se)
    corners = np.all(in_band, axis=1).mean()  # independent coordinates: product of the rates
    assert abs(corners - expected**2) < 5 * np.sqrt(expected**2 / n)
    same = edge_weighted_unit(n, k, np.random.default_rng(0), edge_mass=mass, width=width)
    np.testing.assert_array_equal(unit, same)
    uniform = edge_weighted_unit(n, k, np.random.default_rng(0), edge_mass=0.0, width=width)
    assert abs(((uniform <= width) | (uniform >= 1 - width)).mean() - 2 * width) < 0.01
    with pytest.raises(ValueError, match=r"edge_mass = 1\.5"):
        edge_weighted_unit(3, 2, np.random.default_rng(0), edge_mass=1.5, width=width)


def test_edge_design_reaches_the_corners_of_the_battery_design() -> None:
    problem = get_problem("battery")
    draws = draw_conditions(problem.conditions, 4000, np.random.default_rng(1), "edges")
    length, f = draws[:, 1], draws[:, 2]
    assert length.min() >= 0.05 and length.max() <= 0.5 and f.min() >= 0.0 and f.max() <= 50.0
    # short correlation length with high current: the corner the issue found worst
    corner = (np.log(length / 0.05) / np.log(10) < 0.05) & (f > 47.5)
    # each end band holds 0.3 / 2 + 0.7 * 0.05 = 0.185 of each coordinate: 0.185^2 = 0.034
    assert corner.mean() > 0.025  # uniform would give 0.05^2 = 0.0025
    with pytest.raises(ValueError, match="design = 'corners'"):
        draw_conditions(problem.conditions, 3, np.random.default_rng(1), "corners")


def test_pin_conditions_sets_the_named_columns_only() -> None:
    values = np.array([[0.3, 0.1, 25.0], [-0.2, 0.2, 5.0]])
    pinned = pin_conditions(values, ("U0", "l", "F_right"), {"U0": 0.0})
    np.testing.assert_array_equal(pinned[:, 0], 0.0)
    np.testing.assert_array_equal(pinned[:, 1:], values[:, 1:])
    assert values[0, 0] == 0.3  # a copy
    with pytest.raises(ValueError, match="pinned condition 'V'"):
        pin_conditions(values, ("U0", "l", "F_right"), {"V": 0.0})


def _recipe(invariant: str) -> Recipe:
    data = tiny_recipe_dict()
    data["data"].update(
        source="stream",
        stream_per_condition=4,
        stream_epoch_samples=32,
        stream_design="edges",
        invariant_conditions=invariant,
    )
    return Recipe.from_dict(data)


def test_declared_invariance_model_ignores_u0_but_accepts_it(tmp_path: Path) -> None:
    recipe = _recipe("declared")
    data = pipeline.simulate(recipe.data.train, tmp_path / "train.h5", progress=False)
    pipeline.train(recipe, data, tmp_path / "a", progress=False, log=None)
    model = pipeline.load_model(tmp_path / "a")  # through the saved folder
    assert model.pinned_conditions == {"U0": 0.0}
    first = model.sample([0.4, 0.1, 25.0], n=4, steps=3, seed=2)
    other = model.sample([-0.45, 0.1, 25.0], n=4, steps=3, seed=2)
    np.testing.assert_array_equal(first, other)
    moved = model.sample([0.4, 0.3, 25.0], n=4, steps=3, seed=2)  # l is still seen
    assert not np.allclose(first, moved)
    with pytest.raises(ValueError, match=r"condition l = -0\.1"):
        model.sample([0.0, -0.1, 25.0], n=2, steps=3)
    # the learnt-invariance model sees U0 (same data and seed, one option apart)
    learnt, _ = pipeline.train(_recipe("learn"), data, tmp_path / "b", progress=False, log=None)
    assert learnt.pinned_conditions == {}
    a = learnt.sample([0.4, 0.1, 25.0], n=4, steps=3, seed=2)
    b = learnt.sample([-0.45, 0.1, 25.0], n=4, steps=3, seed=2)
    assert not np.array_equal(a, b)


def test_new_data_options_are_checked() -> None:
    for key, value, message in (
        ("stream_design", "corners", "stream_design = 'corners'"),
        ("stream_edge_mass", 2.0, "stream_edge_mass = 2.0"),
        ("stream_edge_width", 0.0, "stream_edge_width = 0.0"),
        ("invariant_conditions", "drop", "invariant_conditions = 'drop'"),
        ("subspace_whiten_fit", "log", "subspace_whiten_fit = 'log'"),
    ):
        data = tiny_recipe_dict()
        data["data"][key] = value
        with pytest.raises(ConfigError, match=message):
            Recipe.from_dict(data)


def test_normaliser_can_be_fitted_on_a_stream_draw(tmp_path: Path) -> None:
    recipe = _recipe("declared")
    data = pipeline.simulate(recipe.data.train, tmp_path / "train.h5", progress=False)
    from scorepde.data.schema import group_by_condition, read_dataset

    like = read_dataset(data)
    problem = get_problem("battery")
    first = pipeline.stream_fit_dataset(recipe, problem, like)
    again = pipeline.stream_fit_dataset(recipe, problem, like)
    np.testing.assert_array_equal(first.fields, again.fields)  # seeded
    assert len(group_by_condition(first)) == len(group_by_condition(like))
    assert first.fields.shape == like.fields.shape
    assert not np.array_equal(first.conditions, like.conditions)  # a fresh design
    data_dict = tiny_recipe_dict()
    data_dict["data"]["normaliser_data"] = "stream"
    with pytest.raises(ConfigError, match=r"needs data\.source = 'stream'"):
        Recipe.from_dict(data_dict)
