"""Training tensors and hold-out splits by whole conditions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scorepde.data.datasets import split_by_condition, to_training_tensors
from scorepde.data.normalisation import ConditionEncoder, FieldNormaliser
from scorepde.data.schema import FieldDataset
from scorepde.problems import get_problem


def small_dataset(n_conditions: int = 5, per: int = 4) -> FieldDataset:
    problem = get_problem("battery", params={"n_points": 16})
    conditions = np.column_stack(
        [
            np.linspace(-0.4, 0.4, n_conditions),
            np.geomspace(0.06, 0.4, n_conditions),
            np.linspace(5.0, 45.0, n_conditions),
        ]
    )
    result = problem.simulate(conditions, per, list(range(n_conditions)))
    return FieldDataset(
        fields=result["fields"],
        latent=result["latent"],
        conditions=result["conditions"],
        condition_names=problem.condition_names,
        condition_index=np.repeat(np.arange(n_conditions), per),
        grid=problem.grid,
        channels=problem.channels,
        channel_units=problem.channel_units,
        condition_units=problem.condition_units,
        latent_name=problem.latent_name,
    )


def test_to_training_tensors() -> None:
    data = small_dataset()
    normaliser = FieldNormaliser(channels=data.channels).fit(data.fields)
    encoder = ConditionEncoder.from_specs(get_problem("battery").conditions)
    x, cond = to_training_tensors(data, normaliser, encoder)
    assert x.shape == (20, 2, 16) and cond.shape == (20, 3)
    assert x.dtype == torch.float32 and cond.dtype == torch.float32
    assert torch.all(x[:, 1, 0] == 0) and torch.all(x[:, 0, -1] == 0)  # Dirichlet points
    assert torch.all(cond.abs() <= 1)
    wrong = FieldNormaliser(channels=("a", "b")).fit(data.fields)
    with pytest.raises(ValueError, match=r"normaliser channels \['a', 'b'\]"):
        to_training_tensors(data, wrong, encoder)


def test_split_by_condition_holds_out_whole_conditions() -> None:
    data = small_dataset()
    kept, held = split_by_condition(data, 0.4, seed=1)
    assert held.n_conditions == 2 and kept.n_conditions == 3 and kept.n + held.n == data.n
    assert not set(kept.condition_index) & set(held.condition_index)
    again_kept, _ = split_by_condition(data, 0.4, seed=1)
    np.testing.assert_array_equal(again_kept.condition_index, kept.condition_index)
    with pytest.raises(ValueError, match=r"fraction = 1\.5"):
        split_by_condition(data, 1.5, seed=0)
    with pytest.raises(ValueError, match="needs >= 2"):
        split_by_condition(data.subset(data.condition_index == 0), 0.5, seed=0)
