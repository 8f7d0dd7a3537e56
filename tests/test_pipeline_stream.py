"""``data.source: stream``: every batch simulated afresh, from a seed, during training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import tiny_recipe_dict
from scorepde import pipeline
from scorepde.configuration import ConfigError
from scorepde.problems import get_problem
from scorepde.recipes import Recipe


def _stream_recipe() -> Recipe:
    data = tiny_recipe_dict()
    data["data"]["source"] = "stream"
    data["data"]["stream_per_condition"] = 4
    data["data"]["stream_epoch_samples"] = 32
    return Recipe.from_dict(data)


def _weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.score_model.parameters()])


def test_design_draw_covers_the_design_with_log_scale_conditions() -> None:
    problem = get_problem("battery")
    draws = pipeline.design_draw(problem, 4000, np.random.default_rng(0))
    for j, spec in enumerate(problem.conditions):
        column = draws[:, j]
        assert column.min() >= spec.low and column.max() <= spec.high
        t = np.log(column) if spec.log_scale else column
        low = np.log(spec.low) if spec.log_scale else spec.low
        high = np.log(spec.high) if spec.log_scale else spec.high
        # uniform in t: the mean is the midpoint within 4 standard errors
        assert abs(t.mean() - 0.5 * (low + high)) < 4 * (high - low) / np.sqrt(12 * 4000)


def test_streamed_training_is_reproducible_and_differs_from_the_file(tmp_path: Path) -> None:
    recipe = _stream_recipe()
    data = pipeline.simulate(recipe.data.train, tmp_path / "train.h5", progress=False)
    first, result = pipeline.train(recipe, data, tmp_path / "a", progress=False, log=None)
    again, _ = pipeline.train(recipe, data, tmp_path / "b", progress=False, log=None)
    torch.testing.assert_close(_weights(first), _weights(again), rtol=0, atol=0)
    assert len(result.history["train_loss"]) == recipe.training.epochs
    file_recipe = Recipe.from_dict(tiny_recipe_dict())
    from_file, _ = pipeline.train(file_recipe, data, tmp_path / "c", progress=False, log=None)
    assert not torch.equal(_weights(first), _weights(from_file))
    fields = first.sample([0.0, 0.1, 25.0], n=3, steps=3, seed=0)
    assert fields.shape == (3, 2, 100) and np.all(np.isfinite(fields))


def test_stream_options_are_checked() -> None:
    data = tiny_recipe_dict()
    data["data"]["source"] = "fresh"
    with pytest.raises(ConfigError, match=r"data\.source = 'fresh'"):
        Recipe.from_dict(data)
    data["data"]["source"] = "stream"
    data["data"]["stream_per_condition"] = 0
    with pytest.raises(ConfigError, match="stream_per_condition = 0"):
        Recipe.from_dict(data)
