"""Argument checks shared by the multi-fidelity benchmark solvers (numpy only)."""

from __future__ import annotations

import numpy as np


def check_count(value: int, name: str, minimum: int) -> int:
    """``value`` as an ``int`` if it is an integer ``>= minimum``.

    Raises:
        TypeError: ``value`` is not an integer (``bool`` included).
        ValueError: ``value < minimum``. Both messages name the argument and the value.
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} is {value!r}; expected an int >= {minimum}")
    if value < minimum:
        raise ValueError(f"{name} is {value}; expected an int >= {minimum}")
    return int(value)
