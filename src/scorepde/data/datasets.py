"""From a :class:`FieldDataset` to training tensors; hold-out splits by whole conditions.

This is the only module of ``scorepde.data`` that imports torch at import time.
"""

from __future__ import annotations

import numpy as np
import torch

from scorepde.data.normalisation import ConditionEncoder, Normaliser
from scorepde.data.schema import FieldDataset, group_by_condition

__all__ = ["split_by_condition", "to_training_tensors"]


def to_training_tensors(
    dataset: FieldDataset,
    normaliser: Normaliser,
    encoder: ConditionEncoder,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised fields and encoded conditions, ready for ``TensorDataset(x, cond)``.

    Returns:
        ``x`` ``(n, C, N)`` dimensionless (``normaliser.transform(fields, cond)``) and
        ``cond`` ``(n, k)`` in ``[-1, 1]`` over the design ranges, both ``dtype`` on ``device``.
    """
    if tuple(encoder.names) != tuple(dataset.condition_names):
        raise ValueError(
            f"encoder conditions {list(encoder.names)} do not match the data set's "
            f"{list(dataset.condition_names)}"
        )
    if normaliser.channels is not None and tuple(normaliser.channels) != dataset.channels:
        raise ValueError(
            f"normaliser channels {list(normaliser.channels)} do not match the data set's "
            f"{list(dataset.channels)}"
        )
    cond = encoder.encode(dataset.conditions)
    x = np.asarray(normaliser.transform(dataset.fields, cond))
    return (
        torch.as_tensor(x, dtype=dtype, device=device),
        torch.as_tensor(cond, dtype=dtype, device=device),
    )


def split_by_condition(
    dataset: FieldDataset, fraction: float, seed: int
) -> tuple[FieldDataset, FieldDataset]:
    """Hold out whole design points: ``(kept, held_out)``.

    ``round(fraction * n_conditions)`` design points (at least 1, at most all but 1), chosen by
    ``np.random.default_rng(seed)``, go with *all* their fields into ``held_out``; validating on
    them measures generalisation to unseen conditions, not just to unseen draws.
    """
    if not (isinstance(fraction, int | float) and 0.0 < fraction < 1.0):
        raise ValueError(f"fraction = {fraction!r} is not allowed; expected a number in (0, 1)")
    groups = group_by_condition(dataset)
    keys = np.array(sorted(groups))
    if len(keys) < 2:
        raise ValueError(
            f"the data set has {len(keys)} design point(s); holding out whole conditions needs >= 2"
        )
    n_held = int(np.clip(round(fraction * len(keys)), 1, len(keys) - 1))
    held_keys = np.random.default_rng(seed).choice(keys, size=n_held, replace=False)
    held = np.isin(dataset.condition_index, held_keys)
    return dataset.subset(~held), dataset.subset(held)
