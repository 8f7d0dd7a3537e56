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

__all__ = [
    "DESIGNS",
    "STREAM_DESIGNS",
    "design_conditions",
    "draw_conditions",
    "edge_weighted_unit",
    "unit_to_conditions",
]

#: The design methods that ``design_conditions`` accepts.
DESIGNS: tuple[str, ...] = ("sobol", "lhs")
#: The random designs that ``draw_conditions`` accepts (fresh conditions for every batch).
STREAM_DESIGNS: tuple[str, ...] = ("uniform", "edges")


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


def edge_weighted_unit(
    n: int, k: int, rng: np.random.Generator, *, edge_mass: float, width: float
) -> np.ndarray:
    """``n`` i.i.d. points of the unit cube ``(n, k)`` with extra mass at its boundary.

    Each coordinate is, independently, uniform on ``[0, 1]`` with probability
    ``1 - edge_mass``, and otherwise uniform in the band ``[0, width]`` or ``[1 - width, 1]``
    (each side with probability 1/2). So a point lies in the band of one face with
    probability about ``k edge_mass``, near an edge of two faces about ``C(k,2) edge_mass^2``
    and near a corner ``edge_mass^k``: faces, edges and corners of the design are all
    trained on, not left to extrapolation. ``edge_mass = 0`` is the uniform design.
    All randomness comes from ``rng`` (three draws of ``(n, k)``, in a fixed order).
    """
    if not 0.0 <= edge_mass <= 1.0:
        raise ValueError(f"edge_mass = {edge_mass!r} is not allowed; expected a value in [0, 1]")
    if not 0.0 < width <= 0.5:
        raise ValueError(f"width = {width!r} is not allowed; expected a value in (0, 0.5]")
    uniform = rng.random((n, k))
    at_edge = rng.random((n, k)) < edge_mass
    band = rng.random((n, k))
    near = np.where(band < 0.5, 2.0 * band * width, 1.0 - 2.0 * (band - 0.5) * width)
    return np.where(at_edge, near, uniform)


def draw_conditions(
    specs: Sequence[ConditionSpec],
    n: int,
    rng: np.random.Generator,
    method: str = "uniform",
    *,
    edge_mass: float = 0.3,
    width: float = 0.05,
) -> np.ndarray:
    """``n`` random conditions ``(n, k)`` over the design ranges, physical units.

    method: ``"uniform"`` (i.i.d. uniform, log-uniform for log-scale conditions) or
    ``"edges"`` (``edge_weighted_unit``: uniform in the same transformed space plus mass
    ``edge_mass`` per coordinate in the bands of relative width ``width`` at both ends).
    A deterministic function of the state of ``rng``.
    """
    if method not in STREAM_DESIGNS:
        raise ValueError(
            f"design = {method!r} is not allowed; expected one of {list(STREAM_DESIGNS)}"
        )
    unit = edge_weighted_unit(
        n, len(specs), rng, edge_mass=edge_mass if method == "edges" else 0.0, width=width
    )
    return unit_to_conditions(unit, specs)
