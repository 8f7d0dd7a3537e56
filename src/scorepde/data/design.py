"""Space-filling designs of conditions over a problem's design ranges.

``design_conditions(specs, n, seed)`` draws ``n`` points in the unit cube with a scrambled Sobol
sequence (default) or a Latin hypercube, then maps each coordinate onto its condition's range:
linearly, or uniformly in ``log`` for a ``log_scale`` condition. The result is a deterministic
function of ``(specs, n, seed, method)`` (for a given SciPy version).

Sobol and the power of two: SciPy warns when ``n`` is not a power of two because only then is
the *whole* point set perfectly balanced (each dyadic box holds the same number of points).
The first ``n`` points of a scrambled Sobol sequence are still a low-discrepancy set, far more
even than i.i.d. draws, and a campaign needs ``n`` to be whatever the user asks for, so the
warning is suppressed here.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from scorepde.problems.base import ConditionSpec

if TYPE_CHECKING:
    from scipy.stats import qmc

__all__ = ["DESIGNS", "design_conditions", "unit_to_conditions"]

#: The design methods that ``design_conditions`` accepts.
DESIGNS: tuple[str, ...] = ("sobol", "lhs")


def unit_to_conditions(unit: np.ndarray, specs: Sequence[ConditionSpec]) -> np.ndarray:
    """Map points of the unit cube ``(n, k)`` onto the design ranges: ``(n, k)`` physical units.

    Column ``j`` goes to ``[low_j, high_j]``; linearly, or log-uniformly when ``log_scale``.
    """
    unit = np.asarray(unit, dtype=float)
    if unit.ndim != 2 or unit.shape[1] != len(specs):
        raise ValueError(f"unit has shape {unit.shape}; expected (n, {len(specs)})")
    out = np.empty_like(unit)
    for j, spec in enumerate(specs):
        if spec.log_scale:
            low, high = np.log(spec.low), np.log(spec.high)
            out[:, j] = np.exp(low + unit[:, j] * (high - low))
        else:
            out[:, j] = spec.low + unit[:, j] * (spec.high - spec.low)
        # exp(log(x)) can round a hair outside [low, high]; keep the design inside its range.
        out[:, j] = np.clip(out[:, j], spec.low, spec.high)
    return out


def _engine(method: str, dimension: int, rng: np.random.Generator) -> qmc.QMCEngine:
    from scipy.stats import qmc  # imported here: scipy.stats is slow to import (~1 s)

    engine = qmc.Sobol if method == "sobol" else qmc.LatinHypercube
    try:
        return engine(d=dimension, scramble=True, rng=rng)
    except TypeError:  # SciPy < 1.15 names the generator argument ``seed``
        return engine(d=dimension, scramble=True, seed=rng)


def design_conditions(
    specs: Sequence[ConditionSpec],
    n: int,
    seed: int | np.random.SeedSequence,
    method: str = "sobol",
) -> np.ndarray:
    """Draw ``n`` design points over the condition ranges: ``(n, k)`` in physical units.

    Args:
        specs: the problem's condition specs (column order of the result).
        n: number of conditions, ``>= 1``.
        seed: an integer ``>= 0`` or a ``SeedSequence``; the design is a deterministic function
            of it.
        method: ``"sobol"`` (scrambled Sobol, first ``n`` points; see the module docstring for
            the suppressed power-of-two warning) or ``"lhs"`` (Latin hypercube).
    """
    if method not in DESIGNS:
        raise ValueError(f"design = {method!r} is not allowed; expected one of {list(DESIGNS)}")
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"n = {n!r} is not allowed; expected an integer >= 1")
    if not specs:
        raise ValueError("specs is empty; a design needs at least one condition")
    rng = np.random.default_rng(seed)
    engine = _engine(method, len(specs), rng)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*balance properties of Sobol.*")
        unit = engine.random(int(n))
    return unit_to_conditions(unit, specs)
