"""Learning-rate schedule: optional linear warm-up, then a cosine decay per optimiser step.

With ``total_steps = epochs * steps_per_epoch`` and ``warmup_steps = warmup_epochs *
steps_per_epoch``, the rate at step ``s`` (0-based: the rate used by the ``s``-th update) is

- warm-up, ``s < warmup_steps``: ``learning_rate * (s + 1) / warmup_steps``;
- decay: ``min_lr + (learning_rate - min_lr) * (1 + cos(pi * p)) / 2`` with
  ``p = (s - warmup_steps) / (total_steps - warmup_steps)`` clipped to [0, 1].

So the seed's recipe runs from 2e-4 at the first step to 1e-6 at the end of epoch 5000.
"""

from __future__ import annotations

import math

import torch


def cosine_learning_rate(
    step: int,
    *,
    total_steps: int,
    learning_rate: float,
    min_learning_rate: float,
    warmup_steps: int = 0,
) -> float:
    """The learning rate used by optimiser step ``step`` (0-based); see the module docstring."""
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps must be in [0, {total_steps}), got {warmup_steps}")
    if step < warmup_steps:
        return learning_rate * (step + 1) / warmup_steps
    progress = min(max((step - warmup_steps) / (total_steps - warmup_steps), 0.0), 1.0)
    return min_learning_rate + 0.5 * (learning_rate - min_learning_rate) * (
        1.0 + math.cos(math.pi * progress)
    )


def build_cosine_scheduler(
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    learning_rate: float,
    min_learning_rate: float,
    warmup_steps: int = 0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` stepping :func:`cosine_learning_rate` once per optimiser step.

    The optimiser's parameter groups must start at ``learning_rate``. The schedule function is a
    closure, so a scheduler ``state_dict`` holds only the step count: a resumed run rebuilds the
    curve from its config.
    """
    # validate once, eagerly
    cosine_learning_rate(
        0,
        total_steps=total_steps,
        learning_rate=learning_rate,
        min_learning_rate=min_learning_rate,
        warmup_steps=warmup_steps,
    )

    def factor(step: int) -> float:
        return (
            cosine_learning_rate(
                step,
                total_steps=total_steps,
                learning_rate=learning_rate,
                min_learning_rate=min_learning_rate,
                warmup_steps=warmup_steps,
            )
            / learning_rate
        )

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
