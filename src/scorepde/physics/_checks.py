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


def check_initial(initial: np.ndarray, minimum: int) -> tuple[np.ndarray, bool]:
    """A batch of initial states ``(B, n)`` of floats (a single ``(n,)`` state becomes
    ``(1, n)``) and whether one state was given (the solver then returns one solution).

    Raises:
        ValueError: not 1-D or 2-D, fewer than ``minimum`` points, or non-finite values.
    """
    state = np.asarray(initial, dtype=float)
    single = state.ndim == 1
    state = np.atleast_2d(state)
    if state.ndim != 2 or state.shape[1] < minimum:
        raise ValueError(
            f"initial has shape {np.shape(initial)}; expected (B, n) with n >= {minimum}"
        )
    if not np.all(np.isfinite(state)):
        raise ValueError("initial contains non-finite values; expected finite numbers")
    return state, single
